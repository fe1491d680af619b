// Flower-CDN embed script (https://github.com/flowercdn/flower).
//
//   <script src="/flower/flower.js" data-bootstrap="wss://boot.example.org"
//           data-site-key="ed25519:..." async></script>
//
// It registers the service worker (/flower-sw.js, served at the site root)
// and, after the page's load event, starts the page-side peer: the same
// WebAssembly module in "page" mode, which joins the site's petal over
// WebRTC and answers the service worker's requests. One page per browser
// runs the peer (a Web Lock decides); if anything fails, the page works as
// it would without Flower-CDN.
//
// Media the site marks with data-flower-src instead of src (pictures, video)
// load once the page-side peer runs, so that they can come from peers; they
// load from the origin after data-defer-ms (default 4000) without a running
// peer, and at once where Flower-CDN cannot run.
//
// API: flower.stats() -> Promise of the counters (docs/browser.md);
// flower.state ("starting", "running", "waiting", "unsupported", "failed");
// flower.ready (a Promise settled when the peer runs or fails); a
// "flower:stats" event on window, with the counters as detail, whenever they
// change (at most once a second).
(() => {
  'use strict';
  if (window.flower) return;
  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const base = script ? new URL('.', script.src).pathname : '/flower/';
  const cfg = {
    bootstrap: data.bootstrap || '',
    siteKey: data.siteKey || '',
    sw: data.sw || '/flower-sw.js',
    log: data.log || localStorage.getItem('flower-log') || '',
    deferMs: Number(data.deferMs || 4000),
    // Operator metrics (docs/operator-metrics.md): data-metrics="off" sends
    // none; data-report-ms sets the report period (tests).
    metrics: data.metrics || '',
    reportMs: data.reportMs || localStorage.getItem('flower-report-ms') || '',
  };

  let peer = null; // globalThis.flowerPeer once it runs
  let settle;
  const flower = {
    state: 'starting',
    error: '',
    ready: new Promise((resolve) => { settle = resolve; }),
    async stats() {
      if (!peer) return { state: flower.state, error: flower.error };
      const s = JSON.parse(await peer.stats());
      s.state = flower.state;
      return s;
    },
  };
  window.flower = flower;
  const fail = (state, err) => {
    flower.state = state;
    flower.error = String(err || '');
    if (err) console.warn('[flower] page-side peer:', flower.error);
    settle(flower.state);
    releaseMedia();
  };

  // Load the media marked data-flower-src.
  function releaseMedia() {
    document.querySelectorAll('[data-flower-src]').forEach((el) => {
      el.src = el.getAttribute('data-flower-src');
      el.removeAttribute('data-flower-src');
    });
  }
  const mediaTimer = setTimeout(releaseMedia, cfg.deferMs);

  // The worker's requests whose object has not begun to arrive (their
  // MessagePorts). While data-channel messages arrive, they are told
  // {op: "progress"}, at most every PROGRESS_MS: their object may be queued
  // behind the transfers under way. Sent from the message events
  // themselves, not from a timer: a page busy receiving may run no timer
  // for hundreds of milliseconds.
  const waiting = new Set();
  const PROGRESS_MS = 100;
  let lastProgress = 0;
  function moving() {
    if (waiting.size === 0) return;
    const now = performance.now();
    if (now - lastProgress < PROGRESS_MS) return;
    lastProgress = now;
    for (const port of waiting) port.postMessage({ op: 'progress' });
  }

  // Close the WebRTC connections when the page goes away, so that other
  // peers see this one leave at once rather than after ICE timeouts; and
  // watch their data channels for moving().
  const conns = new Set();
  const Native = window.RTCPeerConnection;
  if (Native) {
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        conns.add(this);
        this.addEventListener('connectionstatechange', () => {
          if (this.connectionState === 'closed') conns.delete(this);
        });
        this.addEventListener('datachannel', (e) => e.channel.addEventListener('message', moving));
      }

      createDataChannel(...args) {
        const ch = super.createDataChannel(...args);
        ch.addEventListener('message', moving);
        return ch;
      }
    };
  }
  window.addEventListener('pagehide', () => {
    for (const pc of conns) {
      try { pc.close(); } catch (e) { /* already closed */ }
    }
    if (peer) announce('peer-down');
  });

  const sw = navigator.serviceWorker;
  if (sw) {
    sw.register(cfg.log ? cfg.sw + '?log=' + encodeURIComponent(cfg.log) : cfg.sw, { scope: '/' }).catch((err) => console.warn('[flower] service worker:', err));
    sw.addEventListener('message', onMessage);
  }

  function announce(op) {
    if (!sw) return;
    const target = sw.controller;
    if (target) target.postMessage({ op });
    else sw.ready.then((r) => r.active && r.active.postMessage({ op }));
  }

  // The service worker asks for an object ({op: "get"} with a port), tells
  // us what it fetched from the origin, or asks who runs a peer.
  function onMessage(e) {
    const d = e.data || {};
    if (d.op === 'get') {
      const port = e.ports[0];
      if (!port) return;
      if (!peer) {
        port.postMessage({ op: 'no-peer' });
        return;
      }
      // The first-byte deadline counts from here: a page busy loading may
      // take a while to read the worker's message.
      port.postMessage({ op: 'accepted' });
      // Until this object's first byte, the worker hears whenever the
      // peer's transfers are moving: this one may be queued behind them.
      waiting.add(port);
      peer.lookup(d.url, () => { waiting.delete(port); port.postMessage({ op: 'start' }); }).finally(() => waiting.delete(port)).then(
        (r) => {
          if (r.kind === 'object') {
            port.postMessage({ op: 'done', body: r.body, statement: r.statement, local: r.local, peer: r.peer, keep: r.keep }, [r.body.buffer]);
          } else {
            port.postMessage({ op: 'origin' });
          }
        },
        (err) => port.postMessage({ op: 'error', error: String(err) }),
      );
    } else if (d.op === 'fetched' && peer) {
      peer.fetched(d.url, !!d.ok, !!d.stored);
    } else if (d.op === 'who' && peer) {
      announce('peer-up');
    } else if (d.op === 'peer-ack' && peer) {
      // The service worker knows this page's peer: media asked for from
      // now on can come from peers.
      clearTimeout(mediaTimer);
      releaseMedia();
    }
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error('cannot load ' + src));
      document.head.appendChild(s);
    });
  }

  async function runPeer() {
    if (typeof window.Go !== 'function') await loadScript(base + 'wasm_exec.js');
    const go = new window.Go();
    go.argv = ['flower', 'page', cfg.bootstrap, cfg.siteKey, 'metrics=' + cfg.metrics, 'report-ms=' + cfg.reportMs, cfg.log];
    const ready = new Promise((resolve) => { window.flowerReady = resolve; });
    const { instance } = await WebAssembly.instantiateStreaming(fetch(base + 'flower.wasm'), go.importObject);
    go.run(instance).finally(() => {
      peer = null;
      if (flower.state === 'running') fail('failed', 'the peer stopped');
    });
    const err = await ready;
    if (err) throw new Error(err);
    peer = window.flowerPeer;
    flower.state = 'running';
    settle(flower.state);
    announce('peer-up');
    setInterval(() => announce('peer-up'), 10000);
    watchStats();
  }

  function watchStats() {
    let last = '';
    setInterval(async () => {
      try {
        const s = await flower.stats();
        const j = JSON.stringify(s);
        if (j !== last) {
          last = j;
          window.dispatchEvent(new CustomEvent('flower:stats', { detail: s }));
        }
      } catch (e) { /* the next tick tries again */ }
    }, 1000);
  }

  function start() {
    if (!Native || !window.WebAssembly || !navigator.locks || !sw) {
      fail('unsupported', 'this browser lacks WebRTC, WebAssembly, Web Locks or service workers');
      return;
    }
    if (!cfg.bootstrap) {
      fail('failed', 'no data-bootstrap attribute on the script tag');
      return;
    }
    // One peer per browser profile: the other pages of the site wait, and
    // the next one takes over when this one closes.
    flower.state = 'waiting';
    navigator.locks.request('flower-cdn-peer', async () => {
      flower.state = 'starting';
      try {
        await runPeer();
      } catch (err) {
        fail('failed', err);
        return;
      }
      await new Promise(() => {}); // hold the lock for the page's life
    }).catch((err) => fail('failed', err));
  }

  // Off the critical path: after the load event.
  if (document.readyState === 'complete') setTimeout(start, 0);
  else window.addEventListener('load', () => setTimeout(start, 0), { once: true });
})();
