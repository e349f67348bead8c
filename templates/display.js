// The live finish-line screen: Server-Sent Events from /stream, no build step.
// Data from the server is only ever put on the page with textContent, never as HTML.
(function () {
  "use strict";

  var MAX_ROWS = 11;            // recent crossings under the big one
  var MESSAGE_SECONDS = 6;      // how long each rotating message stays
  var RETRY_MILLISECONDS = 3000;

  var body = document.body;
  var lastId = parseInt(body.dataset.lastId || "0", 10) || 0;
  var renderedUnavailable = body.dataset.state === "unavailable";
  var seenIds = new Set();
  var seenCrossings = new Map();  // bib|location|lap -> time: a chip read again and again is one crossing
  var REPEAT_WINDOW_MILLISECONDS = 60000;
  var source = null;
  var retryTimer = null;

  function $(id) { return document.getElementById(id); }

  function setState(state, text) {
    body.dataset.state = state;
    $("connection").textContent = text;
  }

  function clockTime(read) {
    return String(read.clock || read.time || "");  // the server says what a spectator should see
  }

  function headline(read) {
    if (read.gun_time) { return "Race start — " + read.location + " " + clockTime(read); }
    return read.name || ("Bib " + read.bib);
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function crossingKey(read) { return read.bib + "|" + read.location + "|" + read.lap; }

  function isRepeat(read) {
    // Antennas read a chip many times as it crosses a mat; the same bib on the same mat in
    // the same lap within a minute is that one crossing. Later it is a new one (laps).
    var key = crossingKey(read);
    var at = Date.parse(read.timestamp) || 0;
    var previous = seenCrossings.get(key);
    if (previous !== undefined && Math.abs(at - previous) < REPEAT_WINDOW_MILLISECONDS) { return true; }
    seenCrossings.set(key, at);
    return false;
  }

  function rowFor(read) {
    var row = document.createElement("li");
    row.className = "crossing" + (read.gun_time ? " crossing-gun" : "");
    row.dataset.id = String(read.id);
    var name = span("crossing-name" + (!read.gun_time && !read.name ? " crossing-unknown" : ""), headline(read));
    row.appendChild(span("crossing-bib", read.gun_time ? "START" : read.bib));
    row.appendChild(name);
    row.appendChild(span("crossing-location", read.gun_time ? "" : read.location));
    row.appendChild(span("crossing-time", read.gun_time ? "" : clockTime(read)));
    return row;
  }

  // What the server rendered becomes the starting state, so nothing shows twice.
  function rememberRendered() {
    document.querySelectorAll("#hero[data-read], #crossings .crossing").forEach(function (element) {
      var read = JSON.parse(element.dataset.read);
      seenIds.add(String(read.id));
      if (!read.gun_time) { isRepeat(read); }
    });
  }

  function showHero(read) {
    var hero = $("hero");
    var list = $("crossings");
    if (hero.dataset.read) {
      list.insertBefore(rowFor(JSON.parse(hero.dataset.read)), list.firstElementChild);
    }
    while (list.children.length > MAX_ROWS) { list.removeChild(list.lastElementChild); }
    if (list.firstElementChild) { list.firstElementChild.classList.add("arrived"); }

    hero.dataset.id = String(read.id);
    hero.dataset.read = JSON.stringify(read);
    hero.classList.toggle("hero-gun", !!read.gun_time);
    hero.classList.remove("hero-waiting");
    $("hero-label").textContent = read.gun_time ? "Starting gun" : "Latest crossing";
    $("hero-name").textContent = headline(read);
    $("hero-bib").textContent = read.bib;
    $("hero-bib").hidden = !!read.gun_time;
    $("hero-location").textContent = read.location;
    $("hero-time").textContent = clockTime(read);
    hero.classList.remove("flash");
    void hero.offsetWidth;  // restart the animation
    hero.classList.add("flash");
  }

  function receive(read) {
    var id = String(read.id);
    if (read.id > lastId) { lastId = read.id; }
    if (seenIds.has(id) || read.bib === "newlocation") { return; }  // newlocation: a mat, not a runner
    seenIds.add(id);
    if (!read.gun_time && isRepeat(read)) { return; }
    showHero(read);
  }

  function connect() {
    retryTimer = null;
    if (source) { source.close(); }
    var stream = body.dataset.stream || "/stream";  // a public display names its event's stream
    var separator = stream.indexOf("?") === -1 ? "?" : "&";
    source = new EventSource(lastId ? stream + separator + "last_event_id=" + lastId : stream);
    source.onopen = function () {
      if (renderedUnavailable) { window.location.reload(); return; }  // the page can now render in full
      setState("live", "Live");
    };
    source.onmessage = function (event) {
      try {
        receive(JSON.parse(event.data));
      } catch (error) {
        console.error("could not show a read", error);  // one bad event must not stop the screen
      }
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error (e.g. database down): retry ourselves.
        setState(renderedUnavailable ? "unavailable" : "reconnecting",
                 renderedUnavailable ? "Database unavailable" : "Reconnecting…");
        if (!retryTimer) { retryTimer = window.setTimeout(connect, RETRY_MILLISECONDS); }
      } else {
        setState("reconnecting", "Reconnecting…");  // the browser retries by itself
      }
    };
  }

  function rotateMessages() {
    var messages = Array.prototype.map.call(document.querySelectorAll("#messages li"),
                                            function (item) { return item.textContent; });
    var element = $("message");
    var index = 0;
    if (messages.length < 2) { return; }
    window.setInterval(function () {
      element.classList.add("fading");
      window.setTimeout(function () {
        index = (index + 1) % messages.length;
        element.textContent = messages[index];
        element.classList.remove("fading");
      }, 500);
    }, MESSAGE_SECONDS * 1000);
  }

  function runClock() {
    var element = $("clock");
    function tick() { element.textContent = new Date().toLocaleTimeString([], { hour12: false }); }
    tick();
    window.setInterval(tick, 1000);
  }

  rememberRendered();
  runClock();
  rotateMessages();
  connect();
}());
