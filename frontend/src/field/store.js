// The field app's outbox in IndexedDB: what a chief records on a patrol (its start, GPS points,
// findings with their photos, its end) waits here until the service has it, so nothing is lost
// when the network drops or the page is closed. Each entry carries the idempotency key the
// service dedupes by; `refs` maps a local key to the id the service gave it, `problems` keeps
// what the service refused (with its reason) until the user has read it.

const DB_NAME = 'ecomap-field';
const VERSION = 1;
let opening = null;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function open() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('ops', { keyPath: 'seq', autoIncrement: true });
      db.createObjectStore('refs', { keyPath: 'key' });
      db.createObjectStore('problems', { keyPath: 'seq', autoIncrement: true });
      db.createObjectStore('state', { keyPath: 'name' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return opening;
}

async function run(storeName, mode, action) {
  const db = await open();
  const tx = db.transaction(storeName, mode);
  const result = action(tx.objectStore(storeName));
  const value = result instanceof IDBRequest ? promised(result) : Promise.resolve(result);
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
  return value;
}

/** A fresh idempotency key (also the local name of a patrol or finding until the service has it). */
export function newKey(prefix) {
  return `${prefix}-${crypto.randomUUID()}`;
}

export const outbox = {
  /** Queues one request; `op` = {actor, kind, key, ...}. */
  add: (op) => run('ops', 'readwrite', (store) => store.add({ ...op, queuedAt: new Date().toISOString() })),
  /** The queued requests of `actor`, oldest first. */
  pending: async (actor) => (await run('ops', 'readonly', (store) => store.getAll())).filter((op) => op.actor === actor),
  /** Everything queued, whoever's (to say what waits for another account). */
  all: () => run('ops', 'readonly', (store) => store.getAll()),
  remove: (seqs) => run('ops', 'readwrite', (store) => seqs.forEach((seq) => store.delete(seq))),
  replace: (op) => run('ops', 'readwrite', (store) => store.put(op)),
};

export const refs = {
  get: (key) => run('refs', 'readonly', (store) => store.get(key)),
  put: (ref) => run('refs', 'readwrite', (store) => store.put(ref)),
};

export const problems = {
  add: (problem) => run('problems', 'readwrite', (store) => store.add({ ...problem, at: new Date().toISOString() })),
  list: async (actor) => (await run('problems', 'readonly', (store) => store.getAll())).filter((p) => p.actor === actor),
  remove: (seq) => run('problems', 'readwrite', (store) => store.delete(seq)),
};

export const state = {
  get: async (name) => (await run('state', 'readonly', (store) => store.get(name)))?.value ?? null,
  set: (name, value) => run('state', 'readwrite', (store) => store.put({ name, value })),
  clear: (name) => run('state', 'readwrite', (store) => store.delete(name)),
};
