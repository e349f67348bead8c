// Follows one roster pull: polls /api/roster-imports/<id> until it is done or failed and
// updates the progress bar and text in place. No inline script or style (the page's CSP).
(function () {
  "use strict";
  var panel = document.getElementById("progress");
  if (!panel) { return; }
  var url = panel.getAttribute("data-import-url");
  var labels = { running: "Pulling… ", done: "Done. ", failed: "Failed. " };
  var delay = 1000;

  function plural(count, noun) { return count + " " + noun + (count === 1 ? "" : "s"); }

  function show(item) {
    var bar = panel.querySelector(".import-bar");
    if (item.total) {
      bar.max = item.total;
      bar.value = item.rows_done;
    } else if (item.status !== "running") {
      bar.max = 1;
      bar.value = 1;
    }
    var text = (labels[item.status] || "") + plural(item.rows_done, "runner") + " stored" +
      (item.total ? " of " + item.total : "") + ", " + plural(item.pages_done, "page") +
      (item.rows_rejected ? ", " + item.rows_rejected + " rejected" : "") + ".";
    panel.querySelector('[data-field="summary"]').textContent = text;
    var error = panel.querySelector('[data-field="error"]');
    error.textContent = item.error || "";
    error.hidden = !item.error;
    var list = panel.querySelector('[data-field="problems"]');
    while (list.firstChild) { list.removeChild(list.firstChild); }
    (item.problems || []).forEach(function (problem) {
      var entry = document.createElement("li");
      entry.textContent = problem;
      list.appendChild(entry);
    });
    panel.querySelector('[data-field="done-link"]').hidden = item.status !== "done";
    panel.setAttribute("data-status", item.status);
    var listed = document.querySelector('.import-list li[data-import-id="' + item.id + '"]');
    if (listed) {
      var badge = listed.querySelector('[data-field="badge"]');
      badge.textContent = item.status;
      badge.className = "badge " + ({ done: "badge-good", failed: "badge-bad" }[item.status] || "badge-warn");
      var counts = listed.querySelector('[data-field="counts"]');
      counts.textContent = counts.textContent.replace(/^\d+ stored, \d+ rejected/,
        item.rows_done + " stored, " + item.rows_rejected + " rejected");
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (!body.success) { throw new Error(body.error || "unavailable"); }
        show(body["import"]);
        delay = 1000;
        if (body["import"].status === "running") { window.setTimeout(poll, delay); }
      })
      .catch(function () {  // the server may be restarting: keep trying, less often
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }

  if (panel.getAttribute("data-status") === "running") { window.setTimeout(poll, 300); }
}());
