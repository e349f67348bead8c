/* Turning a website's colours and fonts into a layout's colours and font, for the designer.
 *
 * The hub's brand-from-url answer lists the site's colours, most prominent first, and its
 * font families. The most prominent becomes the background; text is near-black or white,
 * whichever reads on it; times and places take the next colour that stands out from the
 * background (contrast at least 3:1, WCAG's bar for large text). A web font cannot be
 * loaded under the CSP, so the family picks the closest local font stack.
 */
(function () {
  "use strict";

  var COLOR = /^#[0-9a-fA-F]{6}$/;
  var ACCENTED = { time: true, place: true };

  function luminance(hex) {
    var channels = [1, 3, 5].map(function (at) {
      var c = parseInt(hex.substr(at, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  function contrast(one, other) {
    var a = luminance(one) + 0.05, b = luminance(other) + 0.05;
    return Math.max(a, b) / Math.min(a, b);
  }

  function fontFor(families, current) {
    var first = (families && families[0]) || "";
    if (/mono|courier|code/i.test(first)) { return "mono"; }
    if (/condensed|narrow|oswald|bebas|league gothic/i.test(first)) { return "condensed"; }
    if (/rounded|nunito|quicksand|varela/i.test(first)) { return "rounded"; }
    if (/serif/i.test(first) && !/sans/i.test(first)) { return "serif"; }
    if (/georgia|times|garamond|merriweather|playfair|lora|baskerville/i.test(first)) { return "serif"; }
    return first ? "sans" : current;
  }

  /* Restyle `layout` in place; false (and no change) when no colour is usable. */
  function apply(layout, colors, fonts) {
    var valid = (colors || []).filter(function (color) { return typeof color === "string" && COLOR.test(color); })
      .map(function (color) { return color.toLowerCase(); });
    if (!valid.length) { return false; }
    var background = valid[0];
    var text = luminance(background) > 0.4 ? "#111111" : "#ffffff";
    var accent = valid.slice(1).find(function (color) { return contrast(color, background) >= 3; }) || text;
    layout.background.color = background;
    layout.font = fontFor(fonts, layout.font);
    layout.fields.forEach(function (field) { field.color = ACCENTED[field.kind] ? accent : text; });
    return true;
  }

  window.ChronoBrand = { apply: apply };
}());
