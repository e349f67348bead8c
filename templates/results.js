// The results page, live: new reads arrive over /stream (Server-Sent Events) and each burst
// reloads the table from /api/results with the page's own filters; a slow poll covers a
// stream that cannot connect. Data from the server goes on the page with textContent only.
(function () {
  "use strict";

  var DEBOUNCE_MILLISECONDS = 400;   // a burst of reads is one refresh
  var POLL_MILLISECONDS = 15000;     // when the stream is down, or nothing happens for a while
  var SEARCH_MILLISECONDS = 300;     // typing in the search box

  var table = document.getElementById("results-table");
  if (!table) { return; }
  var form = document.getElementById("results-filters");
  var rowsBody = document.getElementById("results-rows");
  var status = document.getElementById("results-status");
  var pending = null;
  var inFlight = false;
  var again = false;
  var freshnessSeconds = 1;  // how long an answer may lag the reads (results_as_of.freshness_seconds)

  function $(id) { return document.getElementById(id); }

  function apiUrl() {
    var url = new URL(table.dataset.api, window.location.href);
    ["q", "gender", "division"].forEach(function (name) {
      var field = form ? form.elements.namedItem(name) : null;
      var value = field ? String(field.value || "").trim() : "";
      if (value) { url.searchParams.set(name, value); } else { url.searchParams.delete(name); }
    });
    return url;
  }

  function cell(className, text, label) {
    var td = document.createElement("td");
    td.className = className;
    if (label) { td.dataset.label = label; }
    td.textContent = text;
    return td;
  }

  function withPlace(label, place) {
    if (!label) { return ""; }
    return place ? label + " · " + place : label;
  }

  function rowFor(result, startMat) {
    var tr = document.createElement("tr");
    tr.dataset.bib = result.bib;
    tr.appendChild(cell("num r-place", String(result.place)));
    tr.appendChild(cell("r-bib", result.bib, "Bib"));
    var name = cell("r-name wrap", result.name);
    if (result.team) {
      var team = document.createElement("span");
      team.className = "muted r-team";
      team.textContent = result.team;
      name.appendChild(document.createTextNode(" "));
      name.appendChild(team);
    }
    (result.flags || []).forEach(function (flag) {
      if (!startMat && flag === "no_start_read") { return; }  // no start mat: every row would say so
      var badge = document.createElement("span");
      badge.className = "badge badge-warn result-flag";
      badge.textContent = String(flag).replace(/_/g, " ");
      name.appendChild(badge);
    });
    tr.appendChild(name);
    tr.appendChild(cell("r-gender", withPlace(result.gender, result.gender_place), "Gender"));
    tr.appendChild(cell("r-division", withPlace(result.division, result.division_place), "Division"));
    tr.appendChild(cell("num r-gun", result.gun_time, "Gun"));
    tr.appendChild(cell("num r-chip", result.chip_time, "Chip"));
    return tr;
  }

  function render(body) {
    var fragment = document.createDocumentFragment();
    var startMat = !!body.event.start_location;
    body.results.forEach(function (result) { fragment.appendChild(rowFor(result, startMat)); });
    rowsBody.replaceChildren(fragment);
    $("results-empty").hidden = body.results.length > 0;
    $("results-more").hidden = body.count <= body.results.length;
    $("results-matching").textContent = String(body.count);
    if ($("results-finishers")) { $("results-finishers").textContent = String(body.event.finishers); }
    if ($("results-gun")) { $("results-gun").textContent = body.event.gun_time_text || "not yet"; }
    if ($("results-finish")) { $("results-finish").textContent = body.event.finish_location || "not yet"; }
    var tags = $("unknown-tags");
    if (tags) {
      var items = document.createDocumentFragment();
      body.unknown_tags.forEach(function (tag) {
        var li = document.createElement("li");
        li.className = "mono";
        li.textContent = tag;
        items.appendChild(li);
      });
      tags.replaceChildren(items);
      $("unknown-tags-panel").hidden = body.unknown_tags.length === 0;
    }
    table.dataset.lastReadId = String(body.event.last_read_id);
    if (body.results_as_of) { freshnessSeconds = Number(body.results_as_of.freshness_seconds) || 0; }
    if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
  }

  function refresh() {
    pending = null;
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch(apiUrl().toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body && body.success) { render(body); } })
      .catch(function () { if (status) { status.textContent = "Reconnecting…"; } })
      .then(function () {
        inFlight = false;
        if (again) { again = false; schedule(DEBOUNCE_MILLISECONDS); }
      });
  }

  function schedule(delay) {
    if (pending !== null) { return; }
    pending = window.setTimeout(refresh, delay);
  }

  // Typing a name or bib narrows the table at once; the address follows, so a reload keeps it.
  if (form) {
    var typing = null;
    form.addEventListener("input", function (event) {
      if (event.target.name === "event") { form.submit(); return; }  // another event: another page
      if (typing !== null) { window.clearTimeout(typing); }
      typing = window.setTimeout(function () {
        typing = null;
        var shown = apiUrl();
        var address = new URL(window.location.href);
        ["q", "gender", "division"].forEach(function (name) {
          var value = shown.searchParams.get(name);
          if (value) { address.searchParams.set(name, value); } else { address.searchParams.delete(name); }
        });
        window.history.replaceState(null, "", address.toString());
        refresh();
      }, SEARCH_MILLISECONDS);
    });
  }

  if (window.EventSource && table.dataset.stream) {
    var source = new EventSource(table.dataset.stream);
    var trailing = null;  // the answer may be up to its freshness window behind the stream: ask once more after it
    source.onmessage = function () {
      schedule(DEBOUNCE_MILLISECONDS);
      if (trailing !== null) { window.clearTimeout(trailing); }
      trailing = window.setTimeout(function () { trailing = null; schedule(0); },
                                   DEBOUNCE_MILLISECONDS + 1000 * freshnessSeconds + 100);
    };
    source.onopen = function () {  // also after a reconnect: catch up on what came meanwhile
      if (status) { status.textContent = "Live"; }
      schedule(DEBOUNCE_MILLISECONDS);
    };
  }
  window.setInterval(function () { schedule(0); }, POLL_MILLISECONDS);
}());
