// Interface language: Chinese by default, English on request. Texts from the service come as
// {zh, en} objects and are picked with `pick()`; the UI's own strings live in MESSAGES.

const MESSAGES = {
  zh: {
    appTitle: '厦门生态环境一张图',
    appSubtitle: 'EcoMap Xiamen',
    skipToMap: '跳到地图',
    menu: '打开或关闭侧边栏',
    langToggle: 'EN',
    langToggleLabel: 'Switch to English',
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
    searchPlaceholder: '搜索红线、保护地、河流、站点…',
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
    colOverlap: '重叠（m²）',
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
    landCoverNodata: '其中无数据 {area} km²',
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
    // Chief view
    chiefIntro: '选择河长或湾长，查看其负责的河段、海湾及其中的监测站点与排口。',
    chiefRole: '类型',
    chiefLevel: '级别',
    chiefAll: '全部',
    chiefList: '河湖长名单',
    chiefCounts: '河段 {rivers} · 海湾 {bays}',
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
    upstreamLength: '上游河段总长 {d} km',
    upstreamWatersheds: '汇水流域',
    upstreamUnavailable: '上游追溯服务暂不可用：{detail}',
    distanceKm: '{d} km',
    zoomTo: '定位到 {name}',
  },
  en: {
    appTitle: 'EcoMap Xiamen',
    appSubtitle: '厦门生态环境一张图',
    skipToMap: 'Skip to map',
    menu: 'Open or close the side panel',
    langToggle: '中文',
    langToggleLabel: '切换到中文',
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
    sampleBadgeTitle: 'This layer holds demo sample data / 示例数据',
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
    searchPlaceholder: 'Search red lines, protected areas, rivers, stations…',
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
    colOverlap: 'Overlap (m²)',
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
    landCoverNodata: 'of which {area} km² without data',
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
    chiefIntro: 'Choose a river or bay chief to see their segments and bays, with the stations and outfalls in them.',
    chiefRole: 'Role',
    chiefLevel: 'Level',
    chiefAll: 'All',
    chiefList: 'Chiefs',
    chiefCounts: '{rivers} segments · {bays} bays',
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
    upstreamLength: 'Upstream length {d} km',
    upstreamWatersheds: 'Contributing watersheds',
    upstreamUnavailable: 'Upstream tracing is not available: {detail}',
    distanceKm: '{d} km',
    zoomTo: 'Zoom to {name}',
  },
};

// Code values stored in the data, shown in the interface language. Chinese domain values that
// are already Chinese only need an English label.
const VALUE_LABELS = {
  air_national: { zh: '国控空气站', en: 'National air station' },
  air_local: { zh: '市控空气站', en: 'Local air station' },
  water_auto: { zh: '水质自动站', en: 'Automatic water station' },
  seawater: { zh: '海水监测站', en: 'Seawater station' },
  drinking_intake: { zh: '饮用水取水口', en: 'Drinking-water intake' },
  outfall: { zh: '入海排口', en: 'Outfall' },
  section: { zh: '监测断面', en: 'Monitoring section' },
  active: { zh: '运行', en: 'active' },
  maintenance: { zh: '维护中', en: 'maintenance' },
  inactive: { zh: '停用', en: 'inactive' },
  basin: { zh: '流域', en: 'basin' },
  sub_basin: { zh: '子流域', en: 'sub-basin' },
  small: { zh: '小流域', en: 'small watershed' },
  river: { zh: '河长', en: 'River chief' },
  bay: { zh: '湾长', en: 'Bay chief' },
  city: { zh: '市级', en: 'city' },
  district: { zh: '区级', en: 'district' },
  town: { zh: '镇（街）级', en: 'town' },
  village: { zh: '村级', en: 'village' },
  水源涵养: { en: 'Water conservation' },
  生物多样性维护: { en: 'Biodiversity' },
  水土保持: { en: 'Soil and water conservation' },
  防风固沙: { en: 'Windbreak and sand fixation' },
  海岸生态稳定: { en: 'Coastal stability' },
  水土流失敏感: { en: 'Erosion sensitive' },
  土地沙化敏感: { en: 'Desertification sensitive' },
  石漠化敏感: { en: 'Rocky desertification sensitive' },
  陆域: { en: 'land' },
  海域: { en: 'sea' },
  水域: { en: 'water' },
  禁止类: { en: 'prohibited' },
  限制类: { en: 'restricted' },
  国家公园: { en: 'National park' },
  自然保护区: { en: 'Nature reserve' },
  森林公园: { en: 'Forest park' },
  湿地公园: { en: 'Wetland park' },
  海洋公园: { en: 'Marine park' },
  地质公园: { en: 'Geopark' },
  风景名胜区: { en: 'Scenic area' },
  国家级: { en: 'national' },
  省级: { en: 'provincial' },
  市级: { en: 'municipal' },
  核心保护区: { en: 'Core protection zone' },
  一般控制区: { en: 'General control zone' },
  核心区: { en: 'Core zone' },
  缓冲区: { en: 'Buffer zone' },
  实验区: { en: 'Experimental zone' },
  两区: { en: 'two zones' },
  三区: { en: 'three zones' },
  一级: { en: 'Grade I' },
  二级: { en: 'Grade II' },
  准保护区: { en: 'Quasi-protection zone' },
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

/** Formats a number for the current language with at most `digits` decimals. */
export function formatNumber(value, digits = 0) {
  if (value == null || Number.isNaN(Number(value))) return '';
  return Number(value).toLocaleString(current === 'zh' ? 'zh-CN' : 'en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  });
}

/** Fills elements carrying data-i18n / data-i18n-aria / data-i18n-placeholder / data-i18n-title. */
export function translateDom(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

/** MapLibre control strings in the current language. */
export function mapLocale() {
  if (current === 'en') return {};
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
