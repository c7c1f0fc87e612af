// The field app (巡河巡湾, offline): for a signed-in chief a dock over the map to start and end
// a patrol (track, duration and length live), add findings with a photo, keep the
// jurisdiction's map for offline use, and see what waits to be uploaded or was refused; for
// everyone else a button to report pollution (公众参与). The service worker (sw.js) makes the
// map an installable app that opens without network.

import { api } from '../api.js';
import { formatNumber, getLang, onLangChange, t } from '../i18n.js';
import { h, notice, setChildren } from '../ui.js';
import './field.css';
import { openFindingForm } from './finding.js';
import { saveArea, savedArea } from './offline-area.js';
import { createPatrolRecorder } from './patrol.js';
import { openPublicReport } from './public-report.js';
import { outbox, problems } from './store.js';
import { createSync, PATROL_OVER } from './sync.js';

/** Registers the service worker (sw.js next to the page); resolves to whether it controls the page. */
async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return false;
  try {
    await navigator.serviceWorker.register('./sw.js', { scope: './' });
    await navigator.serviceWorker.ready;
    return true;
  } catch (err) {
    console.warn('offline app unavailable:', err.message);
    return false;
  }
}

function clock(seconds) {
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

function lengthText(m) {
  return m >= 1000 ? t('fieldKm', { d: formatNumber(m / 1000, 2, 2) }) : t('fieldM', { d: formatNumber(m, 0) });
}

let picking = false;

/** Whether the map waits for a location tap (the feature popups leave that tap alone). */
export function isPickingLocation() {
  return picking;
}

/**
 * Lets the user tap the map once: `done([lon, lat])`, or `done(null)` when cancelled. A banner
 * says what the map waits for.
 */
function mapPicker(map) {
  return (done) => {
    const banner = h(
      'div',
      { class: 'field-pick-banner', id: 'field-pick-banner', role: 'status' },
      h('span', {}, t('fieldTapMap')),
      h('button', { type: 'button', class: 'btn field-btn', onclick: () => finish(null) }, t('fieldCancel')),
    );
    const onClick = (event) => finish([event.lngLat.lng, event.lngLat.lat]);
    function finish(point) {
      map.off('click', onClick);
      banner.remove();
      map.getCanvas().style.cursor = '';
      picking = false;
      done(point);
    }
    picking = true;
    map.getCanvas().style.cursor = 'crosshair';
    map.getContainer().append(banner);
    map.on('click', onClick);
  };
}

function problemText(p) {
  const base = t(`fieldProblem_${p.kind}`, { n: p.count, title: p.title });
  return p.detail ? `${base} ${t('fieldProblemReason', { detail: p.detail })}` : base;
}

/**
 * Builds the field dock on the map for `me` (GET api/auth/me); `drawerUi` is the phone's
 * bottom sheet the dock stays above.
 */
export async function setupField({ map, me, toast, drawerUi }) {
  const swReady = registerServiceWorker();
  const pickOnMap = mapPicker(map);
  const dock = h('div', { class: 'field-dock', id: 'field-dock' });
  map.getContainer().append(dock);
  // On a phone the dock rides above the bottom sheet (and gives way when the sheet is full).
  const place = () => {
    dock.hidden = drawerUi.snap === 'full' && drawerUi.coveredHeight() > 0;
    dock.style.setProperty('--field-above', `${drawerUi.coveredHeight()}px`);
  };
  new MutationObserver(place).observe(document.body, { attributes: true, attributeFilter: ['data-sheet'] });
  place();
  const isChief = me.kind === 'user' && me.role === 'chief' && me.chief_id != null;
  if (!isChief) {
    const render = () =>
      setChildren(
        dock,
        h(
          'button',
          { type: 'button', class: 'btn primary field-btn field-report', id: 'public-report-open', onclick: () => openPublicReport({ pickOnMap }) },
          `⚑ ${t('publicOpen')}`,
        ),
      );
    onLangChange(render);
    render();
    return { swReady };
  }

  const actor = me.name;
  let pending = 0;
  let waitingOthers = 0;
  let refused = [];
  let showProblems = false;
  let saving = null;
  let lastPatrol = null;
  let geoError = null;
  let recorder = null;
  const sync = createSync({
    actor,
    onChange: () => refresh(),
    onRefused: async (op, kind) => {
      if (PATROL_OVER.has(kind)) await recorder?.abandon(op.key);
      showProblems = true;
    },
  });
  recorder = await createPatrolRecorder({
    map,
    actor,
    schedule: (ms) => sync.schedule(ms),
    onChange: (fix) => {
      if (fix) geoError = null;
      refresh();
    },
    onError: (key, detail) => {
      geoError = t(key, { detail });
      render();
    },
  });

  let generation = 0;
  /** Counts the queue again and redraws (an older count finishing late is not shown). */
  async function refresh() {
    const mine = ++generation;
    const all = await outbox.all();
    const listed = await problems.list(actor);
    if (mine !== generation) return;
    pending = all.filter((op) => op.actor === actor).length;
    waitingOthers = all.length - pending;
    refused = listed;
    render();
  }

  function statusLine() {
    const online = navigator.onLine;
    const parts = [online ? t('fieldOnline') : t('fieldOffline')];
    parts.push(pending ? t('fieldPending', { n: pending }) : t('fieldAllSent'));
    if (waitingOthers) parts.push(t('fieldOthersWaiting', { n: waitingOthers }));
    if (sync.signedOut) parts.push(t('fieldSignInAgain'));
    return h(
      'p',
      { class: `field-status ${online ? 'is-online' : 'is-offline'}`, id: 'field-status', 'data-pending': pending, 'aria-live': 'polite' },
      h('span', { class: 'field-dot', 'aria-hidden': 'true' }),
      parts.join(' · '),
    );
  }

  function patrolStats() {
    const patrol = recorder.active;
    if (!patrol) {
      if (!lastPatrol) return null;
      return h(
        'p',
        { class: 'field-stats field-last', id: 'field-last-patrol', 'data-points': lastPatrol.points.length, 'data-length-m': lastPatrol.lengthM },
        t('fieldLastPatrol', { time: clock(lastPatrol.durationS), length: lengthText(lastPatrol.lengthM), n: lastPatrol.points.length }),
      );
    }
    return h(
      'div',
      { class: 'field-stats', id: 'field-stats', 'data-length-m': patrol.lengthM, 'data-points': patrol.points.length },
      h('span', { class: 'field-stat' }, h('small', {}, t('fieldDuration')), h('strong', { id: 'field-duration' }, clock(recorder.durationS()))),
      h('span', { class: 'field-stat' }, h('small', {}, t('fieldLength')), h('strong', { id: 'field-length' }, lengthText(patrol.lengthM))),
      h('span', { class: 'field-stat' }, h('small', {}, t('fieldPoints')), h('strong', { id: 'field-points' }, String(patrol.points.length))),
    );
  }

  async function addFinding() {
    await openFindingForm({
      actor,
      latestFix: () => recorder.fix,
      pickOnMap,
      schedule: (ms) => sync.schedule(ms),
      onSaved: (coordinates) => {
        recorder.addFinding(coordinates);
        toast(navigator.onLine ? t('fieldFindingSaved') : t('fieldFindingQueued'));
        refresh();
      },
    });
  }

  async function keepOffline() {
    saving = { done: 0, total: 0 };
    render();
    try {
      const detail = await api.chief(me.chief_id);
      const bbox = detail.bbox;
      if (!bbox) throw new Error(t('fieldNoBbox'));
      const summary = await saveArea(map, {
        bbox,
        dataUrls: [`api/chiefs/${me.chief_id}`, 'api/workflow', 'api/layers', 'styles/default.json', 'api/auth/me', 'api/config'],
        onProgress: (done, total) => {
          saving = { done, total };
          render();
        },
      });
      toast(t('fieldOfflineSaved', { n: summary.tiles }));
    } catch (err) {
      toast(t('fieldOfflineFailed', { detail: err.message }), 'error');
    }
    saving = null;
    render();
  }

  function offlineButton() {
    const saved = savedArea();
    const label = saving
      ? t('fieldOfflineSaving', { done: saving.done, total: saving.total || '…' })
      : saved
        ? t('fieldOfflineAgain')
        : t('fieldOfflineSave');
    return h(
      'button',
      { type: 'button', class: 'btn field-btn field-secondary', id: 'field-offline', disabled: Boolean(saving) || !navigator.onLine, onclick: keepOffline, 'data-saved': saved?.tiles ?? '' },
      `⤓ ${label}`,
    );
  }

  function problemList() {
    if (!refused.length) return null;
    const toggle = h(
      'button',
      { type: 'button', class: 'btn field-btn field-problems-toggle', id: 'field-problems-toggle', 'aria-expanded': String(showProblems), onclick: () => ((showProblems = !showProblems), render()) },
      `⚠ ${t('fieldProblems', { n: refused.length })}`,
    );
    if (!showProblems) return toggle;
    return [
      toggle,
      h(
        'ul',
        { class: 'field-problems', id: 'field-problems' },
        refused.map((p) =>
          h(
            'li',
            { 'data-kind': p.kind },
            h('span', {}, problemText(p)),
            h('button', { type: 'button', class: 'btn field-btn', onclick: async () => (await problems.remove(p.seq), refresh()) }, t('fieldDismiss')),
          ),
        ),
      ),
    ];
  }

  function actions() {
    if (recorder.active) {
      return h(
        'div',
        { class: 'field-row' },
        h('button', { type: 'button', class: 'btn primary field-btn field-main', id: 'field-finding', onclick: addFinding }, `⚑ ${t('fieldAddFinding')}`),
        h(
          'button',
          {
            type: 'button',
            class: 'btn field-btn field-stop',
            id: 'field-stop',
            onclick: async () => {
              lastPatrol = await recorder.finish();
              toast(t('fieldPatrolEnded', { length: lengthText(lastPatrol.lengthM) }));
              refresh();
            },
          },
          `■ ${t('fieldStop')}`,
        ),
      );
    }
    return h(
      'div',
      { class: 'field-row' },
      h(
        'button',
        {
          type: 'button',
          class: 'btn primary field-btn field-main',
          id: 'field-start',
          onclick: async () => {
            geoError = null;
            lastPatrol = null;
            await recorder.start();
            refresh();
          },
        },
        `▶ ${t('fieldStart')}`,
      ),
      h('button', { type: 'button', class: 'btn field-btn', id: 'field-finding', onclick: addFinding }, `⚑ ${t('fieldReport')}`),
    );
  }

  function render() {
    setChildren(
      dock,
      statusLine(),
      patrolStats(),
      geoError && notice('error', geoError),
      actions(),
      problemList(),
      recorder.active ? null : offlineButton(),
    );
    dock.dataset.lang = getLang();
    dock.dataset.patrol = recorder.active ? 'active' : 'idle';
  }

  // The clock of a patrol in progress.
  setInterval(() => {
    const duration = dock.querySelector('#field-duration');
    if (duration && recorder.active) duration.textContent = clock(recorder.durationS());
  }, 1000);
  window.addEventListener('online', refresh);
  window.addEventListener('offline', refresh);
  onLangChange(render);
  await refresh();
  sync.flush();
  return { swReady, sync, recorder, refresh };
}
