// The operator page's script: polls dashboard/data every 5 s and draws it.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const pct = (r) => (r === null || r === undefined) ? '–' : (100 * r).toFixed(1) + ' %';
  const ms = (v) => (v === null || v === undefined) ? '–' : v.toFixed(v < 10 ? 1 : 0) + ' ms';
  const bytes = (n) => {
    const u = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return n.toFixed(i ? 1 : 0) + ' ' + u[i];
  };
  const cell = (tr, v) => { const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); };
  const rows = (id, list, fn) => {
    const tb = document.querySelector('#' + id + ' tbody');
    tb.replaceChildren();
    for (const x of list) { const tr = document.createElement('tr'); fn(x).forEach((v) => cell(tr, v)); tb.appendChild(tr); }
  };
  let plot = null;
  function chart(s) {
    const data = [s.t, s.peer, s.origin];
    if (!plot) {
      plot = new uPlot({
        width: Math.min(1100, window.innerWidth - 40), height: 300,
        series: [{}, { label: 'from peers', stroke: '#2a7', fill: 'rgba(34,170,119,.1)', value: (u, v) => v === null ? '–' : bytes(v) + '/s' },
          { label: 'from origin', stroke: '#c52', value: (u, v) => v === null ? '–' : bytes(v) + '/s' }],
        axes: [{}, { values: (u, vs) => vs.map((v) => bytes(v) + '/s'), size: 80 }],
      }, data, $('chart'));
    } else {
      plot.setData(data);
    }
  }
  async function tick() {
    try {
      const r = await fetch('dashboard/data', { credentials: 'same-origin', cache: 'no-store' });
      if (!r.ok) throw new Error(r.status + ' ' + (await r.text()));
      const d = await r.json();
      $('err').textContent = '';
      $('inst').textContent = d.instance;
      $('when').textContent = new Date(d.time * 1000).toLocaleTimeString();
      $('offload').textContent = pct(d.total.offloadRatio);
      $('online').textContent = d.peers.reduce((a, p) => a + p.n, 0);
      $('ttfbPeer').textContent = ms(d.total.ttfbPeerMedianMs);
      $('ttfbOrigin').textContent = ms(d.total.ttfbOriginMedianMs);
      $('verify').textContent = d.total.verifyFailures;
      $('ratelimited').textContent = d.abuse.rateLimitedFrames + d.abuse.reportsRateLimited;
      $('banned').textContent = d.abuse.rejectedIPRate + d.abuse.rejectedIPPeers + d.abuse.slowReaderDrops;
      rows('sites', d.sites, (s) => [s.site, pct(s.offloadRatio), s.requests.join(' / '), bytes(s.bytes[1]), bytes(s.bytes[2]),
        ms(s.ttfbPeerMedianMs), ms(s.ttfbOriginMedianMs), s.verifyFailures]);
      rows('peers', d.peers, (p) => [p.site, p.locality, p.role, p.n]);
      rows('reports', Object.entries(d.reports).sort(), ([k, v]) => [k, v]);
      chart(d.series);
    } catch (e) {
      $('err').textContent = 'cannot load dashboard/data: ' + e.message;
    }
  }
  tick();
  setInterval(tick, 5000);
})();
