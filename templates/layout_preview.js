/* The full-screen layout preview: draws the layout in the page's data- attributes with layout.js. */
(function () {
  "use strict";
  var stage = document.getElementById("layout-preview");
  if (!stage || !window.ChronoLayout) { return; }
  window.ChronoLayout.render(stage, JSON.parse(stage.dataset.layout), JSON.parse(stage.dataset.runner),
    JSON.parse(stage.dataset.branding));
}());
