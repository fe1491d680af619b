// The visitor's Flower-CDN dashboard (dashboard.html): live figures from
// flower.stats() (flower.js; in a tab that does not run the peer they come
// from the tab that does, over a BroadcastChannel), a chart of the bytes
// from other visitors and from the origin, and the visitor's controls.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const fields = new Map();
  document.querySelectorAll('[data-k]').forEach((el) => fields.set(el.dataset.k, el));

  function fmtBytes(n) {
    if (!(n > 0)) return '0 B';
    const units = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[i];
  }
  const fmtCount = (n) => Number(n || 0).toLocaleString('en-US');
  const fmtMs = (n) => (n > 0 ? Math.round(n) + ' ms' : 'none yet');
  const get = (s, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), s);

  // How each field shows; the raw value goes to data-v for scripts and
  // tests.
  const show = {
    site: String,
    role: (r) => r || 'none',
    locality: String,
    contacts: fmtCount,
    directory: (d) => d || 'none known',
    peer: String,
    objects: fmtCount,
    bytesCached: fmtBytes,
    verifyFailures: fmtCount,
    uploads: fmtCount,
    bytesUploaded: fmtBytes,
    'requests.cache': fmtCount,
    'requests.peers': fmtCount,
    'requests.origin': fmtCount,
    'bytes.cache': fmtBytes,
    'bytes.peers': fmtBytes,
    'bytes.origin': fmtBytes,
    ttfbPeerMs: fmtMs,
    ttfbOriginMs: fmtMs,
  };

  const stateText = {
    starting: 'starting',
    running: 'running in this tab',
    waiting: 'running in another tab',
    unsupported: 'not supported by this browser',
    failed: 'not running',
  };

  function render(s) {
    const st = $('state');
    const state = s.state || 'starting';
    st.dataset.state = state;
    st.textContent = state === 'waiting' && !s.remote ? 'waiting for the tab that runs it' : stateText[state] || state;
    if (s.error) $('msg').textContent = s.error;
    if (s.peer === undefined) return; // no figures yet
    for (const [k, fn] of Object.entries(show)) {
      const el = fields.get(k);
      const v = get(s, k);
      if (!el || v === undefined) continue;
      el.dataset.v = String(v);
      el.textContent = fn(v);
    }
    const c = s.controls || {};
    const cap = c.uploadLimit || 0;
    const capEl = fields.get('uploadLimit');
    capEl.dataset.v = String(cap);
    capEl.textContent = cap > 0 ? fmtBytes(cap) + '/s' : 'none';
    if (document.activeElement !== $('cap')) $('cap').value = cap > 0 ? String(Math.round(cap / 1000)) : '';
    $('pause').checked = !!c.paused;
    $('leave').textContent = c.left ? 'Rejoin this site\'s Flower-CDN' : 'Leave this site\'s Flower-CDN';
    $('leave').dataset.left = c.left ? '1' : '';
    const d = c.device || {};
    const dev = fields.get('device');
    dev.dataset.v = JSON.stringify({ noServe: !!c.noServe, noDirectory: !!c.noDirectory });
    dev.textContent = 'Your device: Save-Data ' + (d.saveData ? 'on' : 'off') +
      ', metered connection ' + (d.metered ? 'yes' : 'no or not told') +
      ', battery low ' + (d.batterySaver ? 'yes' : 'no or not told') +
      '. So: uploads ' + (c.noServe ? 'off' : 'on') +
      ', directory role ' + (c.noDirectory ? 'never' : 'allowed') +
      (c.left ? '; you left this site, its requests go to its server' : '') + '.';
    sample(s);
  }

  // The chart: bytes from other visitors, from the origin and from the
  // own cache, as counted since the visitor's first visit, sampled once a
  // second while this page is open.
  const data = [[], [], [], []];
  let plot = null;
  function sample(s) {
    const t = Math.floor(Date.now() / 1000);
    const xs = data[0];
    const row = [t, (s.bytes.peers || 0) / 1e6, (s.bytes.origin || 0) / 1e6, (s.bytes.cache || 0) / 1e6];
    if (xs.length && xs[xs.length - 1] === t) {
      for (let i = 1; i < 4; i++) data[i][xs.length - 1] = row[i];
    } else {
      for (let i = 0; i < 4; i++) data[i].push(row[i]);
    }
    if (xs.length > 3600) data.forEach((a) => a.shift());
    draw();
  }
  function draw() {
    const el = $('chart');
    if (!window.uPlot || data[0].length === 0) return;
    const width = Math.max(300, el.clientWidth);
    if (!plot) {
      plot = new window.uPlot({
        width, height: 200,
        scales: { x: { time: true } },
        axes: [
          {
            space: 80,
            incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
            values: (u, v) => v.map((x) => new Date(x * 1000).toLocaleTimeString('en-GB')),
          },
          { label: 'MB', values: (u, v) => v.map((x) => x.toFixed(1)) },
        ],
        series: [
          {},
          { label: 'from other visitors', stroke: '#2e6b45', width: 2, fill: 'rgba(46,107,69,0.08)', value: (u, v) => (v == null ? '-' : v.toFixed(2) + ' MB') },
          { label: 'from the server', stroke: '#c2185b', width: 2, value: (u, v) => (v == null ? '-' : v.toFixed(2) + ' MB') },
          { label: 'from your cache', stroke: '#8a8f8c', width: 1, dash: [4, 4], value: (u, v) => (v == null ? '-' : v.toFixed(2) + ' MB') },
        ],
      }, data, el);
      window.addEventListener('resize', () => plot.setSize({ width: Math.max(300, el.clientWidth), height: 200 }));
      return;
    }
    plot.setData(data);
    // The legend shows the latest totals unless the pointer is on the chart.
    if (plot.cursor.left < 0) plot.setLegend({ idx: data[0].length - 1 });
  }

  function say(text, err) {
    const m = $('msg');
    m.textContent = text;
    m.className = err ? 'msg err' : 'msg';
  }
  async function act(what, fn) {
    if (!window.flower) return say('Flower-CDN has not started', true);
    try {
      const r = await fn();
      say(what(r));
      render(await window.flower.stats());
    } catch (err) {
      say(String(err.message || err), true);
    }
  }
  $('pause').addEventListener('change', (e) => {
    const on = e.target.checked;
    act(() => (on ? 'Sharing paused.' : 'Sharing resumed.'), () => window.flower.pause(on));
  });
  $('cap-apply').addEventListener('click', () => {
    const kb = Number($('cap').value || 0);
    act(() => (kb > 0 ? 'Uploads capped at ' + kb + ' KB/s.' : 'No upload cap.'), () => window.flower.setUploadLimit(Math.max(0, kb) * 1000));
  });
  $('clear').addEventListener('click', () => {
    act((n) => 'Cache cleared: ' + n + ' objects removed.', () => window.flower.clearCache());
  });
  $('leave').addEventListener('click', () => {
    const left = !!$('leave').dataset.left;
    act(() => (left ? 'Rejoined.' : 'You left this site\'s Flower-CDN; its requests go to its server.'), () => window.flower.leave(!left));
  });

  window.addEventListener('flower:stats', (e) => render(e.detail));
  // The figures change only when something happens, but the chart's time
  // axis moves on: poll once a second too.
  setInterval(async () => {
    if (!window.flower) return;
    try {
      render(await window.flower.stats());
    } catch (e) { /* next second */ }
  }, 1000);
})();
