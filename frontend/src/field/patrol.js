// A patrol (巡河 / 巡湾) recorded on the phone: the Geolocation API's fixes (watchPosition)
// become the track shown on the map with its duration and length, and each fix is queued for
// the patrol's points on the service; the patrol's start and end are queued too, so a patrol
// walked without network arrives whole when it returns. The patrol in progress is kept in
// IndexedDB: closing the page does not end it.

import { trackLengthM } from './geo.js';
import { newKey, outbox, state } from './store.js';

const SOURCE = 'field-track';
const MIN_STEP_M = 2;
/** A fix less than MIN_STEP_M from the last point is not a new point (standing still, GPS
 * jitter); the patrol's end adds the last fix, so its duration holds. */
/** Points wait this long to go in one batch (a fix comes every second or so). */
export const POINT_BATCH_MS = 5000;

function addLayers(map) {
  if (map.getSource(SOURCE)) return;
  map.addSource(SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({
    id: 'field-track-casing',
    type: 'line',
    source: SOURCE,
    filter: ['==', ['get', 'kind'], 'track'],
    paint: { 'line-color': '#ffffff', 'line-width': 8 },
    layout: { 'line-cap': 'round', 'line-join': 'round' },
  });
  map.addLayer({
    id: 'field-track-line',
    type: 'line',
    source: SOURCE,
    filter: ['==', ['get', 'kind'], 'track'],
    paint: { 'line-color': '#d81b60', 'line-width': 4.5 },
    layout: { 'line-cap': 'round', 'line-join': 'round' },
  });
  map.addLayer({
    id: 'field-findings',
    type: 'circle',
    source: SOURCE,
    filter: ['==', ['get', 'kind'], 'finding'],
    paint: { 'circle-radius': 9, 'circle-color': '#ff6f00', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 3 },
  });
  map.addLayer({
    id: 'field-position',
    type: 'circle',
    source: SOURCE,
    filter: ['==', ['get', 'kind'], 'position'],
    paint: { 'circle-radius': 8, 'circle-color': '#1565c0', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 3 },
  });
}

/**
 * The recorder of one chief (`actor`). `schedule(ms)` asks the uploader to send; `onChange(fix)`
 * after every fix and state change; `onError(message key, detail)` when the phone cannot locate.
 */
export async function createPatrolRecorder({ map, actor, schedule, onChange, onError }) {
  let patrol = await state.get(`patrol:${actor}`);
  let fix = null;
  let watchId = null;
  let ended = null; // the last patrol's points, shown until the next one starts
  const findings = [];

  function draw() {
    addLayers(map);
    const features = findings.map((coordinates) => ({
      type: 'Feature',
      properties: { kind: 'finding' },
      geometry: { type: 'Point', coordinates },
    }));
    const track = (patrol || ended)?.points || [];
    if (track.length > 1) {
      features.push({
        type: 'Feature',
        properties: { kind: 'track' },
        geometry: { type: 'LineString', coordinates: track.map((p) => [p.lon, p.lat]) },
      });
    }
    if (fix) features.push({ type: 'Feature', properties: { kind: 'position' }, geometry: { type: 'Point', coordinates: [fix.lon, fix.lat] } });
    map.getSource(SOURCE).setData({ type: 'FeatureCollection', features });
  }

  async function record(position) {
    const { longitude: lon, latitude: lat, accuracy } = position.coords;
    const time = new Date(position.timestamp || Date.now());
    fix = { lon, lat, accuracy, time };
    if (patrol) {
      const last = patrol.points.at(-1);
      const moved = last ? trackLengthM([[last.lon, last.lat], [lon, lat]]) : Infinity;
      if (!last || (time > new Date(last.time) && moved >= MIN_STEP_M)) await addPoint(fix, moved);
    }
    draw();
    onChange(fix);
  }

  async function addPoint({ lon, lat, accuracy, time }, moved) {
    const point = { lon, lat, time: time.toISOString(), accuracy_m: Number.isFinite(accuracy) ? Math.min(accuracy, 10000) : null };
    patrol.points.push(point);
    patrol.lengthM = (patrol.lengthM || 0) + (Number.isFinite(moved) ? moved : 0);
    await outbox.add({ actor, kind: 'point', key: patrol.key, point });
    await state.set(`patrol:${actor}`, patrol);
    schedule(POINT_BATCH_MS);
  }

  function watch() {
    if (watchId !== null || !navigator.geolocation) return;
    watchId = navigator.geolocation.watchPosition(
      (position) => record(position),
      // A timeout only says no new fix came (standing still, or under a bridge): keep watching.
      (err) => err.code !== err.TIMEOUT && onError(err.code === err.PERMISSION_DENIED ? 'fieldGeoDenied' : 'fieldGeoFailed', err.message),
      { enableHighAccuracy: true, maximumAge: 0, timeout: 60000 },
    );
  }

  function unwatch() {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
  }

  if (patrol) {
    watch();
    draw();
  }

  return {
    get active() {
      return patrol;
    },
    get fix() {
      return fix;
    },
    /** Seconds since the patrol began. */
    durationS: () => (patrol ? Math.max(0, (Date.now() - new Date(patrol.startedAt)) / 1000) : 0),
    async start() {
      if (patrol) return;
      patrol = { key: newKey('patrol'), startedAt: new Date().toISOString(), points: [], lengthM: 0 };
      ended = null;
      await state.set(`patrol:${actor}`, patrol);
      await outbox.add({ actor, kind: 'start', key: patrol.key, startedAt: patrol.startedAt });
      schedule(0);
      watch();
      draw();
      onChange();
    },
    /** Ends the patrol; returns what it was (its points, length and duration). */
    async finish() {
      if (!patrol) return null;
      unwatch();
      const last = patrol.points.at(-1);
      if (fix && last && fix.time > new Date(last.time)) await addPoint(fix, 0); // where and when it ended
      const done = { ...patrol, durationS: this.durationS() };
      await outbox.add({ actor, kind: 'finish', key: patrol.key });
      await state.clear(`patrol:${actor}`);
      ended = patrol;
      patrol = null;
      schedule(0);
      draw();
      onChange();
      return done;
    },
    /** Stops recording a patrol the service has closed (finished elsewhere) or refused to start:
     * nothing more is queued for it. */
    async abandon(key) {
      if (!patrol || patrol.key !== key) return;
      unwatch();
      await state.clear(`patrol:${actor}`);
      ended = patrol;
      patrol = null;
      draw();
      onChange();
    },
    /** Marks a finding on the map. */
    addFinding(coordinates) {
      findings.push(coordinates);
      draw();
    },
  };
}
