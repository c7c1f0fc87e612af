// EcoMap Xiamen map UI: loads the catalog and style from the service, builds the map and wires
// the panels (layers, search, site check, chiefs) and the shareable URL state together.

import './style.css';
import { api } from './api.js';
import { createAuthControl, loadSession, takeLandingRequest } from './auth.js';
import { applyBasemap, showPlaceLabels, watchBasemapErrors } from './basemaps.js';
import { createChiefView } from './chief.js';
import { isPickingLocation, setupField } from './field/index.js';
import { createHighlighter } from './highlight.js';
import { getLang, onLangChange, setLang, t, translateDom } from './i18n.js';
import { createLayerControl } from './layer-control.js';
import { createLayersPanel } from './layers-panel.js';
import { applyMapLocale, createMap, setBottomOcclusion, setupCoordinates } from './map.js';
import { createRasterControl } from './raster-control.js';
import { RasterLegendControl } from './raster-legend.js';
import { RegionSectionsControl } from './region-sections.js';
import { setupFeatureInteraction } from './popup.js';
import { createPrintTool } from './print.js';
import { setupSearch } from './search.js';
import { setupWorkDock } from './work-dock.js';
import { createWorkLayers } from './work-layers.js';
import { h, notice, setChildren, setupDrawer, setupTabs, toast } from './ui.js';
import { readViewState, writeViewState } from './url-state.js';
import { createZoneCheck } from './zone-check.js';

const $ = (id) => document.getElementById(id);

/** GET /api/config is optional: without it there is no Tianditu key and no vector basemap. */
async function loadConfig() {
  try {
    const config = await api.config();
    return {
      tiandituKey: config.tianditu_key || null,
      ssoLogin: config.sso_login || null,
      vector: config.basemap?.vector || null,
      defaultBasemap: config.basemap?.default || 'none',
    };
  } catch {
    return { tiandituKey: null, ssoLogin: null, vector: null, defaultBasemap: 'none' };
  }
}

/**
 * GET /api/rasters is optional too: a service without raster layers (or an older one) gives a
 * map without the land cover and terrain group.
 */
async function loadRasters() {
  try {
    const rasters = await api.rasters();
    return Array.isArray(rasters) ? rasters : rasters?.rasters || [];
  } catch (err) {
    if (!err.missing) console.warn('raster layers unavailable:', err.message);
    return [];
  }
}

function showFatal(err) {
  const retry = h('button', { type: 'button', class: 'btn', onclick: () => window.location.reload() }, t('retry'));
  const box = h('div', { class: 'fatal', role: 'alert' }, h('p', {}, t('loadFailed', { detail: err.message || String(err) })), retry);
  setChildren($('panel-layers'), notice('error', t('loadFailed', { detail: err.message || String(err) })));
  $('map').append(box);
}

