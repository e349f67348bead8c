// A finish screen: runner objects from /screen/<code>/stream, each held on the big panel for the
// screen's hold, none skipped (a grid when the queue grows long), then listed below.
// Data from the server only ever reaches the page through textContent, never as HTML; colours
// go through the CSSOM (style.setProperty), which the Content-Security-Policy allows.
(function () {
  "use strict";

  var body = document.body;
  function $(id) { return document.getElementById(id); }

  var MIN_RETRY_MS = 1000;
  var MAX_RETRY_MS = 30000;

  // Opened while the database was down: say so, and retry with backoff until the page is served.
  if (body.dataset.state === "unavailable") {
    var delay = MIN_RETRY_MS;
    var retryPage = function () {
      window.fetch(window.location.href, { cache: "no-store" }).then(function (response) {
        if (response.ok) { window.location.reload(); return; }
        throw new Error("still unavailable");
      }).catch(function () {
        delay = Math.min(delay * 2, MAX_RETRY_MS);
        window.setTimeout(retryPage, delay);
      });
    };
    window.setTimeout(retryPage, delay);
    return;
  }

  var config = JSON.parse(body.dataset.config);
  var holdMs = Math.max(100, config.hold_ms || 3000);
  var gridThreshold = Math.max(2, config.grid_threshold || 8);
  var MAX_RECENT = 10;
  var MESSAGE_MS = 6000;
  var SPONSOR_MS = 8000;
  var POLL_MS = 3000;

  var queue = [];
  var onPanel = [];
  var holdTimer = null;
  var seen = new Set();
  var lastId = config.last_id || 0;
  var branding = config.branding || {};
  var layout = config.layout || null;  // a designer layout, sent with the page (ChronoLayout draws it)

  // --- what a runner looks like --------------------------------------------------------------

  function ordinal(n) {
    var rest = n % 100;
    var suffix = (rest >= 11 && rest <= 13) ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
    return n + suffix;
  }

  function displayName(runner) {
    return runner.known ? (runner.name || ("Bib " + runner.bib)) : ("Bib " + runner.bib + " — not in roster");
  }

  function placesText(runner) {
    var parts = [];
    if (runner.gender_place && runner.gender) { parts.push(ordinal(runner.gender_place) + " " + runner.gender); }
    if (runner.division_place && runner.division) { parts.push(ordinal(runner.division_place) + " " + runner.division); }
    return parts.join(" · ");
  }

  function fromText(runner) {
    return [runner.city, runner.team].filter(function (part) { return part; }).join(" · ");
  }

  function timeText(runner) {
    return runner.time_text ? runner.time_text : runner.clock_time;
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // Long names shrink until they fit their line (CSSOM font-size, never an inline style attribute).
  function fit(element) {
    element.style.fontSize = "";
    var size = parseFloat(window.getComputedStyle(element).fontSize) || 16;
    var smallest = size * 0.25;
    while (element.scrollWidth > element.clientWidth + 1 && size > smallest) {
      size *= 0.9;
      element.style.fontSize = size + "px";
    }
  }

  // --- the big panel -------------------------------------------------------------------------

  function showSingle(runner) {
    var panel = $("panel");
    $("panel-grid").hidden = true;
    $("panel-grid").textContent = "";
    panel.classList.remove("panel-waiting", "panel-grid-mode");
    panel.classList.toggle("panel-unknown", !runner.known);
    if (renderLayout(runner)) { return; }
    $("panel-single").hidden = false;
    $("panel-single").dataset.shownBib = runner.bib;
    $("panel-place").textContent = runner.place ? ordinal(runner.place) : "";
    $("panel-name").textContent = displayName(runner);
    $("panel-bib").textContent = runner.bib;
    $("panel-time").textContent = timeText(runner);
    $("panel-places").textContent = placesText(runner);
    $("panel-from").textContent = fromText(runner);
    fit($("panel-name"));
    panel.classList.remove("flash");
    void panel.offsetWidth;  // restart the arrival animation
    panel.classList.add("flash");
  }

  function showGrid(runners) {
    var panel = $("panel");
    var grid = $("panel-grid");
    $("panel-single").hidden = true;
    $("layout-panel").hidden = true;
    delete $("panel-single").dataset.shownBib;
    panel.classList.remove("panel-waiting", "panel-unknown");
    panel.classList.add("panel-grid-mode");
    grid.textContent = "";
    runners.forEach(function (runner) {
      var item = document.createElement("li");
      item.className = "grid-runner" + (runner.known ? "" : " grid-unknown");
      item.dataset.shownBib = runner.bib;
      item.appendChild(span("grid-place", runner.place ? ordinal(runner.place) : ""));
      item.appendChild(span("grid-name", displayName(runner)));
      item.appendChild(span("grid-bib", runner.bib));
      item.appendChild(span("grid-time", timeText(runner)));
      grid.appendChild(item);
    });
    grid.hidden = false;
    grid.querySelectorAll(".grid-name").forEach(fit);
  }

  function renderLayout(runner) {
    // A designer layout (the screen's layout_id) draws the panel when its renderer is loaded.
    var renderer = window.ChronoLayout;
    if (!layout || !renderer || typeof renderer.render !== "function") { return false; }
    $("panel-single").hidden = true;
    delete $("panel-single").dataset.shownBib;
    $("layout-panel").hidden = false;
    $("layout-panel").dataset.shownBib = runner.bib;
    renderer.render($("layout-panel"), layout, runner, branding);
    return true;
  }

  function announce(runners) {
    // At most one announcement per hold: a burst never floods a screen reader.
    var text;
    if (runners.length === 1) {
      var runner = runners[0];
      text = displayName(runner) + (runner.place ? ", " + ordinal(runner.place) : "") + ", " + timeText(runner);
    } else {
      text = runners.length + " finishers, " + displayName(runners[0]) + " first";
    }
    $("announce").textContent = text;
  }

  function updateQueue() {
    var element = $("queue");
    element.hidden = queue.length === 0;
    element.textContent = queue.length ? "+" + queue.length + " waiting" : "";
  }

  function addRecent(runners) {
    var list = $("recent");
    runners.forEach(function (runner) {
      var row = document.createElement("li");
      row.className = "recent-row" + (runner.known ? "" : " recent-unknown");
      row.appendChild(span("recent-place", runner.place ? String(runner.place) : ""));
      row.appendChild(span("recent-name", displayName(runner)));
      row.appendChild(span("recent-bib", runner.bib));
      row.appendChild(span("recent-time", timeText(runner)));
      list.insertBefore(row, list.firstElementChild);
    });
    while (list.children.length > MAX_RECENT) { list.removeChild(list.lastElementChild); }
  }

  function next() {
    holdTimer = null;
    if (queue.length === 0) { updateQueue(); return; }  // the last runner stays until the next one
    addRecent(onPanel);
    if (queue.length > gridThreshold) {
      onPanel = queue.splice(0, gridThreshold);
      showGrid(onPanel);
    } else {
      onPanel = [queue.shift()];
      showSingle(onPanel[0]);
    }
    announce(onPanel);
    beep();
    updateQueue();
    holdTimer = window.setTimeout(next, holdMs);
  }

  function receive(runner) {
    if (seen.has(runner.read_id)) { return; }
    seen.add(runner.read_id);
    queue.push(runner);
    if (holdTimer === null) { next(); } else { updateQueue(); }
  }

  // --- sound: a short WebAudio beep, only after a tap (browsers require a gesture) -------------

  var audio = null;
  var soundOn = false;

  function setupSound() {
    var button = $("sound");
    button.hidden = !config.sound;
    button.textContent = "Tap for sound";
    button.addEventListener("click", function () {
      soundOn = !soundOn;
      if (soundOn && !audio) {
        var Context = window.AudioContext || window.webkitAudioContext;
        audio = Context ? new Context() : null;
      }
      if (audio && audio.state === "suspended") { audio.resume(); }
      button.setAttribute("aria-pressed", soundOn ? "true" : "false");
      button.textContent = soundOn ? "Sound on" : "Sound off";
    });
  }

  function beep() {
    if (!soundOn || !audio) { return; }
    var oscillator = audio.createOscillator();
    var gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.value = 0.15;
    oscillator.connect(gain);
    gain.connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.12);
  }

  // --- branding, messages, sponsors ------------------------------------------------------------

  function applyBranding(chosen) {
    branding = chosen || {};
    var root = document.documentElement.style;
    [["--primary", "primary_color"], ["--accent", "accent_color"], ["--background", "background_color"],
     ["--text", "text_color"]].forEach(function (pair) {
      if (branding[pair[1]]) { root.setProperty(pair[0], branding[pair[1]]); }
    });
    $("event-name").textContent = branding.display_name || "";
    var logo = $("logo");
    if (branding.logo_url) { logo.src = branding.logo_url; logo.hidden = false; } else { logo.hidden = true; }
    var strip = $("sponsors");
    strip.textContent = "";
    (branding.sponsor_urls || []).forEach(function (url, index) {
      var image = document.createElement("img");
      image.src = url;
      image.alt = "Sponsor";
      image.className = "sponsor" + (index === 0 ? " sponsor-on" : "");
      strip.appendChild(image);
    });
    strip.hidden = strip.children.length === 0;
  }

  function rotateSponsors() {
    window.setInterval(function () {
      var images = $("sponsors").children;
      if (images.length < 2) { return; }
      var current = 0;
      for (var index = 0; index < images.length; index += 1) {
        if (images[index].classList.contains("sponsor-on")) { current = index; }
        images[index].classList.remove("sponsor-on");
      }
      images[(current + 1) % images.length].classList.add("sponsor-on");
    }, SPONSOR_MS);
  }

  var messages = Array.prototype.map.call(document.querySelectorAll("#messages li"),
                                          function (item) { return item.textContent; });
  var messageIndex = 0;

  function showMessages(list) {
    var changed = list.length !== messages.length || list.some(function (text, i) { return text !== messages[i]; });
    if (!changed) { return; }
    messages = list;
    messageIndex = 0;
    $("message").textContent = messages[0] || "";
  }

  function rotateMessages() {
    window.setInterval(function () {
      if (messages.length < 2) { return; }
      messageIndex = (messageIndex + 1) % messages.length;
      $("message").textContent = messages[messageIndex];
    }, MESSAGE_MS);
  }

  var messagesTag = null;
  var pollDelay = POLL_MS;

  function pollMessages() {
    var headers = messagesTag ? { "If-None-Match": messagesTag } : {};
    window.fetch(config.messages_url, { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 304) { return null; }
      if (!response.ok) { throw new Error("messages: HTTP " + response.status); }
      messagesTag = response.headers.get("ETag");
      return response.json();
    }).then(function (payload) {
      pollDelay = POLL_MS;
      if (payload) {
        showMessages(payload.messages || []);
        applyBranding(payload.branding);
      }
    }).catch(function () {
      pollDelay = Math.min(pollDelay * 2, MAX_RETRY_MS);
    }).then(function () {
      window.setTimeout(pollMessages, pollDelay);
    });
  }

  // --- the stream, with our own backoff (a server that is down is retried ever more slowly) ----

  var source = null;
  var retryMs = MIN_RETRY_MS;

  function setState(state, text) {
    body.dataset.state = state;
    $("connection").textContent = text;
  }

  function connect() {
    if (source) { source.close(); }
    var separator = config.stream_url.indexOf("?") === -1 ? "?" : "&";
    source = new EventSource(config.stream_url + (lastId ? separator + "last_event_id=" + lastId : ""));
    source.onopen = function () {
      retryMs = MIN_RETRY_MS;
      setState("live", "Live");
    };
    source.onmessage = function (event) {
      try {
        var runner = JSON.parse(event.data);
        if (runner.read_id > lastId) { lastId = runner.read_id; }
        receive(runner);
      } catch (error) {
        console.error("could not show a finisher", error);  // one bad event must not stop the screen
      }
    };
    source.onerror = function () {
      source.close();
      setState("reconnecting", "Connection lost — retrying in " + Math.round(retryMs / 1000) + " s");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    };
  }

  function showRecentFromPage() {
    var recent = (config.recent || []).slice().reverse();  // oldest first
    recent.forEach(function (runner) { seen.add(runner.read_id); });
    if (recent.length) {
      addRecent(recent.slice(0, -1));
      onPanel = [recent[recent.length - 1]];
      showSingle(onPanel[0]);
    }
  }

  window.addEventListener("resize", function () {
    fit($("panel-name"));
    document.querySelectorAll(".grid-name").forEach(fit);
  });

  applyBranding(branding);
  setupSound();
  showRecentFromPage();
  rotateMessages();
  rotateSponsors();
  window.setTimeout(pollMessages, POLL_MS);
  connect();
}());
