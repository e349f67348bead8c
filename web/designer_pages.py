"""The display designer: its page, the layouts JSON API, and a full-screen preview of a layout.

A mixin of ``DisplayApp`` on the same Klein app (one error hook answers for every route).
Layouts belong to an event of the viewer's partner; a layout of another partner is not
found (404). A saved layout has passed ``chronotrack.display.layouts.validate_layout`` and
uses only its own event's images. Saving is optimistic: an update names the
``updated_at`` it started from, and gets 409 when someone saved in between (unless it says
``overwrite``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.display.layouts import MAX_LAYOUT_BYTES, MAX_NAME_LENGTH, LayoutError, image_ids, validate_layout
from chronotrack.storage.database import Database
from web import designer_queries, queries
from web.designer_queries import StoredLayout
from web.api_changes import read_json_object
from web.errors import BadParameter, NotFound
from web.event_choice import chosen_event
from web.operator_pages import MAX_ID, OperatorPages
from web.params import CONTROL_CHARACTERS, text_param

log = Logger()

app = OperatorPages.app

MAX_BODY_BYTES = MAX_LAYOUT_BYTES + 4096  # the layout plus its name and guard


class Conflict(Exception):
    """A save that would undo someone else's (409)."""


def sample_runner() -> dict[str, Any]:
    """The runner the designer previews with before anyone has finished (the display contract's shape)."""
    return {"read_id": None, "bib": "1234", "name": "Alex Sample-Runner", "first_name": "Alex",
            "last_name": "Sample-Runner", "known": True, "gender": "F", "age": 34, "division": "F30-34",
            "city": "Springfield", "team": "Harbour Striders", "location": "finish", "place": 7,
            "gender_place": 3, "division_place": 1, "time_kind": "gun", "time_s": 2537.42,
            "time_text": "0:42:17.42", "clock_time": "09:12:17"}


