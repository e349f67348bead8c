/* The display designer: place and size fields on a 16:9 canvas, style them, save named layouts.
 *
 * The canvas is drawn by ChronoLayout.render (layout.js, the renderer the screens use), so
 * what is seen here is what a screen shows. Fields move with pointer events (mouse, pen,
 * touch) and the arrow keys, snapping to the grid. Every change to the page goes through
 * CSSOM and textContent only: the page runs under a CSP without inline script or style.
 * Saves go to the layouts JSON API with the session's CSRF token in X-CSRF-Token.
 */
(function () {
  "use strict";

  var root = document.getElementById("designer");
  if (!root || !window.ChronoLayout) { return; }

  var eventId = root.dataset.event;
  var csrf = root.dataset.csrf || "";
  var mayChange = root.dataset.mayChange === "yes";
  var sampleRunner = JSON.parse(root.dataset.sampleRunner || "{}");
  var latestRunner = JSON.parse(root.dataset.latestRunner || "null");
  var canvas = document.getElementById("canvas");
  var status = document.getElementById("designer-status");
  var DEFAULT_SIZES = { name: [5, 30, 90, 20, 12], bib: [5, 8, 30, 14, 8], time: [55, 60, 40, 18, 10],
    place: [5, 60, 25, 18, 10], logo: [75, 5, 20, 20, 5], image: [60, 70, 35, 25, 5] };
  var DEFAULT_COLORS = { time: "#facc15", place: "#facc15" };

  var state = {
    layout: newLayout(), id: null, name: null, updatedAt: null, selected: -1, images: [], overwrite: false,
    deleting: false, grid: 2.5
  };

  function newLayout() {
    return { version: 1, aspect: "16:9", background: { color: "#0b1220", image_id: null }, font: "sans",
      fields: [
        { kind: "name", x: 5, y: 30, w: 90, h: 20, size: 12, weight: 700, color: "#ffffff", align: "left", image_id: null, text: "" },
        { kind: "time", x: 55, y: 60, w: 40, h: 18, size: 10, weight: 700, color: "#facc15", align: "right", image_id: null, text: "" }
      ] };
  }

  function say(text) { status.textContent = text; }

  function runner() {
    var choice = document.getElementById("preview-runner").value;
    return choice === "latest" && latestRunner ? latestRunner : sampleRunner;
  }

  function imageUrls() {
    var urls = {};
    state.images.forEach(function (image) { urls[String(image.id)] = image.url; });
    return urls;
  }

  function round(value) { return Math.round(value * 100) / 100; }
  function snap(value) { return round(Math.round(value / state.grid) * state.grid); }
  function clamp(value, low, high) { return Math.min(Math.max(value, low), high); }

  /* Draw the canvas from state.layout, then make its fields editable. */
  function draw() {
    var shown = Object.assign({}, state.layout, { images: imageUrls() });
    window.ChronoLayout.render(canvas, shown, runner(), { display_name: root.dataset.eventName });
    var grid = document.createElement("div");
    grid.className = "designer-grid";
    grid.style.backgroundSize = state.grid + "% " + state.grid + "%";
    canvas.insertBefore(grid, canvas.firstChild);
    Array.prototype.forEach.call(canvas.querySelectorAll(".chrono-field"), function (element) {
      var index = Number(element.dataset.index);
      var field = state.layout.fields[index];
      element.tabIndex = 0;
      element.setAttribute("role", "button");
      element.setAttribute("aria-label", window.ChronoLayout.LABELS[field.kind] + " field at " + field.x + "%, " + field.y + "%");
      element.classList.add("designer-field");
      if (index === state.selected) { element.classList.add("is-selected"); }
      if (!element.textContent && !element.querySelector("img")) {
        var label = document.createElement("span");
        label.className = "designer-placeholder";
        label.textContent = window.ChronoLayout.LABELS[field.kind];
        element.appendChild(label);
      }
      var handle = document.createElement("span");
      handle.className = "designer-handle";
      handle.setAttribute("aria-hidden", "true");
      element.appendChild(handle);
      element.addEventListener("pointerdown", startDrag);
      element.addEventListener("keydown", nudge);
      element.addEventListener("focus", function () { if (state.selected !== index) { select(index, true); } });
    });
    showProperties();
  }

  function select(index, keepFocus) {
    state.selected = index;
    draw();
    if (keepFocus && index >= 0) { focusSelected(); }
  }

  function focusSelected() {
    var element = canvas.querySelector('.chrono-field[data-index="' + state.selected + '"]');
    if (element) { element.focus({ preventScroll: true }); }
  }

  // Dragging and resizing

  function startDrag(event) {
    if (event.button !== undefined && event.button !== 0) { return; }
    var element = event.currentTarget;
    var index = Number(element.dataset.index);
    var field = state.layout.fields[index];
    var resizing = event.target.classList.contains("designer-handle");
    var box = canvas.getBoundingClientRect();
    var start = { px: event.clientX, py: event.clientY, x: field.x, y: field.y, w: field.w, h: field.h };
    event.preventDefault();
    if (state.selected !== index) {
      state.selected = index;
      canvas.querySelectorAll(".is-selected").forEach(function (other) { other.classList.remove("is-selected"); });
      element.classList.add("is-selected");
      showProperties();
    }
    element.setPointerCapture(event.pointerId);
    element.focus({ preventScroll: true });

    function move(moveEvent) {
      var dx = (moveEvent.clientX - start.px) / box.width * 100;
      var dy = (moveEvent.clientY - start.py) / box.height * 100;
      if (resizing) {
        field.w = clamp(snap(start.w + dx), state.grid, 100 - field.x);
        field.h = clamp(snap(start.h + dy), state.grid, 100 - field.y);
        element.style.width = field.w + "%";
        element.style.height = field.h + "%";
      } else {
        field.x = clamp(snap(start.x + dx), 0, round(100 - field.w));
        field.y = clamp(snap(start.y + dy), 0, round(100 - field.h));
        element.style.left = field.x + "%";
        element.style.top = field.y + "%";
      }
    }

    function end() {
      element.removeEventListener("pointermove", move);
      element.removeEventListener("pointerup", end);
      element.removeEventListener("pointercancel", end);
      draw();
      focusSelected();
    }

    element.addEventListener("pointermove", move);
    element.addEventListener("pointerup", end);
    element.addEventListener("pointercancel", end);
  }

  function nudge(event) {
    var field = state.layout.fields[state.selected];
    if (!field) { return; }
    var steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeSelected();
      return;
    }
    if (!steps) { return; }
    event.preventDefault();
    if (event.shiftKey) {
      field.w = clamp(snap(field.w + steps[0] * state.grid), state.grid, 100 - field.x);
      field.h = clamp(snap(field.h + steps[1] * state.grid), state.grid, 100 - field.y);
    } else {
      field.x = clamp(snap(field.x + steps[0] * state.grid), 0, round(100 - field.w));
      field.y = clamp(snap(field.y + steps[1] * state.grid), 0, round(100 - field.h));
    }
    draw();
    focusSelected();
  }

  function removeSelected() {
    if (state.selected < 0) { return; }
    state.layout.fields.splice(state.selected, 1);
    state.selected = -1;
    draw();
    canvas.focus();
  }

  // The property panel

  var props = {
    x: document.getElementById("prop-x"), y: document.getElementById("prop-y"),
    w: document.getElementById("prop-w"), h: document.getElementById("prop-h"),
    size: document.getElementById("prop-size"), weight: document.getElementById("prop-weight"),
    color: document.getElementById("prop-color"), align: document.getElementById("prop-align"),
    text: document.getElementById("prop-text"), image: document.getElementById("prop-image")
  };

  function showProperties() {
    var field = state.layout.fields[state.selected];
    document.getElementById("field-props").disabled = !field;
    document.getElementById("field-kind").textContent = field ? "(" + window.ChronoLayout.LABELS[field.kind] + ")" : "(none)";
    document.getElementById("prop-text-label").hidden = !field || field.kind !== "message";
    document.getElementById("prop-image-label").hidden = !field || (field.kind !== "image" && field.kind !== "logo");
    if (!field) { return; }
    ["x", "y", "w", "h", "size"].forEach(function (name) { props[name].value = field[name]; });
    props.weight.value = String(field.weight);
    props.color.value = field.color;
    props.align.value = field.align;
    props.text.value = field.text || "";
    props.image.value = field.image_id === null || field.image_id === undefined ? "" : String(field.image_id);
    document.getElementById("layout-font").value = state.layout.font;
    document.getElementById("layout-background").value = state.layout.background.color;
  }

  function changeProperty(name) {
    return function () {
      var field = state.layout.fields[state.selected];
      if (!field) { return; }
      var value = props[name].value;
      if (["x", "y", "w", "h", "size"].indexOf(name) >= 0) {
        value = Number(value);
        if (!isFinite(value)) { return; }
        if (name === "size") { value = clamp(value, 1, 50); }
        if (name === "x") { value = clamp(value, 0, 100 - field.w); }
        if (name === "y") { value = clamp(value, 0, 100 - field.h); }
        if (name === "w") { value = clamp(value, 1, 100 - field.x); }
        if (name === "h") { value = clamp(value, 1, 100 - field.y); }
        value = round(value);
      } else if (name === "weight") {
        value = Number(value);
      } else if (name === "image") {
        value = value ? Number(value) : null;
        if (field.kind === "image" && value === null) { return; }
        name = "image_id";
      }
      field[name] = value;
      draw();
    };
  }

  Object.keys(props).forEach(function (name) {
    props[name].addEventListener(props[name].tagName === "SELECT" ? "change" : "input", changeProperty(name));
  });
  document.getElementById("field-remove").addEventListener("click", removeSelected);
  document.getElementById("layout-font").addEventListener("change", function (event) {
    state.layout.font = event.target.value;
    draw();
  });
  document.getElementById("layout-background").addEventListener("input", function (event) {
    state.layout.background.color = event.target.value;
    draw();
  });
  document.getElementById("layout-background-image").addEventListener("change", function (event) {
    state.layout.background.image_id = event.target.value ? Number(event.target.value) : null;
    draw();
  });
  document.getElementById("grid-size").addEventListener("change", function (event) {
    state.grid = Number(event.target.value) || 2.5;
    draw();
  });
  document.getElementById("preview-runner").addEventListener("change", draw);
  if (!latestRunner) {
    document.querySelector('#preview-runner option[value="latest"]').textContent = "Latest finisher (none yet)";
  }

  document.getElementById("add-field").addEventListener("click", function () {
    var kind = document.getElementById("add-kind").value;
    if (state.layout.fields.length >= 40) { say("A layout has at most 40 fields."); return; }
    if (kind === "image" && !state.images.length) { say("Upload an image first (Images of this event)."); return; }
    var size = DEFAULT_SIZES[kind] || [5, 5, 40, 12, 6];
    state.layout.fields.push({ kind: kind, x: size[0], y: size[1], w: size[2], h: size[3], size: size[4],
      weight: 700, color: DEFAULT_COLORS[kind] || "#ffffff", align: "left",
      image_id: kind === "image" ? state.images[state.images.length - 1].id : null,
      text: kind === "message" ? "Welcome to the finish!" : "" });
    select(state.layout.fields.length - 1, true);
  });

  // Talking to the server

  function api(method, url, body) {
    var options = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (csrf) { options.headers["X-CSRF-Token"] = csrf; }
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function problem(result) {
    var data = result.data || {};
    return data.error || data.message || ("the server answered " + result.status);
  }

  function rememberInAddress() {
    var url = new URL(window.location.href);
    url.searchParams.set("event", eventId);
    if (state.id) { url.searchParams.set("layout", state.id); } else { url.searchParams.delete("layout"); }
    window.history.replaceState(null, "", url.toString());
    var link = document.getElementById("layout-preview-link");
    link.hidden = !state.id;
    link.href = state.id ? "/layouts/" + state.id + "/preview" : "#";
  }

  function loadList(selectId) {
    return api("GET", "/api/events/" + eventId + "/layouts").then(function (result) {
      if (result.status !== 200) { say("Could not list the saved layouts: " + problem(result)); return; }
      var list = document.getElementById("layout-list");
      while (list.options.length > 1) { list.remove(1); }
      result.data.layouts.forEach(function (item) {
        var option = document.createElement("option");
        option.value = String(item.id);
        option.textContent = item.name;
        list.appendChild(option);
      });
      list.value = selectId ? String(selectId) : "";
    });
  }

  function loadLayout(id) {
    return api("GET", "/api/layouts/" + id).then(function (result) {
      if (result.status !== 200) { say("Could not load the layout: " + problem(result)); return; }
      var stored = result.data.layout;
      var layout = stored.layout;
      delete layout.images;
      state.layout = layout;
      state.id = stored.id;
      state.name = stored.name;
      state.updatedAt = stored.updated_at;
      state.selected = -1;
      state.overwrite = false;
      document.getElementById("layout-name").value = stored.name;
      document.getElementById("layout-list").value = String(stored.id);
      document.getElementById("layout-font").value = layout.font;
      document.getElementById("layout-background").value = layout.background.color;
      document.getElementById("layout-background-image").value = layout.background.image_id ? String(layout.background.image_id) : "";
      rememberInAddress();
      draw();
      say("Loaded “" + stored.name + "”.");
    });
  }

  document.getElementById("layout-list").addEventListener("change", function (event) {
    if (event.target.value) {
      loadLayout(event.target.value);
    } else {
      state.layout = newLayout();
      state.id = null;
      state.name = null;
      state.updatedAt = null;
      state.selected = -1;
      rememberInAddress();
      draw();
    }
  });

  root.addEventListener("click", function (event) {
    if (event.target.id !== "layout-delete") { state.deleting = false; }
  }, true);

  document.getElementById("layout-save").addEventListener("click", function () {
    var name = document.getElementById("layout-name").value.trim();
    if (!name) { say("Give the layout a name first."); return; }
    var body = { name: name, layout: state.layout };
    var request;
    /* The loaded layout under its own name: save over it; under a new name: save a copy. */
    if (state.id && name === state.name) {
      body.updated_at = state.updatedAt;
      if (state.overwrite) { body.overwrite = true; }
      request = api("PUT", "/api/layouts/" + state.id, body);
    } else {
      if (state.overwrite) { body.overwrite = true; }
      request = api("POST", "/api/events/" + eventId + "/layouts", body);
    }
    say("Saving…");
    request.then(function (result) {
      if (result.status === 409) {
        state.overwrite = true;
        say("Not saved: " + problem(result) + ". Press Save again to replace it.");
        return;
      }
      if (result.status !== 200 && result.status !== 201) { say("Not saved: " + problem(result)); return; }
      var stored = result.data.layout;
      state.id = stored.id;
      state.name = stored.name;
      state.updatedAt = stored.updated_at;
      state.overwrite = false;
      rememberInAddress();
      loadList(stored.id).then(function () { say("Saved “" + stored.name + "”."); });
    }, function () { say("Not saved: the hub cannot be reached."); });
  });

  document.getElementById("layout-delete").addEventListener("click", function () {
    if (!state.id) { say("Nothing to delete: this layout was never saved."); return; }
    if (!state.deleting) {  /* a second press confirms (no window.confirm: it blocks the page) */
      state.deleting = true;
      say("Press Delete again to delete “" + state.name + "”.");
      return;
    }
    state.deleting = false;
    var id = state.id;
    api("DELETE", "/api/layouts/" + id).then(function (result) {
      if (result.status !== 200) { say("Not deleted: " + problem(result)); return; }
      state.id = null;
      state.name = null;
      state.updatedAt = null;
      rememberInAddress();
      loadList(null).then(function () { say("Deleted."); });
    });
  });

  // Images

  function showImages() {
    var list = document.getElementById("image-list");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var pickers = [props.image, document.getElementById("layout-background-image")];
    pickers.forEach(function (picker) { while (picker.options.length > 1) { picker.remove(1); } });
    state.images.forEach(function (image) {
      var item = document.createElement("li");
      var thumb = document.createElement("img");
      thumb.src = image.url;
      thumb.alt = image.name;
      var caption = document.createElement("span");
      caption.textContent = image.name + " · " + image.width + "×" + image.height;
      item.appendChild(thumb);
      item.appendChild(caption);
      list.appendChild(item);
      pickers.forEach(function (picker) {
        var option = document.createElement("option");
        option.value = String(image.id);
        option.textContent = image.name;
        picker.appendChild(option);
      });
    });
    document.getElementById("layout-background-image").value = state.layout.background.image_id ? String(state.layout.background.image_id) : "";
    showProperties();
  }

  function loadImages() {
    return api("GET", "/api/events/" + eventId + "/images").then(function (result) {
      if (result.status !== 200) { say("Could not list the images: " + problem(result)); return; }
      state.images = result.data.images;
      showImages();
    });
  }

  document.getElementById("image-upload").addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("image-file").files[0];
    if (!file) { say("Choose a PNG, JPEG or WebP file first."); return; }
    if (file.size > 2 * 1024 * 1024) { say("That file is larger than 2 MB."); return; }
    var form = new FormData();
    form.append("csrf_token", csrf);
    form.append("image", file);
    say("Uploading…");
    api("POST", "/api/events/" + eventId + "/images", form).then(function (result) {
      if (result.status !== 200) { say("Not uploaded: " + problem(result)); return; }
      var image = result.data.image;
      loadImages().then(function () {
        var field = state.layout.fields[state.selected];
        if (field && (field.kind === "logo" || field.kind === "image")) {
          field.image_id = image.id;
          draw();
        }
        say("Uploaded “" + image.name + "” (" + image.width + "×" + image.height + ").");
      });
      document.getElementById("image-file").value = "";
    }, function () { say("Not uploaded: the hub cannot be reached."); });
  });

  // Colours from the event's website (served by the outbound part of the hub, when it is there)

  function applyBrand(colors, fonts) {
    if (!window.ChronoBrand || !window.ChronoBrand.apply(state.layout, colors, fonts)) { return false; }
    document.getElementById("layout-font").value = state.layout.font;
    document.getElementById("layout-background").value = state.layout.background.color;
    draw();
    return true;
  }

  document.getElementById("brand-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var brandStatus = document.getElementById("brand-status");
    var url = document.getElementById("brand-url").value.trim();
    if (!/^https?:\/\//i.test(url)) { brandStatus.textContent = "Enter the website's address, starting with https://"; return; }
    brandStatus.textContent = "Looking at " + url + "…";
    api("POST", "/api/events/" + eventId + "/brand-from-url", { url: url }).then(function (result) {
      var missingRoute = (result.status === 404 && (result.data || {}).error === "not found") || result.status === 405;
      if (missingRoute) {
        brandStatus.textContent = "Taking colours from a website is not available on this hub yet; pick the colours by hand.";
      } else if (result.status !== 200 || !result.data.success) {
        brandStatus.textContent = "Could not take the colours: " + problem(result);
      } else if (!applyBrand(result.data.colors, result.data.fonts)) {
        brandStatus.textContent = "The website has no colours we could use.";
      } else {
        brandStatus.textContent = "Applied the colours of " + (result.data.url || url) + ".";
      }
    }, function () { brandStatus.textContent = "Could not reach the hub."; });
  });

  // Start

  if (!mayChange) {
    ["layout-save", "layout-delete", "add-field"].forEach(function (id) { document.getElementById(id).disabled = true; });
    say("Read-only: sign in to change layouts.");
  }
  canvas.tabIndex = -1;
  window.addEventListener("resize", draw);
  var wanted = new URL(window.location.href).searchParams.get("layout");
  loadImages().then(function () {
    return loadList(wanted);
  }).then(function () {
    if (wanted && /^\d+$/.test(wanted)) { return loadLayout(wanted); }
    draw();
  });
  draw();
}());
