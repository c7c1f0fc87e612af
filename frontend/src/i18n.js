// Interface language: Chinese by default, English on request. Texts from the service come as
// {zh, en} objects and are picked with `pick()`; the UI's own strings live in MESSAGES.

const MESSAGES = {
  zh: {
    appTitle: '厦门生态环境一张图',
    appSubtitle: 'EcoMap Xiamen',
    skipToMap: '跳到地图',
    menu: '打开或关闭侧边栏',
    langToggle: 'EN',
    langToggleLabel: 'EN: Switch to English',
    sidebar: '功能面板',
    tabs: '功能',
    tabLayers: '图层',
    tabZone: '选址核查',
    tabChief: '河湖长',
    loading: '正在加载…',
    loadFailed: '无法加载地图服务：{detail}',
    retry: '重试',
    sampleBanner: '示例数据，非官方边界',
    sampleBadge: '示例数据',
    sampleBadgeTitle: '该图层为演示用示例数据 / sample data',
    basemap: '底图',
    basemapNone: '无底图（离线）',
    basemapOsm: 'OpenStreetMap',
    basemapTiandituVec: '天地图 矢量',
    basemapTiandituImg: '天地图 影像',
    basemapAmap: '高德地图',
    basemapNeedsKey: '未配置天地图密钥（tianditu_key）',
    basemapOnline: '需联网',
    amapWarning: '高德底图使用 GCJ-02 坐标系，与专题图层存在约 500 米偏移，仅作参考。',
    layers: '专题图层',
    toggleLayer: '显示或隐藏{name}',
    toggleGroup: '显示或隐藏{name}分组',
    opacity: '{name} 不透明度',
    legend: '图例',
    zoomIn: '放大至 {zoom} 级后可见',
    search: '搜索',
    searchPlaceholder: '搜索红线、河流、站点…',
    searchLabel: '搜索要素名称',
    searchNoResults: '没有找到“{q}”',
    searchUnavailable: '搜索服务暂不可用：{detail}',
    searching: '搜索中…',
    coordinates: '经纬度',
    zoom: '级别',
    close: '关闭',
    yes: '是',
    no: '否',
    featureCount: '{n} 个要素',
    popupCount: '此处有 {n} 个要素',
    sheet_peek: '收起面板',
    sheet_half: '面板升至半屏',
    sheet_full: '面板展开至全屏',
    level_city: '市级',
    level_district: '区级',
    level_town: '镇（街）级',
    level_village: '村级',
    chiefPost_river: '{level}河长',
    chiefPost_bay: '{level}湾长',
    role_chief_river: '河长',
    role_chief_bay: '湾长',
    unitsRivers: '河段 {n}',
    unitsBays: '海湾 {n}',
    unitsWatersheds: '流域 {n}',
    unitsRiversOne: '河段 {n}',
    unitsBaysOne: '海湾 {n}',
    unitsWatershedsOne: '流域 {n}',
    unitsNone: '尚未分配管辖单元',
    chiefBanner: '当前显示：{name}（{post}）的管辖范围',
    chiefBannerClose: '关闭河湖长视图',
    zonePointHintMap: '点选位置：在地图上点击拟选位置',
    zonePolygonHintMap: '绘制范围：依次点击各拐点（已有 {n} 点），双击结束',
    responsibleFor: '负责 {units}',
    segmentLength: '河段长 {d} km',
    upstreamAlong: '距起点 {d} km',
    upstreamExplain: '“河段长”为该河段自身长度，各河段长之和即上游总长；“距起点”为沿河道自所选河段上端至该河段下端的距离。',
    // Zone check
    zoneIntro: '核查拟建项目位置是否涉及生态保护红线、自然保护地、水源保护区等管控区域。',
    zoneModePoint: '点选位置',
    zoneModePolygon: '绘制范围',
    zoneModeFile: '上传文件',
    zonePointHint: '在地图上点击拟选位置。',
    zonePolygonHint: '在地图上依次点击绘制范围，双击或点“完成”结束，Esc 取消。',
    zoneFileHint: '支持 GeoJSON、压缩的 Shapefile（.zip）和 KML。',
    zoneFileLabel: '选择项目范围文件',
    zoneFinish: '完成',
    zoneUndo: '撤销一点',
    zoneCancel: '取消',
    zoneClear: '清除',
    zoneBuffer: '缓冲距离（米）',
    zoneRun: '开始核查',
    zoneChecking: '正在核查…',
    zoneUnavailable: '选址核查服务暂不可用：{detail}',
    zoneFailed: '核查失败：{detail}',
    zoneNeedGeometry: '请先点选位置、绘制范围或选择文件。',
    zoneTooFewPoints: '范围至少需要 3 个点。',
    verdict: '结论',
    verdict_prohibited: '禁止',
    verdict_restricted: '限制',
    verdict_caution: '注意',
    verdict_clear: '未涉及管控区',
    reasons: '依据',
    allowedActivities: '允许的有限人为活动（{n} 项）',
    inputArea: '项目面积',
    overlaps: '涉及区域',
    colName: '区域',
    colOverlap: '重叠',
    colShare: '占比',
    colDistance: '距离（m）',
    noOverlaps: '未与任何管控区域重叠。',
    chiefs: '相关河湖长',
    nearbyStations: '附近监测站点',
    noStations: '附近没有监测站点。',
    report: '打印核查报告',
    reportFailed: '报告生成失败：{detail}',
    reportOpened: '报告已在新标签页打开。',
    reportDownload: '下载报告',
    // Raster layers and zonal statistics in the site check
    rasterGroup: '土地覆被与地形',
    zoneLand: '土地覆被与地形',
    landCover: '土地覆被构成',
    colClass: '地类',
    colAreaKm2: '面积（km²）',
    colPercent: '占比',
    total: '合计',
    colLengthM: '长度（m）',
    colPoints: '点数',
    noData: '无数据',
    popupHere: '此处',
    basisSite: '按拟选址范围统计（不含缓冲区）。',
    basisBuffer: '按拟选址外扩 {m} 米缓冲区统计。',
    basisPoints: '按点位所在像元统计，占比为点数比例。',
    basisLine: '沿线按长度统计，占比为长度比例。',
    landCoverEmpty: '范围内没有土地覆被数据。',
    terrain: '地形',
    colMin: '最低',
    colMean: '平均',
    colMax: '最高',
    elevationM: '高程（m）',
    slopeDeg: '坡度（°）',
    terrainEmpty: '范围内没有地形数据。',
    slopeSummary: '平均坡度 {slope}°，{grade}',
    slope_flat: '平坦（≤2°）',
    slope_gentle: '微坡（2–6°）',
    slope_moderate: '缓坡（6–15°）',
    slope_steep: '陡坡（15–25°）',
    slope_very_steep: '急陡坡（>25°）',
    // The land a polygon covers, in its popup
    popupLandOther: '其他地类 {percent}',
    popupElevation: '平均高程 {m} m',
    popupSlope: '平均坡度 {deg}°',
    listSeparator: '，',
    // Chief view
    chiefIntro: '选择河长或湾长，查看其负责的河段、海湾及其中的监测站点与排口。',
    chiefRole: '类型',
    chiefLevel: '级别',
    chiefAll: '全部',
    chiefList: '河湖长名单',
    chiefPick: '选择河湖长',
    chiefUnavailable: '河湖长服务暂不可用：{detail}',
    chiefNotFound: '未找到编号为 {id} 的河湖长。',
    chiefNone: '没有符合条件的河湖长。',
    chiefBack: '返回名单',
    jurisdiction: '管辖范围',
    stations: '监测站点',
    outfalls: '入海排口',
    redlines: '涉及生态保护红线',
    protectedAreas: '涉及自然保护地',
    none: '无',
    contact: '联系方式',
    upstream: '上游追溯',
    upstreamOf: '{name} 的上游',
    upstreamSegments: '上游河段',
    upstreamLength: '上游 {n} 段河段，合计长 {d} km',
    upstreamLengthOne: '上游 1 段河段，合计长 {d} km',
    upstreamWatersheds: '汇水流域',
    upstreamUnavailable: '上游追溯服务暂不可用：{detail}',
    zoomTo: '定位到 {name}',
    account: '账户',
    signIn: '登录',
    signInTitle: '登录',
    signInUser: '用户名',
    signInPassword: '密码',
    signingIn: '正在登录…',
    signInWrong: '用户名或密码错误',
    signInFailed: '登录失败：{detail}',
    signInOr: '或',
    signInSso: '使用统一身份认证登录（SSO）',
    signedInAs: '已登录：{name}',
    accountOf: '账户：{name}（{role}），打开账户菜单',
    accountRole: '角色',
    myJurisdiction: '查看我的管辖范围',
    signOut: '退出登录',
    role_planner: '规划人员',
    role_chief: '河湖长',
    role_analyst: '分析人员',
    role_data_manager: '数据管理员',
    role_admin: '系统管理员',
    regionSections: '交接断面',
    regionSectionsToggle: '显示或隐藏地市交接断面及上月考核状态',
    regionFlow: '{up} → {down}',
    regionClass: '上月水质 {klass} 类（目标 {target} 类）',
    regionNoData: '上月有效数据不足，未考核',
    regionPays: '{payer}向{payee}支付 {amount} 万元（示例规则）',
    regionLoadFailed: '无法加载交接断面：{detail}',
  },
  en: {
    appTitle: 'EcoMap Xiamen',
    appSubtitle: '厦门生态环境一张图',
    skipToMap: 'Skip to map',
    menu: 'Open or close the side panel',
    langToggle: '中文',
    langToggleLabel: '中文：切换到中文',
    sidebar: 'Side panel',
    tabs: 'Tools',
    tabLayers: 'Layers',
    tabZone: 'Site check',
    tabChief: 'Chiefs',
    loading: 'Loading…',
    loadFailed: 'Cannot load the map service: {detail}',
    retry: 'Retry',
    sampleBanner: 'Sample data, not official boundaries',
    sampleBadge: 'sample data',
    sampleBadgeTitle: 'This layer holds demo sample data',
    basemap: 'Basemap',
    basemapNone: 'None (offline)',
    basemapOsm: 'OpenStreetMap',
    basemapTiandituVec: 'Tianditu vector',
    basemapTiandituImg: 'Tianditu imagery',
    basemapAmap: 'AMap (Gaode)',
    basemapNeedsKey: 'No Tianditu key configured (tianditu_key)',
    basemapOnline: 'needs internet',
    amapWarning: 'The AMap basemap uses GCJ-02 coordinates and is offset by about 500 m from the thematic layers. For orientation only.',
    layers: 'Thematic layers',
    toggleLayer: 'Show or hide {name}',
    toggleGroup: 'Show or hide the {name} group',
    opacity: '{name} opacity',
    legend: 'Legend',
    zoomIn: 'Visible from zoom {zoom}',
    search: 'Search',
    searchPlaceholder: 'Search the map…',
    searchLabel: 'Search features by name',
    searchNoResults: 'Nothing found for “{q}”',
    searchUnavailable: 'Search is not available: {detail}',
    searching: 'Searching…',
    coordinates: 'Lon/Lat',
    zoom: 'Zoom',
    close: 'Close',
    yes: 'yes',
    no: 'no',
    featureCount: '{n} features',
    popupCount: '{n} features here',
    sheet_peek: 'Lower the panel',
    sheet_half: 'Raise the panel to half the screen',
    sheet_full: 'Raise the panel to the full screen',
    level_city: 'City',
    level_district: 'District',
    level_town: 'Town',
    level_village: 'Village',
    chiefPost_river: '{level} river chief',
    chiefPost_bay: '{level} bay chief',
    role_chief_river: 'River chief',
    role_chief_bay: 'Bay chief',
    unitsRivers: '{n} segments',
    unitsBays: '{n} bays',
    unitsWatersheds: '{n} watersheds',
    unitsRiversOne: '{n} segment',
    unitsBaysOne: '{n} bay',
    unitsWatershedsOne: '{n} watershed',
    unitsNone: 'No waters assigned yet',
    chiefBanner: 'Showing the jurisdiction of {name} ({post})',
    chiefBannerClose: 'Close the chief view',
    zonePointHintMap: 'Pick a point: click the proposed site on the map',
    zonePolygonHintMap: 'Draw an area: click each corner ({n} so far), double-click to finish',
    responsibleFor: 'responsible for {units}',
    segmentLength: 'segment {d} km long',
    upstreamAlong: '{d} km upstream of the start',
    upstreamExplain: '“Segment … long” is the segment’s own length; these lengths add up to the upstream total. “Upstream of the start” is the distance along the river from the top of the chosen segment to the lower end of that segment.',
    zoneIntro: 'Check whether a proposed site touches ecological red lines, protected areas, drinking-water source zones and other controlled zones.',
    zoneModePoint: 'Pick a point',
    zoneModePolygon: 'Draw an area',
    zoneModeFile: 'Upload a file',
    zonePointHint: 'Click the proposed site on the map.',
    zonePolygonHint: 'Click on the map to add corners; double-click or press “Finish” to close the area, Esc cancels.',
    zoneFileHint: 'GeoJSON, zipped Shapefile (.zip) or KML.',
    zoneFileLabel: 'Choose the project boundary file',
    zoneFinish: 'Finish',
    zoneUndo: 'Undo last corner',
    zoneCancel: 'Cancel',
    zoneClear: 'Clear',
    zoneBuffer: 'Buffer (m)',
    zoneRun: 'Run check',
    zoneChecking: 'Checking…',
    zoneUnavailable: 'The site check is not available: {detail}',
    zoneFailed: 'The check failed: {detail}',
    zoneNeedGeometry: 'Pick a point, draw an area or choose a file first.',
    zoneTooFewPoints: 'An area needs at least 3 corners.',
    verdict: 'Verdict',
    verdict_prohibited: 'Prohibited',
    verdict_restricted: 'Restricted',
    verdict_caution: 'Caution',
    verdict_clear: 'Clear',
    reasons: 'Reasons',
    allowedActivities: 'Allowed limited activities ({n})',
    inputArea: 'Project area',
    overlaps: 'Overlapping zones',
    colName: 'Zone',
    colOverlap: 'Overlap',
    colShare: 'Share',
    colDistance: 'Distance (m)',
    noOverlaps: 'No controlled zone is touched.',
    chiefs: 'River and bay chiefs',
    nearbyStations: 'Nearby monitoring stations',
    noStations: 'No monitoring station nearby.',
    report: 'Printable report',
    reportFailed: 'The report failed: {detail}',
    reportOpened: 'The report opened in a new tab.',
    reportDownload: 'Download report',
    rasterGroup: 'Land cover and terrain',
    zoneLand: 'Land cover and terrain',
    landCover: 'Land-cover composition',
    colClass: 'Class',
    colAreaKm2: 'Area (km²)',
    colPercent: 'Share',
    total: 'Total',
    colLengthM: 'Length (m)',
    colPoints: 'Points',
    noData: 'No data',
    popupHere: 'At this point',
    basisSite: 'Measured over the site itself (not its buffer).',
    basisBuffer: 'Measured over the site buffered by {m} m.',
    basisPoints: 'At the cells under the points; shares of the points.',
    basisLine: 'Along the line; shares of its length.',
    landCoverEmpty: 'No land-cover data in the site.',
    terrain: 'Terrain',
    colMin: 'Min',
    colMean: 'Mean',
    colMax: 'Max',
    elevationM: 'Elevation (m)',
    slopeDeg: 'Slope (°)',
    terrainEmpty: 'No terrain data in the site.',
    slopeSummary: 'Mean slope {slope}°: {grade}',
    slope_flat: 'flat (≤2°)',
    slope_gentle: 'gentle (2–6°)',
    slope_moderate: 'moderate (6–15°)',
    slope_steep: 'steep (15–25°)',
    slope_very_steep: 'very steep (>25°)',
    popupLandOther: 'Other classes {percent}',
    popupElevation: 'Mean elevation {m} m',
    popupSlope: 'Mean slope {deg}°',
    listSeparator: ', ',
    chiefIntro: 'Choose a river or bay chief to see their segments and bays, with the stations and outfalls in them.',
    chiefRole: 'Role',
    chiefLevel: 'Level',
    chiefAll: 'All',
    chiefList: 'Chiefs',
    chiefPick: 'Choose a chief',
    chiefUnavailable: 'Chief data is not available: {detail}',
    chiefNotFound: 'No chief with id {id}.',
    chiefNone: 'No chief matches.',
    chiefBack: 'Back to the list',
    jurisdiction: 'Jurisdiction',
    stations: 'Monitoring stations',
    outfalls: 'Outfalls',
    redlines: 'Red lines touched',
    protectedAreas: 'Protected areas touched',
    none: 'none',
    contact: 'Contact',
    upstream: 'Trace upstream',
    upstreamOf: 'Upstream of {name}',
    upstreamSegments: 'Upstream segments',
    upstreamLength: '{n} upstream segments, {d} km in all',
    upstreamLengthOne: '1 upstream segment, {d} km long',
    upstreamWatersheds: 'Contributing watersheds',
    upstreamUnavailable: 'Upstream tracing is not available: {detail}',
    zoomTo: 'Zoom to {name}',
    account: 'Account',
    signIn: 'Sign in',
    signInTitle: 'Sign in',
    signInUser: 'User name',
    signInPassword: 'Password',
    signingIn: 'Signing in…',
    signInWrong: 'Wrong user name or password',
    signInFailed: 'Sign-in failed: {detail}',
    signInOr: 'or',
    signInSso: 'Sign in with SSO',
    signedInAs: 'Signed in as {name}',
    accountOf: 'Account: {name} ({role}), open the account menu',
    accountRole: 'Role',
    myJurisdiction: 'Go to my jurisdiction',
    signOut: 'Sign out',
    role_planner: 'Planner',
    role_chief: 'River/bay chief',
    role_analyst: 'Analyst',
    role_data_manager: 'Data manager',
    role_admin: 'Administrator',
    regionSections: 'Boundary sections',
    regionSectionsToggle: "Show or hide the cross-boundary sections between cities and last month's assessment",
    regionFlow: '{up} → {down}',
    regionClass: 'Last month: class {klass} (target {target})',
    regionNoData: 'Not enough valid data last month: not assessed',
    regionPays: '{payer} pays {payee} {amount} × 10,000 yuan (demo rules)',
    regionLoadFailed: 'Cannot load the cross-boundary sections: {detail}',
  },
};

