// Flower Gardens: small page helpers. Nothing here is needed for Flower-CDN;
// /flower/flower.js (the script tag at the end of each page) does that.
(function () {
  "use strict";

  // Mark the current page in the navigation.
  var here = location.pathname === "/" ? "/index.html" : location.pathname;
  document.querySelectorAll(".masthead nav a").forEach(function (a) {
    if (a.getAttribute("href") === here) a.setAttribute("aria-current", "page");
  });

  // The live clock: /live/now.json is Cache-Control: no-store, so it always
  // comes from the origin, never from a peer.
  function tick(el) {
    fetch("/live/now.json", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (j) { el.textContent = "origin clock " + j.now + " (answer #" + j.seq + ")"; })
      .catch(function (e) { el.textContent = "origin clock unavailable: " + e; });
  }

  // Flower-CDN's page API, when the embed script has started it.
  function showStats(pre) {
    var f = window.flower;
    if (!f || typeof f.stats !== "function") {
      pre.textContent = "Flower-CDN is not running on this page (yet).";
      return;
    }
    Promise.resolve(f.stats())
      .then(function (s) { pre.textContent = JSON.stringify(s, null, 2); })
      .catch(function (e) { pre.textContent = "flower.stats(): " + e; });
  }

  // The pictures and the video are marked data-flower-src instead of src:
  // flower.js loads them once the page-side peer runs, so that they can come
  // from other visitors' browsers. Without flower.js (blocked, or not
  // served), load them anyway.
  window.addEventListener("load", function () {
    setTimeout(function () {
      if (window.flower) return;
      document.querySelectorAll("[data-flower-src]").forEach(function (el) {
        el.src = el.getAttribute("data-flower-src");
        el.removeAttribute("data-flower-src");
      });
    }, 3000);
  });

  window.addEventListener("load", function () {
    var live = document.getElementById("live");
    if (live) {
      tick(live);
      setInterval(function () { tick(live); }, 10000);
    }
    var stats = document.getElementById("flower-stats");
    if (stats) {
      var details = stats.closest("details");
      var refresh = function () { if (!details || details.open) showStats(stats); };
      if (details) details.addEventListener("toggle", refresh);
      setInterval(refresh, 3000);
    }
  });
})();
