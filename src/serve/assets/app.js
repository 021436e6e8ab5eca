// foldsweep serve: live pages. The page's event stream (main[data-events], server-sent
// events) says when the results database changed; then this fetches the page's <main> again
// (the server renders it; header X-Fragment: main) and swaps it in, at most once a second.
// Without EventSource, or while the stream is down, it polls every few seconds instead.
// Paused while the tab is hidden; an open <details> stays open; the scroll position stays.
// No other script, no network beyond this origin.
(function () {
  "use strict";
  var main = document.querySelector("main[data-poll]");
  var live = document.getElementById("live");
  if (!main) return;
  var every = parseInt(main.getAttribute("data-poll"), 10) || 5000;
  var events = main.getAttribute("data-events");
  var busy = false;
  var again = false;
  var last = 0;
  var timer = null;
  var streaming = false;

  function say(text, ok) {
    if (!live) return;
    live.textContent = text;
    live.className = ok ? "live" : "live offline";
  }

  function openDetails() {
    return Array.prototype.map.call(main.querySelectorAll("details"), function (d) {
      return d.open;
    });
  }

  function refresh() {
    if (document.hidden) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    last = Date.now();
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
        say((streaming ? "live · " : "polling · ") + new Date().toLocaleTimeString(), true);
      })
      .catch(function () {
        say("offline, retrying", false);
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          soon();
        }
      });
  }

  // A refresh now, or a second after the last one, whichever is later.
  function soon() {
    if (timer) return;
    var wait = Math.max(0, 1000 - (Date.now() - last));
    timer = setTimeout(function () {
      timer = null;
      refresh();
    }, wait);
  }

  function poll() {
    if (!streaming) refresh();
  }

  if (window.EventSource && events) {
    var source = new EventSource(events);
    var first = true;
    var changed = function () {
      // The first event only says where the store stands: the page already shows it.
      if (first) {
        first = false;
        return;
      }
      soon();
    };
    source.addEventListener("progress", changed);
    source.addEventListener("change", changed);
    var opened = false;
    source.onopen = function () {
      // After a reconnection, what changed meanwhile is shown at once.
      if (opened) soon();
      opened = true;
      streaming = true;
      first = true;
      say("live", true);
    };
    source.onerror = function () {
      // EventSource reconnects by itself; poll meanwhile.
      streaming = false;
      say("reconnecting", false);
    };
  }
  setInterval(poll, every);
  document.addEventListener("visibilitychange", soon);
})();
