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
// change (at most once a second). The visitor's controls, each a Promise:
// flower.pause(bool), flower.setUploadLimit(bytesPerSecond),
// flower.clearCache(), flower.leave(bool). In a page waiting for the peer
// (another tab runs it), stats and controls reach the running page over
// the BroadcastChannel "flower-cdn".
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
    firstByteMs: data.firstByteMs || '',
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
      if (!peer) return remoteStats();
      const s = JSON.parse(await peer.stats());
      s.state = flower.state;
      return s;
    },
    pause: (on) => control('pause', on === undefined ? true : !!on),
    setUploadLimit: (bps) => control('setUploadLimit', Math.max(0, Number(bps) || 0)),
    clearCache: () => control('clear'),
    leave: (on) => control('leave', on === undefined ? true : !!on),
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

  // The worker's requests under way (their MessagePorts). While
  // data-channel messages arrive, they are told {op: "progress"}, at most
  // every PROGRESS_MS: an object that has not begun to arrive may be queued
  // behind the transfers under way, and the worker learns that this page
  // is alive, busy with them, when it has not read a newer request yet.
  // Sent from the message events themselves, not from a timer: a page busy
  // receiving may run no timer for hundreds of milliseconds.
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
    // The worker's settings travel in its script URL (a change installs
    // the worker again).
    const q = new URLSearchParams();
    if (cfg.log) q.set('log', cfg.log);
    if (cfg.firstByteMs) q.set('first-byte-ms', cfg.firstByteMs);
    const swURL = q.toString() ? cfg.sw + '?' + q : cfg.sw;
    sw.register(swURL, { scope: '/' }).catch((err) => console.warn('[flower] service worker:', err));
    sw.addEventListener('message', onMessage);
  }

  // announce tells the service worker {op, ...fields}.
  function announce(op, fields) {
    if (!sw) return;
    const msg = Object.assign({ op }, fields);
    const target = sw.controller;
    if (target) target.postMessage(msg);
    else sw.ready.then((r) => r.active && r.active.postMessage(msg));
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
      // Until the answer, the worker hears whenever the peer's transfers
      // are moving.
      waiting.add(port);
      peer.lookup(d.url, () => port.postMessage({ op: 'start' })).finally(() => waiting.delete(port)).then(
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

  // The visitor's controls and the dashboard (docs/browser.md). The page
  // that runs the peer posts its counters on the channel every second and
  // runs the controls other pages of the site send; a page without the
  // peer answers flower.stats() with the latest counters heard.
  const bc = window.BroadcastChannel ? new BroadcastChannel('flower-cdn') : null;
  let heard = null; // {stats, at} from the running page
  let seq = 0;
  const calls = new Map(); // control id -> {resolve, reject}
  const CONTROLS = ['pause', 'setUploadLimit', 'clear', 'leave'];
  if (bc) {
    bc.onmessage = async (e) => {
      const d = e.data || {};
      if (d.op === 'stats' && !peer) {
        heard = { stats: d.stats, at: Date.now() };
        window.dispatchEvent(new CustomEvent('flower:stats', { detail: remoteCopy(d.stats) }));
      } else if (d.op === 'stats?' && peer) {
        bc.postMessage({ op: 'stats', stats: await flower.stats() });
      } else if (d.op === 'control' && peer && CONTROLS.includes(d.name)) {
        try {
          bc.postMessage({ op: 'controlled', id: d.id, result: await control(d.name, d.arg) });
        } catch (err) {
          bc.postMessage({ op: 'controlled', id: d.id, error: String(err) });
        }
      } else if (d.op === 'controlled' && calls.has(d.id)) {
        const c = calls.get(d.id);
        calls.delete(d.id);
        if (d.error) c.reject(new Error(d.error));
        else c.resolve(d.result);
      }
    };
  }
  function remoteCopy(s) {
    return Object.assign({}, s, { state: flower.state, peerState: s.state, remote: true });
  }
  async function remoteStats() {
    const mine = { state: flower.state, error: flower.error };
    if (!bc) return mine;
    if (!heard || Date.now() - heard.at > 3000) {
      bc.postMessage({ op: 'stats?' });
      const t0 = Date.now();
      while ((!heard || heard.at < t0) && Date.now() - t0 < 1500) await new Promise((r) => setTimeout(r, 50));
    }
    return heard && Date.now() - heard.at <= 3000 ? remoteCopy(heard.stats) : mine;
  }
  async function control(name, arg) {
    if (peer) {
      const r = await peer[name](arg);
      // The worker passes the site's requests through once the visitor left.
      if (name === 'leave') announce('settings', { left: !!arg });
      return r === undefined ? null : r;
    }
    if (!bc) throw new Error('no page runs the peer');
    const id = String(Math.random()).slice(2) + '-' + (++seq);
    return new Promise((resolve, reject) => {
      calls.set(id, { resolve, reject });
      bc.postMessage({ op: 'control', id, name, arg });
      setTimeout(() => {
        if (calls.delete(id)) reject(new Error('no page runs the peer'));
      }, 5000);
    });
  }
  // What the browser says of the device: Save-Data stops uploads; a
  // metered connection (navigator.connection.type "cellular", which Chrome
  // reports on Android and ChromeOS only) or a battery running low
  // (getBattery: not charging, 20% or less; no browser exposes the OS's
  // battery saver) keeps the peer out of directory roles.
  const watchDevice = {
    battery: null,
    read() {
      const c = navigator.connection || {};
      const b = this.battery;
      return {
        saveData: !!c.saveData,
        metered: c.type === 'cellular',
        batterySaver: !!b && !b.charging && b.level <= 0.2,
      };
    },
    async init() {
      try {
        if (navigator.getBattery) this.battery = await navigator.getBattery();
      } catch (e) { /* not exposed */ }
      window.flowerDevice = this.read();
    },
    last: '',
    check() {
      if (!peer) return;
      const d = this.read();
      const j = JSON.stringify(d);
      if (j === this.last) return;
      this.last = j;
      peer.device(d);
    },
    start() {
      this.last = JSON.stringify(window.flowerDevice || {});
      const check = () => this.check();
      if (navigator.connection) navigator.connection.addEventListener('change', check);
      if (this.battery) {
        this.battery.addEventListener('chargingchange', check);
        this.battery.addEventListener('levelchange', check);
      }
    },
  };

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
    await watchDevice.init();
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
    watchDevice.start();
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
        // Also polled: DevTools' Save-Data override fires no change event.
        watchDevice.check();
        const s = await flower.stats();
        if (bc) bc.postMessage({ op: 'stats', stats: s });
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
