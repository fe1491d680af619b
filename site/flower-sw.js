// Flower-CDN service worker (https://github.com/flowercdn/flower).
//
// Serve this file at the root of the site (/flower-sw.js) so that its scope
// covers the whole site; /flower/flower.js registers it. It loads the same
// WebAssembly module as the page (/flower/flower.wasm) in "worker" mode:
// the Go code (worker/) answers GET requests for the site's whitelisted URLs
// from its verified IndexedDB cache, from a page-side peer, or from the
// origin. Everything else is not touched: no respondWith, the browser does
// what it would do without Flower-CDN. Any failure on our side falls back to
// the network.
'use strict';

const BASE = '/flower/';
importScripts(BASE + 'wasm_exec.js');

let W = null; // globalThis.flowerWorker, once the Go side is ready

// Windows whose page-side peer runs (clientId -> last heard, ms). The pages
// say so with {op: "peer-up"} when their peer starts and every 10 s after;
// any word on a request's channel counts too (ask: a page answering other
// requests is alive, and a request it has not read yet is queued behind
// them).
const peers = new Map();
const PEER_FRESH_MS = 30000;

const started = (async () => {
  const go = new Go();
  // ?log=debug on the worker's URL (flower.js passes its data-log).
  go.argv = ['flower', 'worker', new URL(self.location.href).searchParams.get('log') || ''];
  const ready = new Promise((resolve) => { self.flowerReady = resolve; });
  const { instance } = await WebAssembly.instantiateStreaming(fetch(BASE + 'flower.wasm'), go.importObject);
  go.run(instance).finally(() => { W = null; });
  const err = await ready;
  if (err) throw new Error(err);
  W = self.flowerWorker;
})();
started.then(
  () => {
    // performance.now() counts from the worker's start.
    console.log('[flower] worker ready in ' + Math.round(performance.now()) + ' ms');
    // After a restart the peer map is empty: ask the windows.
    return self.clients.matchAll({ type: 'window' }).then((cs) => cs.forEach((c) => c.postMessage({ op: 'who' })));
  },
  (err) => console.warn('[flower] worker did not start; requests go to the network:', err),
);

self.addEventListener('install', (e) => {
  self.skipWaiting();
  e.waitUntil(started.catch(() => {}));
});

self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('message', (e) => {
  const d = e.data || {};
  if (!e.source || !e.source.id) return;
  if (d.op === 'peer-up') {
    peers.set(e.source.id, Date.now());
    e.source.postMessage({ op: 'peer-ack' });
  }
  if (d.op === 'peer-down') peers.delete(e.source.id);
  // The visitor left the site (or came back): pass its requests through.
  if (d.op === 'settings' && W) W.setLeft(!!d.left);
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith(BASE) || url.pathname === self.location.pathname || url.pathname.startsWith('/.well-known/')) return;
  if (W && !W.shares(req.url)) return; // not on the site's whitelist
  e.respondWith(handle(e, req));
});

async function handle(e, req) {
  try {
    await started;
  } catch (err) {
    return fetch(req);
  }
  // A request that carries cookies is never shared: it goes to the origin
  // as it is, and nothing is kept of its answer.
  if (!W || !W.shares(req.url) || (await hasCookies(req.url))) return fetch(req);
  const headers = {};
  for (const name of ['Range', 'If-Range', 'If-None-Match', 'If-Modified-Since']) {
    const v = req.headers.get(name);
    if (v) headers[name] = v;
  }
  let res = null;
  try {
    res = await W.handle(req.url, headers, e.clientId || '');
  } catch (err) {
    console.warn('[flower] handling', req.url, 'failed:', err);
  }
  return res || fetch(req);
}

async function hasCookies(url) {
  if (!self.cookieStore) return false; // the worker's own origin fetches omit cookies anyway
  try {
    return (await self.cookieStore.getAll({ url })).length > 0;
  } catch (err) {
    return false;
  }
}

