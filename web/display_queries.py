"""The SQL of finish screens, event branding and live messages.

Same rules as ``web.queries``: parameters only, failures become ``DatabaseUnavailable``,
and whatever an operator names is looked up within the viewer's ``Scope`` (another
partner's screen is simply not found). A public screen code is looked up on its own: it is
the unguessable link an operator chose to put on a screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chronotrack.storage.database import Database
from chronotrack.display.layouts import image_ids
from web import designer_queries
from web.queries import Scope, _rows

DEFAULT_BRANDING = {"primary_color": "#0b5fff", "accent_color": "#ffcc00", "background_color": "#0a0f1e",
                    "text_color": "#ffffff"}
MAX_SCREENS_LISTED = 200


@dataclass(frozen=True)
class Screen:
    id: int
    partner_id: int
    event_id: int
    name: str
    public_code: str
    locations: tuple[str, ...] | None  # None: the event's finish location
    hold_seconds: float
    time_kind: str
    sound: bool
    grid_threshold: int
    layout_id: int | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "event_id": self.event_id, "name": self.name, "code": self.public_code,
                "locations": list(self.locations) if self.locations else None,
                "hold_seconds": self.hold_seconds, "time_kind": self.time_kind, "sound": self.sound,
                "grid_threshold": self.grid_threshold, "layout_id": self.layout_id,
                "url": f"/screen/{self.public_code}"}


@dataclass(frozen=True)
class ScreenSettings:
    """What an operator sets on a screen (checked by ``web.display_forms``)."""

    name: str
    locations: tuple[str, ...] | None
    hold_seconds: float
    time_kind: str
    sound: bool
    grid_threshold: int
    layout_id: int | None


_SCREEN_SELECT = """
    SELECT id, timing_partner_id, timing_event_id, name, public_code, locations, hold_seconds, time_kind, sound,
           grid_threshold, layout_id, updated_at
    FROM display_screens