// Code values stored in the data that the catalog does not title, shown in the interface language.
// Chinese values that are already Chinese only need an English label.
const VALUE_LABELS = {
  // Only what the catalog does not title (its `value_titles` come first, see codeLabel).
  一类: { en: 'Class 1' },
  二类: { en: 'Class 2' },
  三类: { en: 'Class 3' },
  四类: { en: 'Class 4' },
};

export const LANGS = ['zh', 'en'];
let current = 'zh';
const listeners = new Set();

/** The current interface language, "zh" or "en". */
export function getLang() {
  return current;
}

/** Switches the interface language and tells every subscriber. */
export function setLang(lang) {
  const next = LANGS.includes(lang) ? lang : 'zh';
  if (next === current) return;
  current = next;
  document.documentElement.lang = next === 'zh' ? 'zh-CN' : 'en';
  for (const fn of listeners) fn(next);
}

/** Calls `fn(lang)` after every language switch; returns an unsubscribe function. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** A UI string in the current language, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? `{${name}}`));
}

/** Picks the current language from a service text ({zh, en}, a plain string or null). */
export function pick(text) {
  if (text == null) return '';
  if (typeof text === 'string') return text;
  return text[current] || text.zh || text.en || '';
}

/** A stored code value (station kind, zone name...) as shown in the current language. */
export function valueLabel(value) {
  if (value == null) return '';
  const label = VALUE_LABELS[String(value)];
  if (!label) return String(value);
  return label[current] ?? (current === 'zh' ? String(value) : label.en ?? String(value));
}