// Called by the Go side: ask a page-side peer for url, preferring the
// window that made the request. Resolves to null (no peer, or no first byte
// within firstByteMs), {kind: "origin"}, or {kind: "object", body,
// statement, local, peer, keep} (keep: the worker stores it).
self.flowerAskPeer = async (url, clientId, firstByteMs) => {
  const now = Date.now();
  const ids = [...peers.entries()].filter(([, t]) => now - t < PEER_FRESH_MS).map(([id]) => id);
  ids.sort((a, b) => (b === clientId) - (a === clientId));
  for (const id of ids) {
    const client = await self.clients.get(id);
    if (!client) {
      peers.delete(id);
      continue;
    }
    return ask(client, url, firstByteMs);
  }
  return null;
};

const TRANSFER_MS = 120000;
const QUEUED_MS = 5000;
// Once the page says its transfers are moving, a pause of the page this
// long (a page, or a machine, busy with other work) is not yet a peer that
// failed to start.
const MOVING_MS = 1000;
// A deadline timer that fires this much after its time found this thread
// busy (verifying and storing other objects): the page may have spoken
// meanwhile, its message queued behind the timer.
const LATE_MS = 50;

function ask(client, url, firstByteMs) {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    let begun = false;
    let settled = false;
    const asked = Date.now();
    // What the page said and when (ms since asked), for the console's
    // verbose level when the worker gives up on it.
    const trace = [];
    const finish = (v) => {
      if (settled) return;
      settled = true;
      if (!v || v.kind === 'origin') console.debug('[flower] the page-side peer answered', v ? 'origin' : 'nothing', url, JSON.stringify(trace));
      clearTimeout(t1);
      clearTimeout(t2);
      ch.port1.close();
      resolve(v);
    };
    // No first byte within firstByteMs: the network. The page's
    // {op: "progress"} (its peer's transfers are moving, this object may be
    // queued behind them; its next word may take up to MOVING_MS), or any
    // word from the page about another request (it has not read this one
    // yet, busy with the others) extends the wait, up to QUEUED_MS in all. The deadline is the peer's: time this
    // thread was too busy to read the page's messages does not count
    // against it.
    let t1 = 0;
    const arm = (ms) => {
      clearTimeout(t1);
      const due = Date.now() + ms;
      t1 = setTimeout(() => {
        if (begun) return;
        const late = Date.now() - due;
        const now = Date.now();
        if (now - asked < QUEUED_MS) {
          if (late > LATE_MS) {
            trace.push(['late', late]);
            arm(Math.min(late, firstByteMs));
            return;
          }
          const since = now - (peers.get(client.id) || 0);
          if (since < firstByteMs) {
            trace.push(['busy', now - asked]);
            arm(firstByteMs - since);
            return;
          }
        }
        finish(null);
      }, ms);
    };
    arm(firstByteMs);
    const t2 = setTimeout(() => finish(null), TRANSFER_MS);
    ch.port1.onmessage = (ev) => {
      const d = ev.data || {};
      trace.push([d.op, Date.now() - asked]);
      peers.set(client.id, Date.now());
      switch (d.op) {
        case 'start':
          begun = true;
          break;
        case 'accepted':
          if (!begun) arm(firstByteMs);
          break;
        case 'progress':
          if (!begun && Date.now() - asked < QUEUED_MS) arm(Math.max(firstByteMs, MOVING_MS));
          break;
        case 'done': {
          // The body's SHA-256 natively (WebCrypto): Go's, compiled to
          // WebAssembly, hashes about 48 MB/s on this thread.
          const v = { kind: 'object', body: d.body, statement: d.statement, local: !!d.local, peer: d.peer || '', keep: !!d.keep };
          begun = true;
          crypto.subtle.digest('SHA-256', d.body).then(
            (dg) => finish(Object.assign(v, { digest: new Uint8Array(dg) })),
            () => finish(v),
          );
          break;
        }
        case 'origin':
          finish({ kind: 'origin' });
          break;
        case 'error':
          console.warn('[flower] page-side peer:', url, d.error);
          finish(null);
          break;
        default: // no-peer
          finish(null);
      }
    };
    client.postMessage({ op: 'get', url }, [ch.port2]);
  });
}

// Called by the Go side after an origin fetch of a shared URL: the
// page-side peers take the stored object into their cache (and end their
// query waiting for it).
self.flowerFetched = (url, ok, stored) => {
  for (const id of peers.keys()) {
    self.clients.get(id).then((c) => c && c.postMessage({ op: 'fetched', url, ok, stored }));
  }
};