"""


def _screen(row: tuple) -> Screen:
    values = list(row)
    values[5] = tuple(values[5]) if values[5] else None
    values[6] = float(values[6]) if isinstance(values[6], Decimal) else values[6]
    return Screen(*values)


async def screens(database: Database, scope: Scope, event_id: int | None = None) -> list[Screen]:
    extra, params = (["timing_event_id = %s"], [event_id]) if event_id is not None else ([], [])
    where, params = scope.where("timing_partner_id", "timing_event_id", extra, params)
    rows = await _rows(database, f"{_SCREEN_SELECT} {where} ORDER BY timing_event_id DESC, name LIMIT %s",
                       [*params, MAX_SCREENS_LISTED])
    return [_screen(row) for row in rows]


async def screen_in_scope(database: Database, scope: Scope, screen_id: int) -> Screen | None:
    where, params = scope.where("timing_partner_id", "timing_event_id", ["id = %s"], [screen_id])
    rows = await _rows(database, f"{_SCREEN_SELECT} {where}", params)
    return _screen(rows[0]) if rows else None


async def screen_by_code(database: Database, code: str) -> Screen | None:
    rows = await _rows(database, f"{_SCREEN_SELECT} WHERE public_code = %s", (code,))
    return _screen(rows[0]) if rows else None


def _settings_params(settings: ScreenSettings) -> list[Any]:
    return [settings.name, list(settings.locations) if settings.locations else None, settings.hold_seconds,
            settings.time_kind, settings.sound, settings.grid_threshold, settings.layout_id]


async def add_screen(database: Database, scope: Scope, event_id: int, settings: ScreenSettings) -> Screen | None:
    """A new screen of an event in ``scope``; None when the event is not (or the name is taken: see caller)."""
    conditions, params = scope.conditions("e.timing_partner_id", "e.id")
    narrowed = "".join(f" AND {condition}" for condition in conditions)
    rows = await _rows(database, f"""
        INSERT INTO display_screens (timing_partner_id, timing_event_id, name, locations, hold_seconds, time_kind,
                                     sound, grid_threshold, layout_id)
        SELECT e.timing_partner_id, e.id, %s, %s::text[], %s, %s, %s, %s, %s FROM timing_events e
        WHERE e.id = %s{narrowed}
        ON CONFLICT (timing_event_id, name) DO NOTHING
        RETURNING id""", [*_settings_params(settings), event_id, *params])
    return await screen_in_scope(database, scope, rows[0][0]) if rows else None


async def screen_name_taken(database: Database, event_id: int, name: str, except_id: int | None = None) -> bool:
    rows = await _rows(database, """
        SELECT EXISTS (SELECT 1 FROM display_screens WHERE timing_event_id = %s AND name = %s
                       AND id IS DISTINCT FROM %s)""", (event_id, name, except_id))
    return bool(rows[0][0])


async def update_screen(database: Database, scope: Scope, screen_id: int, settings: ScreenSettings) -> bool:
    where, params = scope.where("timing_partner_id", "timing_event_id", ["id = %s"], [screen_id])
    rows = await _rows(database, f"""
        UPDATE display_screens SET name = %s, locations = %s::text[], hold_seconds = %s, time_kind = %s, sound = %s,
               grid_threshold = %s, layout_id = %s, updated_at = clock_timestamp()
        {where} RETURNING id""", [*_settings_params(settings), *params])
    return bool(rows)


async def existing_screens(database: Database, screen_ids: list[int]) -> set[int]:
    """Which of these screens still exist (another web process may have deleted one)."""
    rows = await _rows(database, "SELECT id FROM display_screens WHERE id = ANY(%s::bigint[])", (screen_ids,))
    return {row[0] for row in rows}


async def delete_screen(database: Database, scope: Scope, screen_id: int) -> bool:
    where, params = scope.where("timing_partner_id", "timing_event_id", ["id = %s"], [screen_id])
    rows = await _rows(database, f"DELETE FROM display_screens {where} RETURNING id", params)
    return bool(rows)


# Branding


@dataclass(frozen=True)
class Branding:
    display_name: str | None
    primary_color: str
    accent_color: str
    background_color: str
    text_color: str
    logo_image_id: int | None
    sponsor_image_ids: tuple[int, ...]


def default_branding() -> Branding:
    return Branding(None, logo_image_id=None, sponsor_image_ids=(), **DEFAULT_BRANDING)


async def branding(database: Database, event_id: int, partner_id: int) -> Branding:
    rows = await _rows(database, """
        SELECT display_name, primary_color, accent_color, background_color, text_color, logo_image_id,
               sponsor_image_ids
        FROM event_branding WHERE timing_event_id = %s AND timing_partner_id = %s""", (event_id, partner_id))
    if not rows:
        return default_branding()
    values = list(rows[0])
    values[6] = tuple(values[6] or ())
    return Branding(*values)


async def save_branding(database: Database, scope: Scope, event_id: int, chosen: Branding) -> bool:
    conditions, params = scope.conditions("e.timing_partner_id", "e.id")
    narrowed = "".join(f" AND {condition}" for condition in conditions)
    rows = await _rows(database, f"""
        INSERT INTO event_branding AS b (timing_event_id, timing_partner_id, display_name, primary_color, accent_color,
                                         background_color, text_color, logo_image_id, sponsor_image_ids)
        SELECT e.id, e.timing_partner_id, %s, %s, %s, %s, %s, %s, %s::bigint[] FROM timing_events e
        WHERE e.id = %s{narrowed}
        ON CONFLICT (timing_event_id) DO UPDATE SET
            display_name = EXCLUDED.display_name, primary_color = EXCLUDED.primary_color,
            accent_color = EXCLUDED.accent_color, background_color = EXCLUDED.background_color,
            text_color = EXCLUDED.text_color, logo_image_id = EXCLUDED.logo_image_id,
            sponsor_image_ids = EXCLUDED.sponsor_image_ids, updated_at = clock_timestamp()
        RETURNING b.timing_event_id""",
                       [chosen.display_name, chosen.primary_color, chosen.accent_color, chosen.background_color,
                        chosen.text_color, chosen.logo_image_id, list(chosen.sponsor_image_ids), event_id, *params])
    return bool(rows)


async def image_urls(database: Database, event_id: int, partner_id: int, wanted: list[int]) -> dict[int, str]:
    """``/images/<sha256>.<ext>`` of the event's own images among ``wanted`` (the designer's store)."""
    if not wanted:
        return {}
    found = await designer_queries.images_by_id(database, Scope(frozenset([partner_id]), event_id), event_id,
                                                set(wanted))
    return {image_id: image.url for image_id, image in found.items()}


# Messages


async def messages(database: Database, event_id: int, partner_id: int) -> tuple[list[str], datetime | None]:
    """The event's messages in order, and when they last changed (for the screens' ETag)."""
    rows = await _rows(database, """
        SELECT message, max(updated_at) OVER () FROM event_messages
        WHERE timing_event_id = %s AND timing_partner_id = %s ORDER BY position""", (event_id, partner_id))
    return [row[0] for row in rows], (rows[0][1] if rows else None)


async def replace_messages(database: Database, scope: Scope, event_id: int, texts: list[str]) -> bool:
    """Replace an event's messages in one statement; False when the event is not in ``scope``."""
    conditions, params = scope.conditions("e.timing_partner_id", "e.id")
    narrowed = "".join(f" AND {condition}" for condition in conditions)
    rows = await _rows(database, f"""
        WITH event AS (SELECT e.id, e.timing_partner_id FROM timing_events e WHERE e.id = %s{narrowed}),
             gone AS (DELETE FROM event_messages m USING event WHERE m.timing_event_id = event.id),
             added AS (INSERT INTO event_messages (timing_event_id, timing_partner_id, position, message)
                       SELECT event.id, event.timing_partner_id, texts.position - 1, texts.message
                       FROM event, unnest(%s::text[]) WITH ORDINALITY AS texts (message, position))
        SELECT id FROM event""", [event_id, *params, texts])
    return bool(rows)


async def layout(database: Database, layout_id: int, partner_id: int, event_id: int) -> dict[str, Any] | None:
    """The designer's layout for a screen, with ``images`` mapping the image ids it uses to their
    URLs (as ``GET /api/layouts/<id>`` gives it), when it belongs to the screen's partner and event;
    else None (the built-in panel)."""
    scope = Scope(frozenset([partner_id]), event_id)
    stored = await designer_queries.layout(database, scope, layout_id)
    if stored is None:
        return None
    images = await designer_queries.images_by_id(database, scope, event_id, image_ids(stored.layout))
    return stored.to_json(images)["layout"]
