// foldsweep serve: light polling. Every few seconds, fetch this page's <main> again (the
// server renders it; header X-Fragment: main) and swap it in. Paused while the tab is
// hidden; an open <details> stays open. No other script, no network beyond this origin.
(function () {
  "use strict";
  var main = document.querySelector("main[data-poll]");
  var live = document.getElementById("live");
  if (!main) return;
  var every = parseInt(main.getAttribute("data-poll"), 10) || 5000;
  var busy = false;

  function openDetails() {
    return Array.prototype.map.call(main.querySelectorAll("details"), function (d) {
      return d.open;
    });
  }

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    var open = openDetails();
    fetch(location.pathname + location.search, {
      headers: { "X-Fragment": "main" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        main.querySelectorAll("details").forEach(function (d, i) {
          if (open[i]) d.open = true;
        });
        if (live) {
          live.textContent = "live · " + new Date().toLocaleTimeString();
          live.className = "live";
        }
      })
      .catch(function () {
        if (live) {
          live.textContent = "offline, retrying";
          live.className = "live offline";
        }
      })
      .then(function () {
        busy = false;
      });
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