class DesignerPages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` and ``ImagePages`` provide the plumbing."""

    database: Callable[[], Database]
    _render: Callable[..., bytes]
    _json: Callable[[IRequest, dict[str, Any]], bytes]

    # Reading a request

    @staticmethod
    def _json_body(request: IRequest) -> dict[str, Any]:
        return read_json_object(request, MAX_BODY_BYTES,
                                BadParameter("layout", f"must be at most {MAX_LAYOUT_BYTES // 1024} KB of JSON"))

    @staticmethod
    def _name(body: dict[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadParameter("name", "give the layout a name")
        name = name.strip()
        if len(name) > MAX_NAME_LENGTH or CONTROL_CHARACTERS.search(name):
            raise BadParameter("name", f"must be at most {MAX_NAME_LENGTH} characters, without control characters")
        return name

    async def _checked_layout(self, database: Database, scope: queries.Scope, event_id: int,
                              body: dict[str, Any]) -> tuple[dict[str, Any], dict[int, Any]]:
        """The validated layout, and its images (which must all be the event's own)."""
        try:
            layout = validate_layout(body.get("layout"))
        except LayoutError as error:
            raise BadParameter(error.path if error.path.startswith("layout") else "layout." + error.path,
                               error.message) from None
        wanted = image_ids(layout)
        found = await designer_queries.images_by_id(database, scope, event_id, wanted)
        missing = sorted(wanted - set(found))
        if missing:
            raise BadParameter("layout.images", f"image {missing[0]} is not one of this event's images")
        return layout, found

    async def _layout_images(self, database: Database, scope: queries.Scope,
                             stored: StoredLayout) -> dict[int, Any]:
        return await designer_queries.images_by_id(database, scope, stored.event_id, image_ids(stored.layout))

    async def _owned_layout(self, database: Database, scope: queries.Scope, layout_id: int) -> StoredLayout:
        stored = await designer_queries.layout(database, scope, layout_id) if layout_id <= MAX_ID else None
        if stored is None:
            raise NotFound("no such layout")
        return stored

    # The JSON API

    @app.route("/api/events/<int:event_id>/layouts", methods=["GET"])
    async def api_event_layouts(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        await self._scoped_event(database, viewer, event_id)  # type: ignore[attr-defined]
        layouts = await designer_queries.event_layouts(database, viewer.scope, event_id)
        return self._json(request, {"success": True, "layouts": [stored.summary() for stored in layouts]})

    @app.route("/api/events/<int:event_id>/layouts", methods=["POST"])
    async def api_create_layout(self, request: IRequest, event_id: int) -> bytes:
        """A new layout; a taken name is 409 unless ``overwrite`` is true (then that layout is replaced)."""
        database = self.database()
        viewer = await self._api_changer(request, database)  # type: ignore[attr-defined]
        body = self._json_body(request)
        name = self._name(body)
        await self._scoped_event(database, viewer, event_id)  # type: ignore[attr-defined]
        layout, images = await self._checked_layout(database, viewer.scope, event_id, body)
        stored = await designer_queries.create_layout(database, viewer.scope, event_id, name, layout)
        if stored is None:
            existing = await designer_queries.layout_named(database, viewer.scope, event_id, name)
            if existing is None:
                raise NotFound("no such event")
            if body.get("overwrite") is not True:
                return self._conflict(request, f"a layout named {name!r} exists in this event", existing)
            stored = await designer_queries.update_layout(database, viewer.scope, existing.id, name, layout, None)
            if stored is None:
                raise NotFound("no such layout")
        log.info("layout {layout} ({name}) of event {event} saved by {who}", layout=stored.id, name=name,
                 event=event_id, who=viewer.email or "open mode")
        request.setResponseCode(201)
        return self._json(request, {"success": True, "layout": stored.to_json(images)})

    @app.route("/api/layouts/<int:layout_id>", methods=["GET"])
    async def api_layout(self, request: IRequest, layout_id: int) -> bytes:
        """A layout; with ``?display=<code>`` a public display's screen (no sign-in) gets its own event's."""
        database = self.database()
        slug = text_param(request, "display", 100)
        if slug is not None:
            event = await self._public_event(database, slug)  # type: ignore[attr-defined]
            scope = queries.Scope(frozenset([event.partner_id]), event.id)
        else:
            scope = (await self._reader(request, database)).scope  # type: ignore[attr-defined]
        stored = await self._owned_layout(database, scope, layout_id)
        images = await self._layout_images(database, scope, stored)
        return self._json(request, {"success": True, "layout": stored.to_json(images)})

    @app.route("/api/layouts/<int:layout_id>", methods=["PUT"])
    async def api_update_layout(self, request: IRequest, layout_id: int) -> bytes:
        """Save over a layout: ``updated_at`` (as it was read) must still hold, or ``overwrite`` be true."""
        database = self.database()
        viewer = await self._api_changer(request, database)  # type: ignore[attr-defined]
        body = self._json_body(request)
        name = self._name(body)
        current = await self._owned_layout(database, viewer.scope, layout_id)
        expected = None
        if body.get("overwrite") is not True:
            raw = body.get("updated_at")
            try:
                expected = datetime.fromisoformat(raw) if isinstance(raw, str) else None
            except ValueError:
                expected = None
            if expected is None or expected.utcoffset() is None:
                raise BadParameter("updated_at", "send the updated_at the layout was read with, or overwrite: true")
        layout, images = await self._checked_layout(database, viewer.scope, current.event_id, body)
        if name != current.name:
            taken = await designer_queries.layout_named(database, viewer.scope, current.event_id, name)
            if taken is not None:
                return self._conflict(request, f"a layout named {name!r} exists in this event", taken)
        stored = await designer_queries.update_layout(database, viewer.scope, layout_id, name, layout, expected)
        if stored is None:
            latest = await self._owned_layout(database, viewer.scope, layout_id)
            return self._conflict(request, "someone saved this layout since you loaded it", latest)
        log.info("layout {layout} ({name}) saved by {who}", layout=layout_id, name=name,
                 who=viewer.email or "open mode")
        return self._json(request, {"success": True, "layout": stored.to_json(images)})

    @app.route("/api/layouts/<int:layout_id>", methods=["DELETE"])
    async def api_delete_layout(self, request: IRequest, layout_id: int) -> bytes:
        database = self.database()
        viewer = await self._api_changer(request, database)  # type: ignore[attr-defined]
        if layout_id > MAX_ID or not await designer_queries.delete_layout(database, viewer.scope, layout_id):
            raise NotFound("no such layout")
        log.info("layout {layout} deleted by {who}", layout=layout_id, who=viewer.email or "open mode")
        return self._json(request, {"success": True, "deleted": layout_id})

    def _conflict(self, request: IRequest, message: str, current: StoredLayout) -> bytes:
        request.setResponseCode(409)
        return self._json(request, {"success": False, "error": message, "current": current.summary()})

    # Pages

    @app.route("/designer", methods=["GET"])
    async def designer_page(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        events = await queries.events(database, viewer.scope)
        event = await chosen_event(request, database, viewer.scope)
        return self._render(request, "designer.html", active="designer", title="Display designer", events=events,
                            event=event, may_change=viewer.may_change,
                            sample_runner=json.dumps(sample_runner()),
                            latest_runner=json.dumps(await self._latest_runner(database, event)))

    @app.route("/layouts/<int:layout_id>/preview", methods=["GET"])
    async def layout_preview(self, request: IRequest, layout_id: int) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        stored = await self._owned_layout(database, viewer.scope, layout_id)
        images = await self._layout_images(database, viewer.scope, stored)
        event = await self._scoped_event(database, viewer, stored.event_id)  # type: ignore[attr-defined]
        runner = await self._latest_runner(database, event) or sample_runner()
        branding = {"display_name": event.title, "primary_color": None, "accent_color": None,
                    "background_color": None, "text_color": None, "logo_url": None, "sponsor_urls": []}
        return self._render(request, "layout_preview.html", title=f"Preview: {stored.name}", stored=stored,
                            layout_json=json.dumps(stored.to_json(images)["layout"]), runner_json=json.dumps(runner),
                            branding_json=json.dumps(branding))

    async def _latest_runner(self, database: Database, event: queries.Event | None) -> dict[str, Any] | None:
        """The event's latest finisher as a display runner (by gun time), or None before the first finish."""
        if event is None:
            return None
        try:
            results = await self._event_results(database, event)  # type: ignore[attr-defined]
        except Exception:
            log.failure("could not read the results for the designer preview of event {event}", event=event.id)
            return None
        rows = results.rows()
        if not rows:
            return None
        row = max(rows, key=lambda row: (row.gun_time_s, row.place))
        first, _, last = row.name.partition(" ")
        place_by = getattr(results.settings, "place_by", "gun")
        time_s, time_text = (row.chip_time_s, row.chip_time) if place_by == "chip" else (row.gun_time_s, row.gun_time)
        return {"read_id": None, "bib": row.bib, "name": row.name, "first_name": first, "last_name": last,
                "known": row.in_roster, "gender": row.gender, "age": row.age, "division": row.division,
                "city": row.city, "team": row.team, "location": results.race.finish_location,
                "place": row.place, "gender_place": row.gender_place, "division_place": row.division_place,
                "time_kind": place_by, "time_s": time_s, "time_text": time_text or "", "clock_time": ""}
