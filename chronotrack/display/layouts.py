"""The display layout JSON the designer saves and ``/static/layout.js`` draws, checked on the server.

A layout comes from a browser, so nothing in it is trusted: every key is known, every
number bounded, every colour ``#rrggbb``, every font one of the local font stacks (the
Content-Security-Policy forbids loading fonts from elsewhere), and every field one of the
kinds the renderer knows. ``validate_layout`` returns a clean copy holding only those keys,
or raises ``LayoutError`` naming the first bad path (``fields[3].x``), which the API turns
into a 400. Pure Python, no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

LAYOUT_VERSION = 1
ASPECT = "16:9"
MAX_LAYOUT_BYTES = 32 * 1024
MAX_FIELDS = 40
MAX_NAME_LENGTH = 100
MAX_TEXT_LENGTH = 200
MIN_FONT_SIZE = 1.0  # percent of the canvas height
MAX_FONT_SIZE = 50.0
MAX_ID = 2**62

# Local font stacks only: the keys go into the JSON, the stacks into CSS (layout.js has the same map).
FONTS = {
    "sans": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    "serif": "Georgia, 'Times New Roman', Times, serif",
    "condensed": "'Arial Narrow', 'Roboto Condensed', 'DejaVu Sans Condensed', sans-serif",
    "rounded": "ui-rounded, 'SF Pro Rounded', 'Nunito', 'Arial Rounded MT Bold', sans-serif",
    "mono": "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
}
FIELD_KINDS = ("name", "bib", "time", "place", "gender_place", "division_place", "division", "city", "team",
               "message", "logo", "image", "event_name", "clock")
WEIGHTS = (400, 700, 900)
ALIGNMENTS = ("left", "center", "right")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
TOP_KEYS = {"version", "aspect", "background", "font", "fields"}
SERVED_KEYS = {"images"}  # added by the API when it serves a layout (image id -> URL): accepted back, dropped
BACKGROUND_KEYS = {"color", "image_id"}
FIELD_KEYS = {"kind", "x", "y", "w", "h", "size", "weight", "color", "align", "image_id", "text"}


class LayoutError(ValueError):
    """A layout that cannot be saved; ``path`` says where (``fields[3].x``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def parse_layout_text(text: str | bytes) -> dict[str, Any]:
    """A layout from its JSON text: at most 32 KB, then ``validate_layout``."""
    if len(text) > MAX_LAYOUT_BYTES:
        raise LayoutError("layout", f"must be at most {MAX_LAYOUT_BYTES // 1024} KB of JSON")
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise LayoutError("layout", "is not valid JSON") from None
    return validate_layout(value)


def validate_layout(value: Any) -> dict[str, Any]:
    """A clean copy of ``value`` if it is a layout we can draw; else LayoutError naming the bad path."""
    if not isinstance(value, dict):
        raise LayoutError("layout", "must be a JSON object")
    if len(json.dumps(value, separators=(",", ":"))) > MAX_LAYOUT_BYTES:
        raise LayoutError("layout", f"must be at most {MAX_LAYOUT_BYTES // 1024} KB of JSON")
    _no_unknown_keys(value, TOP_KEYS | SERVED_KEYS, "")
    if value.get("version") != LAYOUT_VERSION or isinstance(value.get("version"), bool):
        raise LayoutError("version", f"must be {LAYOUT_VERSION}")
    if value.get("aspect", ASPECT) != ASPECT:
        raise LayoutError("aspect", f"must be {ASPECT}")
    background = value.get("background", {})
    if not isinstance(background, dict):
        raise LayoutError("background", "must be an object with color and image_id")
    _no_unknown_keys(background, BACKGROUND_KEYS, "background.")
    font = value.get("font", "sans")
    if font not in FONTS:
        raise LayoutError("font", "must be one of " + ", ".join(FONTS))
    fields = value.get("fields")
    if not isinstance(fields, list):
        raise LayoutError("fields", "must be a list")
    if len(fields) > MAX_FIELDS:
        raise LayoutError("fields", f"must have at most {MAX_FIELDS} fields")
    return {
        "version": LAYOUT_VERSION,
        "aspect": ASPECT,
        "background": {"color": _color(background.get("color", "#000000"), "background.color"),
                       "image_id": _optional_id(background.get("image_id"), "background.image_id")},
        "font": font,
        "fields": [_field(field, f"fields[{index}]") for index, field in enumerate(fields)],
    }


def image_ids(layout: dict[str, Any]) -> set[int]:
    """Every image a (validated) layout refers to: the server checks they are the event's own."""
    ids = {field["image_id"] for field in layout["fields"] if field.get("image_id") is not None}
    if layout["background"]["image_id"] is not None:
        ids.add(layout["background"]["image_id"])
    return ids


def _field(field: Any, path: str) -> dict[str, Any]:
    if not isinstance(field, dict):
        raise LayoutError(path, "must be an object")
    _no_unknown_keys(field, FIELD_KEYS, path + ".")
    kind = field.get("kind")
    if kind not in FIELD_KINDS:
        raise LayoutError(path + ".kind", "must be one of " + ", ".join(FIELD_KINDS))
    x = _percent(field.get("x"), path + ".x")
    y = _percent(field.get("y"), path + ".y")
    w = _percent(field.get("w"), path + ".w", minimum_exclusive=True)
    h = _percent(field.get("h"), path + ".h", minimum_exclusive=True)
    if x + w > 100:
        raise LayoutError(path + ".w", "reaches past the right edge (x + w must be at most 100)")
    if y + h > 100:
        raise LayoutError(path + ".h", "reaches past the bottom edge (y + h must be at most 100)")
    size = _number(field.get("size", 5), path + ".size")
    if not MIN_FONT_SIZE <= size <= MAX_FONT_SIZE:
        raise LayoutError(path + ".size", f"must be from {MIN_FONT_SIZE:g} to {MAX_FONT_SIZE:g} (% of the height)")
    weight = field.get("weight", 400)
    if isinstance(weight, bool) or weight not in WEIGHTS:
        raise LayoutError(path + ".weight", "must be one of " + ", ".join(str(w) for w in WEIGHTS))
    align = field.get("align", "left")
    if align not in ALIGNMENTS:
        raise LayoutError(path + ".align", "must be one of " + ", ".join(ALIGNMENTS))
    image_id = _optional_id(field.get("image_id"), path + ".image_id")
    if kind == "image" and image_id is None:
        raise LayoutError(path + ".image_id", "an image field needs the id of one of the event's images")
    if kind not in ("image", "logo") and image_id is not None:
        raise LayoutError(path + ".image_id", "only an image or logo field has an image")
    text = field.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH:
        raise LayoutError(path + ".text", f"must be text of at most {MAX_TEXT_LENGTH} characters")
    if any(ord(character) < 32 or 127 <= ord(character) < 160 for character in text):
        raise LayoutError(path + ".text", "must not contain control characters")
    return {"kind": kind, "x": x, "y": y, "w": w, "h": h, "size": size, "weight": int(weight),
            "color": _color(field.get("color", "#ffffff"), path + ".color"), "align": align,
            "image_id": image_id, "text": text}


def _no_unknown_keys(value: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in value:
        if key not in known:
            raise LayoutError(prefix + str(key)[:40], "is not a layout setting")


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
            float("inf"), float("-inf")):
        raise LayoutError(path, "must be a number")
    return round(float(value), 2)


def _percent(value: Any, path: str, minimum_exclusive: bool = False) -> float:
    number = _number(value, path)
    if number > 100 or number < 0 or (minimum_exclusive and number == 0):
        bound = "more than 0" if minimum_exclusive else "from 0"
        raise LayoutError(path, f"must be {bound} to 100 (% of the canvas)")
    return number


def _color(value: Any, path: str) -> str:
    if not isinstance(value, str) or not COLOR.match(value):
        raise LayoutError(path, "must be a colour like #1a2b3c")
    return value.lower()


def _optional_id(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise LayoutError(path, "must be an image id (a whole number) or null")
    return value
