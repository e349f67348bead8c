"""The SQL of event images and display layouts, every query narrowed to the viewer's scope.

Like ``web.queries``: parameters only, and any driver failure becomes DatabaseUnavailable
(a 503). A row of another partner is simply not found, so a caller cannot leak or change it.
A public display's scope (one partner, one event) works too: a screen may read its layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2 import Binary

from chronotrack.display.images import CleanImage
from chronotrack.storage.database import Database
from web.queries import Scope, _rows

MAX_IMAGES_LISTED = 500
MAX_LAYOUTS_LISTED = 500


@dataclass(frozen=True)
class StoredImage:
    id: int
    event_id: int
    name: str
    content_type: str
    width: int
    height: int
    sha256: str

    @property
    def url(self) -> str:
        return image_url(self.sha256, self.content_type)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "url": self.url, "width": self.width, "height": self.height,
                "content_type": self.content_type}


def image_url(sha256: str, content_type: str) -> str:
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[content_type]
    return f"/images/{sha256}.{extension}"


_IMAGE_COLUMNS = "id, timing_event_id, original_name, content_type, width, height, sha256"


async def store_image(database: Database, scope: Scope, event_id: int, name: str,
                      image: CleanImage) -> StoredImage | None:
    """The image stored in the event (the same bytes again: the row already there); None if not the viewer's event."""
    where, params = scope.where("timing_partner_id", "id", extra=["id = %s"], extra_params=[event_id])
    rows = await _rows(database, f"""
        WITH event AS (SELECT id, timing_partner_id FROM timing_events {where}),
        added AS (
            INSERT INTO event_images (timing_partner_id, timing_event_id, original_name, content_type, width, height,
                                      byte_size, sha256, data)
            SELECT timing_partner_id, id, %s, %s, %s, %s, %s, %s, %s FROM event
            ON CONFLICT (timing_event_id, sha256) DO NOTHING
            RETURNING {_IMAGE_COLUMNS})
        SELECT {_IMAGE_COLUMNS} FROM added
        UNION ALL
        SELECT {_IMAGE_COLUMNS} FROM event_images
        WHERE timing_event_id = (SELECT id FROM event) AND sha256 = %s AND NOT EXISTS (SELECT 1 FROM added)""",
                       [*params, name, image.content_type, image.width, image.height, image.byte_size, image.sha256,
                        Binary(image.data), image.sha256])
    return StoredImage(*rows[0]) if rows else None


async def event_images(database: Database, scope: Scope, event_id: int) -> list[StoredImage]:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["timing_event_id = %s"],
                                extra_params=[event_id])
    rows = await _rows(database, f"SELECT {_IMAGE_COLUMNS} FROM event_images {where} ORDER BY id LIMIT %s",
                       [*params, MAX_IMAGES_LISTED])
    return [StoredImage(*row) for row in rows]


async def images_by_id(database: Database, scope: Scope, event_id: int, ids: set[int]) -> dict[int, StoredImage]:
    """The event's images among ``ids`` (those of other events or partners are left out)."""
    if not ids:
        return {}
    where, params = scope.where("timing_partner_id", "timing_event_id",
                                extra=["timing_event_id = %s", "id = ANY(%s::bigint[])"],
                                extra_params=[event_id, sorted(ids)])
    rows = await _rows(database, f"SELECT {_IMAGE_COLUMNS} FROM event_images {where}", params)
    return {row[0]: StoredImage(*row) for row in rows}


async def image_bytes(database: Database, sha256: str, content_type: str) -> bytes | None:
    """The bytes of ``/images/<sha256>.<ext>``: content-addressed, so whoever has the address may fetch it."""
    rows = await _rows(database, "SELECT data FROM event_images WHERE sha256 = %s AND content_type = %s LIMIT 1",
                       (sha256, content_type))
    return bytes(rows[0][0]) if rows else None


# Layouts


@dataclass(frozen=True)
class StoredLayout:
    id: int
    event_id: int
    name: str
    layout: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "event_id": self.event_id,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}

    def to_json(self, images: dict[int, StoredImage] | None = None) -> dict[str, Any]:
        """The layout as the API gives it; ``layout.images`` maps the image ids it uses to their URLs."""
        layout = dict(self.layout)
        layout["images"] = {str(image_id): image.url for image_id, image in (images or {}).items()}
        return {**self.summary(), "layout": layout}


_LAYOUT_COLUMNS = "id, timing_event_id, name, layout, created_at, updated_at"


def _layout(row: tuple) -> StoredLayout:
    layout = row[3] if isinstance(row[3], dict) else json.loads(row[3])
    return StoredLayout(row[0], row[1], row[2], layout, row[4], row[5])


async def event_layouts(database: Database, scope: Scope, event_id: int) -> list[StoredLayout]:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["timing_event_id = %s"],
                                extra_params=[event_id])
    rows = await _rows(database, f"SELECT {_LAYOUT_COLUMNS} FROM display_layouts {where} ORDER BY name LIMIT %s",
                       [*params, MAX_LAYOUTS_LISTED])
    return [_layout(row) for row in rows]


async def layout(database: Database, scope: Scope, layout_id: int) -> StoredLayout | None:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["id = %s"], extra_params=[layout_id])
    rows = await _rows(database, f"SELECT {_LAYOUT_COLUMNS} FROM display_layouts {where}", params)
    return _layout(rows[0]) if rows else None


async def layout_named(database: Database, scope: Scope, event_id: int, name: str) -> StoredLayout | None:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["timing_event_id = %s", "name = %s"],
                                extra_params=[event_id, name])
    rows = await _rows(database, f"SELECT {_LAYOUT_COLUMNS} FROM display_layouts {where}", params)
    return _layout(rows[0]) if rows else None


async def create_layout(database: Database, scope: Scope, event_id: int, name: str,
                        content: dict[str, Any]) -> StoredLayout | None:
    """The new layout; None when the event is not the viewer's or the name is taken in it."""
    where, params = scope.where("timing_partner_id", "id", extra=["id = %s"], extra_params=[event_id])
    rows = await _rows(database, f"""
        INSERT INTO display_layouts (timing_partner_id, timing_event_id, name, layout)
        SELECT timing_partner_id, id, %s, %s::jsonb FROM timing_events {where}
        ON CONFLICT (timing_event_id, name) DO NOTHING
        RETURNING {_LAYOUT_COLUMNS}""", [name, json.dumps(content), *params])
    return _layout(rows[0]) if rows else None


async def update_layout(database: Database, scope: Scope, layout_id: int, name: str, content: dict[str, Any],
                        expected_updated_at: datetime | None) -> StoredLayout | None:
    """The layout changed, if it is the viewer's and (given ``expected_updated_at``) nobody saved it since."""
    extra = ["id = %s"]
    extra_params: list[Any] = [layout_id]
    if expected_updated_at is not None:
        extra.append("updated_at = %s")
        extra_params.append(expected_updated_at)
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=extra, extra_params=extra_params)
    rows = await _rows(database, f"""
        UPDATE display_layouts SET name = %s, layout = %s::jsonb, updated_at = clock_timestamp() {where}
        RETURNING {_LAYOUT_COLUMNS}""", [name, json.dumps(content), *params])
    return _layout(rows[0]) if rows else None


async def delete_layout(database: Database, scope: Scope, layout_id: int) -> bool:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["id = %s"], extra_params=[layout_id])
    rows = await _rows(database, f"DELETE FROM display_layouts {where} RETURNING id", params)
    return bool(rows)
