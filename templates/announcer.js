// The announcer: polls /api/announcer (with its ETag, so an unchanged list costs a 304) and
// shows who is about to arrive, names large. Data reaches the page through textContent only.
(function () {
  "use strict";

  var body = document.body;
  var api = body.dataset.api;
  var POLL_MS = 2000;
  var MAX_RETRY_MS = 30000;
  var tag = null;
  var delay = POLL_MS;

  function $(id) { return document.getElementById(id); }

  function setState(state, text) {
    body.dataset.state = state;
    $("connection").textContent = text;
  }

  function div(className, text) {
    var element = document.createElement("div");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function render(payload) {
    var list = $("approaching");
    var note = $("announcer-note");
    list.textContent = "";
    payload.runners.forEach(function (runner) {
      var row = document.createElement("li");
      row.className = "announcer-row";
      row.dataset.bib = runner.bib;
      row.appendChild(div("announcer-name", runner.known ? (runner.name || "Bib " + runner.bib)
                                                         : "Bib " + runner.bib + " — not in roster"));
      row.appendChild(div("announcer-eta", runner.projected_text ? "≈ " + runner.projected_text : runner.split_text));
      var facts = ["Bib " + runner.bib, runner.city, runner.division,
                   runner.split_location + " " + runner.split_text];
      if (runner.projected_text) { facts.push("projected finish " + runner.projected_text); }
      row.appendChild(div("announcer-facts", facts.filter(function (part) { return part; }).join(" · ")));
      list.appendChild(row);
    });
    note.hidden = payload.runners.length > 0;
    note.textContent = "Nobody between a split and the finish right now.";
  }

  function poll() {
    var headers = tag ? { "If-None-Match": tag } : {};
    window.fetch(api, { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 304) { return null; }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      tag = response.headers.get("ETag");
      return response.json();
    }).then(function (payload) {
      delay = POLL_MS;
      setState("live", "Live");
      if (payload) { render(payload); }
    }).catch(function () {
      delay = Math.min(delay * 2, MAX_RETRY_MS);
      setState("reconnecting", "Connection lost — retrying in " + Math.round(delay / 1000) + " s");
    }).then(function () {
      window.setTimeout(poll, delay);
    });
  }

  if (api && $("approaching")) { poll(); } else { setState("live", ""); }
}());
