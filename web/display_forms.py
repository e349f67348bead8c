"""The operator's forms for screens, branding and messages, checked field by field.

A bad field is a ``BadParameter`` naming it (a 400 page that says what to fix); nothing
unchecked reaches a query.
"""

from __future__ import annotations

import re

from twisted.web.iweb import IRequest

from web.display_queries import Branding, ScreenSettings
from web.errors import BadParameter
from web.params import CONTROL_CHARACTERS
from web.sign_in import form_field

MAX_NAME = 100
MAX_LOCATIONS = 20
MAX_LOCATION = 100
MAX_MESSAGES = 100
MAX_MESSAGE = 300
MAX_IMAGE_ID = 2**62
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_HOLD, MAX_HOLD = 0.1, 600.0


def _text(request: IRequest, name: str, max_length: int) -> str:
    value = form_field(request, name, max_length)
    if CONTROL_CHARACTERS.search(value):
        raise BadParameter(name, "must not contain control characters")
    return value.strip()


def _optional_id(request: IRequest, name: str) -> int | None:
    raw = _text(request, name, 20)
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_IMAGE_ID:
        raise BadParameter(name, "must be an id (a whole number) or empty")
    return int(raw)


def parse_screen_form(request: IRequest) -> ScreenSettings:
    name = _text(request, "name", MAX_NAME)
    if not name:
        raise BadParameter("name", "give the screen a name, like Finish big screen")
    locations_text = _text(request, "locations", MAX_LOCATIONS * (MAX_LOCATION + 2))
    locations = tuple(dict.fromkeys(part.strip() for part in locations_text.split(",") if part.strip()))
    if len(locations) > MAX_LOCATIONS or any(len(location) > MAX_LOCATION for location in locations):
        raise BadParameter("locations", f"at most {MAX_LOCATIONS} locations of {MAX_LOCATION} characters each")
    hold_text = _text(request, "hold_seconds", 10) or "3"
    try:
        hold = round(float(hold_text), 2)
    except ValueError:
        raise BadParameter("hold_seconds", "must be a number of seconds, like 3 or 0.5") from None
    if not MIN_HOLD <= hold <= MAX_HOLD:
        raise BadParameter("hold_seconds", f"must be from {MIN_HOLD} to {MAX_HOLD:g} seconds")
    time_kind = _text(request, "time_kind", 4) or "gun"
    if time_kind not in ("gun", "chip"):
        raise BadParameter("time_kind", "must be gun or chip")
    grid_text = _text(request, "grid_threshold", 5) or "8"
    if not grid_text.isdigit() or not 2 <= int(grid_text) <= 1000:
        raise BadParameter("grid_threshold", "must be a whole number from 2 to 1000")
    return ScreenSettings(name=name, locations=locations or None, hold_seconds=hold, time_kind=time_kind,
                          sound=form_field(request, "sound", 3) == "on", grid_threshold=int(grid_text),
                          layout_id=_optional_id(request, "layout_id"))


def _color(request: IRequest, name: str, default: str) -> str:
    value = _text(request, name, 7) or default
    if not COLOR.match(value):
        raise BadParameter(name, "must be a colour like #1a2b3c")
    return value.lower()


def parse_branding_form(request: IRequest, current: Branding) -> Branding:
    sponsors_text = _text(request, "sponsor_image_ids", 2000)
    sponsors = []
    for part in (piece.strip() for piece in sponsors_text.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_IMAGE_ID:
            raise BadParameter("sponsor_image_ids", "must be image ids separated by commas")
        sponsors.append(int(part))
    if len(sponsors) > 50:
        raise BadParameter("sponsor_image_ids", "at most 50 sponsor images")
    return Branding(display_name=_text(request, "display_name", 120) or None,
                    primary_color=_color(request, "primary_color", current.primary_color),
                    accent_color=_color(request, "accent_color", current.accent_color),
                    background_color=_color(request, "background_color", current.background_color),
                    text_color=_color(request, "text_color", current.text_color),
                    logo_image_id=_optional_id(request, "logo_image_id"), sponsor_image_ids=tuple(sponsors))


def parse_messages_form(request: IRequest) -> list[str]:
    """One message a line; blank lines dropped."""
    text = form_field(request, "messages", MAX_MESSAGES * (MAX_MESSAGE + 2))
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > MAX_MESSAGES:
        raise BadParameter("messages", f"at most {MAX_MESSAGES} messages")
    for line in lines:
        if len(line) > MAX_MESSAGE:
            raise BadParameter("messages", f"each message at most {MAX_MESSAGE} characters")
        if CONTROL_CHARACTERS.search(line):
            raise BadParameter("messages", "must not contain control characters")
    return lines