async function start() {
  const initial = readViewState();
  if (initial.lang) setLang(initial.lang);
  else translateDom();
  document.documentElement.lang = getLang() === 'zh' ? 'zh-CN' : 'en';
  $('search-form').addEventListener('submit', (event) => event.preventDefault());

  const drawerUi = setupDrawer({ button: $('drawer-toggle'), drawer: $('sidebar') });
  $('lang-toggle').addEventListener('click', () => setLang(getLang() === 'zh' ? 'en' : 'zh'));

  // Who is signed in comes first: the catalog, style and tiles are what the service lets them see.
  const [session, config] = await Promise.all([loadSession(), loadConfig()]);
  let openMyJurisdiction = () => {};
  createAuthControl({
    button: $('account-toggle'),
    panel: $('account-panel'),
    session,
    ssoLogin: config.ssoLogin,
    onMyJurisdiction: (id) => openMyJurisdiction(id),
  });
  let layersDoc;
  let style;
  let rasters;
  try {
    [layersDoc, style, rasters] = await Promise.all([api.layers(), api.style(), loadRasters()]);
  } catch (err) {
    showFatal(err);
    return;
  }
  const catalog = new Map(layersDoc.layers.map((layer) => [layer.id, layer]));
  // The offline basemap's hillshade comes from the elevation raster, when the service has one.
  const dem = rasters.find((r) => r.role === 'elevation' && r.hillshade_tiles && r.available !== false);
  config.hillshade = dem ? { tiles: dem.hillshade_tiles, minzoom: dem.minzoom, bounds: dem.bounds } : null;
  $('sample-banner').hidden = !layersDoc.layers.some((layer) => layer.sample_data) && !rasters.some((r) => r.is_sample);

  const map = await createMap({ container: 'map', style, view: initial });
  map.on('error', (event) => {
    // Tile or resource failures: keep the map usable and say so once in a while.
    console.error('map error:', event.error?.message || event.error);
  });

  setBottomOcclusion(() => drawerUi.coveredHeight());
  // Banners over the top of the map: whose jurisdiction is shown, what a tool waits for.
  const chiefBanner = h('div', { class: 'map-banner chief-banner', id: 'chief-banner', role: 'status', hidden: true });
  const toolHint = h('div', { class: 'map-banner tool-hint', id: 'tool-hint', role: 'status', hidden: true });
  const basemapBanner = h('div', { class: 'map-banner basemap-error', id: 'basemap-error', role: 'alert', hidden: true });
  $('map').append(h('div', { class: 'map-banners' }, chiefBanner, toolHint, basemapBanner));

  const highlighter = createHighlighter(map, catalog);
  let layersPanel = null;
  // The hash's `layers` lists the visible catalog layers, then the visible rasters, then the work layers.
  let workLayers = null;
  const visibleIds = () => [...control.visibleIds(), ...rasterControl.visibleIds(), ...(workLayers?.visibleIds() || [])];
  const syncHash = () => writeViewState({ layers: visibleIds() });
  // The hash's `opacity` keeps the layers and rasters not at their default opacity.
  const syncOpacity = () => {
    const changed = {};
    for (const id of catalog.keys()) {
      if (Math.abs(control.getOpacity(id) - 1) > 0.005) changed[id] = control.getOpacity(id);
    }
    for (const [id, fallback] of rasterDefaults) {
      if (Math.abs(rasterControl.getOpacity(id) - fallback) > 0.005) changed[id] = rasterControl.getOpacity(id);
    }
    writeViewState({ opacity: changed });
  };
  const applyOpacity = (opacity) => {
    for (const [id, value] of Object.entries(opacity || {})) {
      if (catalog.has(id)) control.setOpacity(id, value);
      else if (rasterDefaults.has(id)) rasterControl.setOpacity(id, value);
    }
  };
  const control = createLayerControl(map, catalog, {
    onChange: (kind) => (kind === 'visibility' ? syncHash() : kind === 'opacity' && syncOpacity()),
  });
  let rasterLegendControl = null;
  const rasterControl = createRasterControl(map, rasters, {
    catalog,
    onChange: (kind) => {
      if (kind === 'opacity') syncOpacity();
      if (kind !== 'visibility') return;
      syncHash();
      rasterLegendControl?.render();
      layersPanel?.render();
    },
  });
  const rasterDefaults = new Map(rasters.map((r) => [r.id, rasterControl.getOpacity(r.id)]));
  // The legends of the visible rasters, on the map (the layer panel is a drawer on phones).
  rasterLegendControl = new RasterLegendControl(rasterControl);
  map.addControl(rasterLegendControl, 'bottom-left');
  // The cross-boundary sections between cities and their month's status (hidden until asked for).
  map.addControl(new RegionSectionsControl(), 'top-right');
  if (initial.layers) {
    control.setVisibleIds(initial.layers);
    rasterControl.setVisibleIds(initial.layers);
  }
  applyOpacity(initial.opacity);

  let basemap = null;
  const basemapErrors = watchBasemapErrors(map, { banner: basemapBanner, current: () => basemap });
  const selectBasemap = (id) => {
    basemapErrors.reset();
    basemap = applyBasemap(map, id, config);
    writeViewState({ basemap: basemap.id === config.defaultBasemap ? null : basemap.id });
    layersPanel?.render();
  };
  selectBasemap(initial.basemap || config.defaultBasemap);
  // Place names of the gazetteer on the offline basemap (the stations and districts are labelled
  // by their own layers); the map does not wait for them.
  api
    .places({ kind: 'lake,reservoir,bay,island,mountain,town,subdistrict,village,university,port,landmark', limit: 2000 })
    .then((places) => showPlaceLabels(map, places.features, config))
    .catch((err) => console.warn('place labels unavailable:', err.message));
  // Files (一河一档), alerts, issues and the assessment are for signed-in staff (the workflow's readers).
  const canReadFiles = () => Boolean(session.me?.role);
  // Open issues and alerts (clustered) and patrol tracks: offered when the service lets this user read them.
  workLayers = createWorkLayers(map, {
    me: session.me,
    canReadFiles,
    onChange: (kind) => {
      layersPanel?.render();
      if (kind === 'visibility') syncHash();
    },
    isClickCaptured: () => zoneCheck.isCapturing() || isPickingLocation(),
  });
  if (initial.layers) workLayers.setVisibleIds(initial.layers);
  layersPanel = createLayersPanel($('panel-layers'), {
    extraSection: () => workLayers.panelSection(),
    layersDoc,
    control,
    rasterControl,
    map,
    basemap: {
      get current() {
        return basemap.id;
      },
      config,
      onSelect: selectBasemap,
    },
  });
  // Re-render the panel when visibility changes outside it (search, chief view, hash).
  const rerender = () => layersPanel.render();
  const baseSetVisible = control.setVisible;
  control.setVisible = (id, on) => {
    const before = control.isVisible(id);
    baseSetVisible(id, on);
    if (before !== on) rerender();
  };

  const zoneCheck = createZoneCheck($('panel-zone'), map, {
    catalog,
    highlighter,
    drawerUi,
    hint: toolHint,
    onPrint: (report) => printTool.openReport(report),
  });
  const popups = setupFeatureInteraction(map, catalog, {
    // A click on an issue, alert or patrol opens the work layers' popup, not the features' below.
    isClickCaptured: (event) => zoneCheck.isCapturing() || isPickingLocation() || Boolean(event && workLayers.hit(event.point)),
    getLang,
    getVisibleRasters: () => rasterControl.visibleIds(),
    canReadFiles,
  });
  const chiefView = createChiefView($('panel-chief'), map, {
    highlighter,
    control,
    drawerUi,
    banner: chiefBanner,
    onChiefChange: (id) => writeViewState({ chief: id }),
    canReadFiles,
  });
  const tabs = setupTabs($('sidebar').querySelector('[role="tablist"]'), (name) => {
    if (name === 'chief') chiefView.activate();
  });

  // A tool the service refuses this user (401/403 from its API) is not offered.
  api.chiefs({ level: 'city' }).catch((err) => {
    if (err.status === 401 || err.status === 403) tabs.hide('chief');
  });

  setupSearch({
    input: $('search-input'),
    list: $('search-results'),
    status: $('search-status'),
    map,
    catalog,
    control,
    highlighter,
    onSelect: () => {
      popups.close();
      drawerUi.closeOnPhone();
    },
    onChief: (id) => {
      tabs.select('chief');
      drawerUi.open();
      chiefView.open(id);
    },
  });

  const printTool = createPrintTool({ map, catalog, control, rasters, rasterControl });
  const workDock = setupWorkDock(map, { catalog, highlighter, control });

  const coords = setupCoordinates(map, $('coords'));
  const saveView = () => {
    const center = map.getCenter();
    writeViewState({ center: [center.lng, center.lat], zoom: map.getZoom(), layers: visibleIds() });
  };
  map.on('moveend', saveView);
  saveView();

  onLangChange((lang) => {
    translateDom();
    control.setLabelLanguage(lang);
    applyMapLocale(map);
    selectBasemap(basemap.id); // the vector basemap's and the offline place labels' language
    coords.render();
    writeViewState({ lang: lang === 'zh' ? null : lang });
  });
  if (getLang() !== 'zh') {
    translateDom();
    control.setLabelLanguage(getLang());
  }

  const openChiefFromHash = (state) => {
    if (!state.chief) return;
    tabs.select('chief');
    drawerUi.open();
    chiefView.open(state.chief);
  };
  openMyJurisdiction = (id) => openChiefFromHash({ chief: id });
  // A chief lands on their own jurisdiction: after signing in, or opening the map with no place in the link.
  const me = session.me;
  const landing = takeLandingRequest();
  if (me.role === 'chief') workLayers.ready.then(() => workLayers.setVisible('issues', true));
  if (me.role === 'chief' && me.chief_id != null && (landing || (!initial.chief && !initial.center))) {
    tabs.select('chief');
    chiefView.open(me.chief_id);
  } else {
    openChiefFromHash(initial);
  }
  window.addEventListener('hashchange', () => {
    const state = readViewState();
    if (state.lang && state.lang !== getLang()) setLang(state.lang);
    if (state.layers) {
      control.setVisibleIds(state.layers);
      rasterControl.setVisibleIds(state.layers);
      workLayers.setVisibleIds(state.layers);
    }
    if (state.opacity) {
      applyOpacity(state.opacity);
      layersPanel.render();
    }
    if (state.center && state.zoom != null) map.jumpTo({ center: state.center, zoom: state.zoom });
    openChiefFromHash(state);
  });

  // The field app: a chief's patrols and findings (offline too), everyone's public report.
  const field = setupField({ map, me, toast, drawerUi });

  // For tests and for people poking around in the console.
  window.ecomap = { map, catalog, control, rasterControl, highlighter, zoneCheck, chiefView, popups, drawerUi, toast, me, field, printTool, workDock, workLayers };
  document.body.dataset.ready = 'true';
}

start().catch((err) => {
  console.error(err);
  showFatal(err);
});
