// Uploads the outbox in order when the network is there, each request exactly once on the
// service: a patrol by its idempotency key, points by their time (the service keeps one point
// per patrol and time), a finding by its idempotency key, a photo by its checksum (the service
// keeps a photo once per issue). A request the network or the service failed (no answer, 5xx,
// 429) stays queued and is tried again; one the service refused (4xx: a report outside the
// region, a patrol finished elsewhere) leaves the queue for the problem list, with the
// service's reason, so the chief reads what was not recorded and why.

import { csrfHeaders } from '../api.js';
import { t } from '../i18n.js';
import { outbox, problems, refs } from './store.js';

const POINT_BATCH = 1000;
const RETRY_MS = [2000, 5000, 15000, 30000, 60000];

/** The answer of one request: `status` 0 when the service could not be reached. */
async function send(path, { method = 'POST', json, form } = {}) {
  const headers = { ...csrfHeaders() };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else body = form;
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch {
    return { status: 0, detail: '' };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // No JSON body: the status says enough.
  }
  const detail = typeof data?.detail === 'string' ? data.detail : data?.detail ? JSON.stringify(data.detail) : '';
  return { status: response.status, data, detail };
}

const transient = (status) => status === 0 || status === 408 || status === 429 || status >= 500;

/** Refusals that end the patrol on the phone too (the service will take no more of it). */
export const PATROL_OVER = new Set(['patrolRefused', 'patrolClosed', 'patrolFinishedElsewhere']);

/**
 * The uploader of one signed-in `actor`. `onChange()` is called after every step (the dock
 * shows the queue); `onRefused(op, kind)` after the service refused a request.
 */
export function createSync({ actor, onChange, onRefused }) {
  let running = false;
  let again = false;
  let timer = null;
  let failures = 0;
  let signedOut = false;
  let lastError = null;

  async function refuse(op, count, detail, kind) {
    await problems.add({ actor, kind, opKind: op.kind, title: op.title || '', count, detail });
    await onRefused?.(op, kind);
  }

  /** Sends the first queued request(s); 'done' | 'retry' | 'auth'. */
  async function step(ops) {
    const op = ops[0];
    if (op.kind === 'start') {
      const answer = await send('api/patrols', {
        json: { started_at: op.startedAt, note: op.note || '', idempotency_key: op.key },
      });
      if (transient(answer.status) || answer.status === 401) return [answer, [op]];
      if (answer.status < 300) await refs.put({ key: op.key, id: answer.data.id });
      else {
        await refs.put({ key: op.key, refused: answer.detail });
        await refuse(op, 1, answer.detail, 'patrolRefused');
      }
      return [answer, [op]];
    }
    if (op.kind === 'point') {
      const batch = [];
      for (const next of ops) {
        if (next.kind !== 'point' || next.key !== op.key || batch.length >= POINT_BATCH) break;
        batch.push(next);
      }
      const ref = await refs.get(op.key);
      if (!ref?.id) {
        await refuse(op, batch.length, ref?.refused || '', 'pointsOrphaned');
        return [{ status: 200 }, batch];
      }
      const answer = await send(`api/patrols/${ref.id}/points`, { json: { points: batch.map((p) => p.point) } });
      if (transient(answer.status) || answer.status === 401) return [answer, batch];
      if (answer.status === 400) {
        // One point the service refuses (a fix outside the region) goes; the others are sent again.
        const index = Number(/points\[(\d+)\]/.exec(answer.detail)?.[1]);
        if (Number.isInteger(index) && batch[index]) {
          await refuse(op, 1, answer.detail, 'pointRefused');
          return [{ status: 200 }, [batch[index]]];
        }
      }
      if (answer.status >= 300) await refuse(op, batch.length, answer.detail, answer.status === 409 ? 'patrolClosed' : 'pointsRefused');
      return [answer, batch];
    }
    if (op.kind === 'finish') {
      const ref = await refs.get(op.key);
      if (!ref?.id) return [{ status: 200 }, [op]]; // never started: its refusal is in the list already
      const answer = await send(`api/patrols/${ref.id}/finish`, { json: { note: op.note || null } });
      if (transient(answer.status) || answer.status === 401) return [answer, [op]];
      if (answer.status >= 300) await refuse(op, 1, answer.detail, answer.status === 409 ? 'patrolFinishedElsewhere' : 'finishRefused');
      return [answer, [op]];
    }
    if (op.kind === 'issue') {
      const answer = await send('api/issues', { json: { ...op.issue, idempotency_key: op.key } });
      if (transient(answer.status) || answer.status === 401) return [answer, [op]];
      if (answer.status < 300) await refs.put({ key: op.key, id: answer.data.id });
      else {
        await refs.put({ key: op.key, refused: answer.detail });
        await refuse(op, 1, answer.detail, 'issueRefused');
      }
      return [answer, [op]];
    }
    if (op.kind === 'photo') {
      const ref = await refs.get(op.key);
      if (!ref?.id) {
        await refuse(op, 1, ref?.refused || '', 'photoOrphaned');
        return [{ status: 200 }, [op]];
      }
      const form = new FormData();
      form.append('file', op.blob, op.fileName || 'photo.jpg');
      const answer = await send(`api/issues/${ref.id}/photos`, { form });
      if (transient(answer.status) || answer.status === 401) return [answer, [op]];
      if (answer.status >= 300) await refuse(op, 1, answer.detail, 'photoRefused');
      return [answer, [op]];
    }
    await refuse(op, 1, op.kind, 'unknown');
    return [{ status: 200 }, [op]];
  }

  /** Renews the short-lived session cookie (it may have lapsed while offline). */
  async function renew() {
    const answer = await send('api/auth/refresh');
    return answer.status === 200;
  }

  async function flush() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    timer = null;
    try {
      do {
        again = false;
        for (;;) {
          const ops = await outbox.pending(actor);
          if (!ops.length) break;
          let [answer, done] = await step(ops);
          if (answer.status === 401 && (await renew())) [answer, done] = await step(ops);
          if (answer.status === 401) {
            signedOut = true;
            lastError = answer.detail;
            break;
          }
          if (transient(answer.status)) {
            lastError = answer.detail || (answer.status ? `HTTP ${answer.status}` : t('fieldNoNetwork'));
            failures += 1;
            timer = setTimeout(flush, RETRY_MS[Math.min(failures, RETRY_MS.length) - 1]);
            break;
          }
          failures = 0;
          signedOut = false;
          lastError = null;
          await outbox.remove(done.map((o) => o.seq));
          onChange?.();
        }
      } while (again);
    } finally {
      running = false;
      onChange?.();
    }
  }

  window.addEventListener('online', () => {
    failures = 0;
    flush();
  });

  return {
    flush,
    /** Sends soon: points wait a few seconds to go in one batch, anything else goes now. */
    schedule(delayMs = 0) {
      if (!navigator.onLine) return;
      if (delayMs === 0) flush();
      else timer ??= setTimeout(flush, delayMs);
    },
    get busy() {
      return running;
    },
    get signedOut() {
      return signedOut;
    },
    get lastError() {
      return lastError;
    },
  };
}
