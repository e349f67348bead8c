/* The display layout renderer: window.ChronoLayout.render(container, layout, runner, branding).
 *
 * Fills `container` (sized by the caller, any size of 16:9) with the layout's fields for one
 * runner, each placed in percent of the container and its font sized in percent of the
 * container's height (container query units), so the designer's small canvas and a 1080p
 * screen show the same picture. DOM APIs and CSSOM only (element.style.x = ...): no inline
 * <style>, no style attributes, no innerHTML, so it runs under the Content-Security-Policy
 * and nothing from a runner's name can become markup. Used by the designer's preview, the
 * layout preview page and the display screens.
 */
(function () {
  "use strict";

  var FONTS = {
    sans: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    serif: "Georgia, 'Times New Roman', Times, serif",
    condensed: "'Arial Narrow', 'Roboto Condensed', 'DejaVu Sans Condensed', sans-serif",
    rounded: "ui-rounded, 'SF Pro Rounded', 'Nunito', 'Arial Rounded MT Bold', sans-serif",
    mono: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"
  };
  var LABELS = {
    name: "Name", bib: "Bib", time: "Time", place: "Place", gender_place: "Gender place",
    division_place: "Division place", division: "Division", city: "City", team: "Team",
    message: "Message", logo: "Logo", image: "Image", event_name: "Event name", clock: "Clock"
  };
  var COLOR = /^#[0-9a-fA-F]{6}$/;
  var SMALLEST_FIT = 0.25;  /* a long name may shrink to a quarter of its size before it is cut with "…" */
  var clocks = typeof WeakMap === "function" ? new WeakMap() : null;
  var SAFE_URL = /^\/images\/[0-9a-f]{64}\.(png|jpg|webp)$/;

  function ordinal(n) {
    var tens = n % 100;
    if (tens >= 11 && tens <= 13) { return n + "th"; }
    return n + ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
  }

  function present(value) {
    return value !== null && value !== undefined && value !== "";
  }

  function clockText() {
    var now = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(now.getHours()) + ":" + two(now.getMinutes()) + ":" + two(now.getSeconds());
  }

  /* The text a field shows for this runner ("" hides it). */
  function fieldText(field, runner, branding) {
    runner = runner || {};
    branding = branding || {};
    switch (field.kind) {
      case "name":
        if (runner.known === false) { return "Unknown tag " + (runner.bib || ""); }
        return runner.name || [runner.first_name, runner.last_name].filter(present).join(" ");
      case "bib": return present(runner.bib) ? "#" + runner.bib : "";
      case "time": return runner.time_text || "";
      case "place": return present(runner.place) ? ordinal(runner.place) : "";
      case "gender_place":
        return present(runner.gender_place) ? ordinal(runner.gender_place) + (runner.gender ? " " + runner.gender : "") : "";
      case "division_place":
        return present(runner.division_place) ? ordinal(runner.division_place) + (runner.division ? " " + runner.division : "") : "";
      case "division": return runner.division || "";
      case "city": return runner.city || "";
      case "team": return runner.team || "";
      case "message": return field.text || "";
      case "event_name": return branding.display_name || "";
      case "clock": return runner.clock_time || clockText();
      default: return "";
    }
  }

  /* The picture of a logo or image field: a URL of ours, or null. */
  function fieldImage(field, layout, branding) {
    var url = null;
    if (field.image_id !== null && field.image_id !== undefined) {  /* an image of the event's, chosen in the designer */
      url = layout.images && layout.images[String(field.image_id)];
    } else if (field.kind === "logo") {  /* else a logo field shows the event's branding logo */
      url = branding && branding.logo_url;
    }
    return url && SAFE_URL.test(url) ? url : null;
  }

  function place(element, field) {
    var style = element.style;
    style.position = "absolute";
    style.left = field.x + "%";
    style.top = field.y + "%";
    style.width = field.w + "%";
    style.height = field.h + "%";
    style.boxSizing = "border-box";
    style.overflow = "hidden";
  }

  function drawField(field, layout, runner, branding) {
    var element = document.createElement("div");
    element.className = "chrono-field chrono-field-" + field.kind;
    element.dataset.kind = field.kind;
    place(element, field);
    var style = element.style;
    style.display = "flex";
    style.alignItems = "center";
    style.justifyContent = field.align === "center" ? "center" : field.align === "right" ? "flex-end" : "flex-start";
    if (field.kind === "logo" || field.kind === "image") {
      var url = fieldImage(field, layout, branding);
      if (url) {
        var image = document.createElement("img");
        image.src = url;
        image.alt = field.kind === "logo" ? "Logo" : "";
        image.style.maxWidth = "100%";
        image.style.maxHeight = "100%";
        image.style.objectFit = "contain";
        element.appendChild(image);
      }
      return element;
    }
    var text = document.createElement("span");
    text.className = "chrono-text";
    text.textContent = fieldText(field, runner, branding);
    text.style.display = "block";
    text.style.width = "100%";
    text.style.whiteSpace = "nowrap";
    text.style.overflow = "hidden";
    text.style.textOverflow = "ellipsis";
    text.style.textAlign = field.align || "left";
    style.color = COLOR.test(field.color || "") ? field.color : "#ffffff";
    style.fontSize = (field.size || 5) + "cqh";
    style.fontWeight = String(field.weight || 400);
    style.lineHeight = "1.1";
    element.appendChild(text);
    return element;
  }

  /* Shrink a text field's font until its text fits the box (long names), measured once drawn. */
  function fitText(element, field) {
    var text = element.firstChild;
    if (!text || !text.textContent || !element.isConnected) { return; }
    var size = field.size || 5;
    var smallest = size * SMALLEST_FIT;
    for (var tries = 0; tries < 8 && text.scrollWidth > text.clientWidth + 1 && size > smallest; tries += 1) {
      size = Math.max(smallest, size * Math.max(0.5, (text.clientWidth / text.scrollWidth) * 0.98));
      element.style.fontSize = size.toFixed(2) + "cqh";
    }
  }

  /* Clock fields without a runner's clock time tick every second, until the next render. */
  function tickClocks(container, fields) {
    if (clocks && clocks.has(container)) {
      window.clearInterval(clocks.get(container));
      clocks.delete(container);
    }
    if (!clocks || !fields.length) { return; }
    clocks.set(container, window.setInterval(function () {
      if (!container.isConnected) { window.clearInterval(clocks.get(container)); clocks.delete(container); return; }
      var text = clockText();
      fields.forEach(function (element) { if (element.firstChild) { element.firstChild.textContent = text; } });
    }, 1000));
  }

  /* Draw `layout` for `runner` into `container`, replacing what was there. */
  function render(container, layout, runner, branding) {
    layout = layout || { fields: [] };
    branding = branding || {};
    runner = runner || {};
    while (container.firstChild) { container.removeChild(container.firstChild); }
    var style = container.style;
    if (!style.position || style.position === "static") { style.position = "relative"; }
    style.overflow = "hidden";
    style.containerType = "size";
    style.fontFamily = FONTS[layout.font] || FONTS.sans;
    var background = layout.background || {};
    style.backgroundColor = COLOR.test(background.color || "") ? background.color : "#000000";
    var backgroundUrl = background.image_id !== null && background.image_id !== undefined && layout.images
      ? layout.images[String(background.image_id)] : null;
    if (backgroundUrl && SAFE_URL.test(backgroundUrl)) {
      style.backgroundImage = "url(\"" + backgroundUrl + "\")";
      style.backgroundSize = "cover";
      style.backgroundPosition = "center";
    } else {
      style.backgroundImage = "none";
    }
    var ticking = [];
    (layout.fields || []).forEach(function (field, index) {
      var element = drawField(field, layout, runner, branding);
      element.dataset.index = String(index);
      container.appendChild(element);
      if (field.kind !== "logo" && field.kind !== "image") { fitText(element, field); }
      if (field.kind === "clock" && !runner.clock_time) { ticking.push(element); }
    });
    tickClocks(container, ticking);
    return container;
  }

  window.ChronoLayout = { render: render, fieldText: fieldText, FONTS: FONTS, LABELS: LABELS };
}());