/** A stored code as a person reads it: the catalog's title of the value (`value_titles`), else
 * the UI's label of it, else the value itself. */
export function codeLabel(property, value) {
  const title = property?.value_titles?.[String(value)];
  return title ? pick(title) : valueLabel(value);
}

/** A code of one of a layer's properties (which one unknown, e.g. a zone-check overlap's
 * category) as a person reads it. */
export function layerCodeLabel(layer, value) {
  const property = (layer?.properties || []).find((p) => p.value_titles && String(value) in p.value_titles);
  return codeLabel(property, value);
}

/** Formats a number for the current language with at most `digits` decimals (at least `minDigits`). */
export function formatNumber(value, digits = 0, minDigits = 0) {
  if (value == null || Number.isNaN(Number(value))) return '';
  return Number(value).toLocaleString(current === 'zh' ? 'zh-CN' : 'en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: minDigits,
  });
}

/** Fills elements carrying data-i18n / data-i18n-aria / data-i18n-placeholder / data-i18n-title. */
export function translateDom(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  // Texts in the other language on purpose (the product's other name, the language switch) say so.
  for (const el of root.querySelectorAll('[data-i18n-other]')) el.lang = current === 'zh' ? 'en' : 'zh-CN';
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

/** MapLibre control strings in the current language. */
export function mapLocale() {
  if (current === 'en') {
    return {
      'AttributionControl.ToggleAttribution': 'Toggle attribution',
      'Map.Title': 'Map',
      'NavigationControl.ResetBearing': 'Drag to rotate map, click to reset north',
      'NavigationControl.ZoomIn': 'Zoom in',
      'NavigationControl.ZoomOut': 'Zoom out',
      'Popup.Close': 'Close popup',
      'ScaleControl.Meters': 'm',
      'ScaleControl.Kilometers': 'km',
    };
  }
  return {
    'AttributionControl.ToggleAttribution': '显示或隐藏版权信息',
    'Map.Title': '地图',
    'NavigationControl.ResetBearing': '拖动旋转地图，点击恢复正北',
    'NavigationControl.ZoomIn': '放大',
    'NavigationControl.ZoomOut': '缩小',
    'Popup.Close': '关闭',
    'ScaleControl.Meters': '米',
    'ScaleControl.Kilometers': '公里',
  };
}
