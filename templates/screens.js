// The operator's screens page: "Take colours from the website" asks the hub to read the event's
// site (POST /api/events/<id>/brand-from-url, built by the outbound branch) and puts its most
// prominent colours into the branding form, to check and save. Nothing is saved by this button.
(function () {
  "use strict";

  var button = document.getElementById("brand-from-url");
  if (!button) { return; }
  var status = document.getElementById("brand-status");
  var form = document.getElementById("branding-form");

  function field(name) { return form.querySelector("input[name=" + name + "]"); }

  button.addEventListener("click", function () {
    var url = document.getElementById("brand-url").value.trim();
    if (!url) { status.textContent = "Enter the event's website address first."; return; }
    button.disabled = true;
    status.textContent = "Reading the website…";
    var headers = { "Content-Type": "application/json" };
    if (button.dataset.csrf) { headers["X-CSRF-Token"] = button.dataset.csrf; }
    window.fetch(button.dataset.endpoint, { method: "POST", headers: headers, body: JSON.stringify({ url: url }),
                                            credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return { success: false, error: "HTTP " + response.status }; });
      })
      .then(function (payload) {
        if (!payload.success) { throw new Error(payload.error || "the website could not be read"); }
        var colors = (payload.colors || []).filter(function (color) { return /^#[0-9a-fA-F]{6}$/.test(color); });
        if (!colors.length) { throw new Error("no colours found on that page"); }
        field("primary_color").value = colors[0].toLowerCase();
        if (colors[1]) { field("accent_color").value = colors[1].toLowerCase(); }
        status.textContent = "Colours taken from " + (payload.url || url) + ": check them, then save.";
      })
      .catch(function (error) {
        status.textContent = "Could not take colours: " + error.message;
      })
      .then(function () { button.disabled = false; });
  });
}());
