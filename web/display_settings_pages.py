"""The operator's page for an event's finish screens, its branding and its live messages.

A mixin of ``DisplayPages`` (so of ``DisplayApp``) on the same Klein app. Every change goes
through ``_changer`` like every operator form (same-site form, a viewer who may change
things, the session's CSRF token) and is looked up within the viewer's scope, so another
partner's screen or event is simply not found (404). A changed or deleted screen ends its
open streams in this process at once (a changed one reconnects with its new settings).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.storage.database import Database
from web import designer_queries, display_queries, queries
from web.display_forms import parse_branding_form, parse_messages_form, parse_screen_form
from web.errors import BadParameter, NotFound
from web.event_choice import chosen_event
from web.operator_pages import MAX_ID, OperatorPages
from web.queries import Scope
from web.sse import EventStream

log = Logger()

app = OperatorPages.app


class ScreenSettingsPages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    # Provided by DisplayApp / OperatorPages / DisplayPages
    messages: tuple[str, ...]
    database: Callable[[], Database]
    _render: Callable[..., bytes]
    _redirect: Callable[[IRequest, bytes | str], bytes]
    _screen_streams: dict[int, set[EventStream]] | None = None
    _dressing: dict[int, tuple[float, dict[str, Any], bytes]] | None = None

    # The operator's page: screens, branding, messages

    @app.route("/screens", methods=["GET"])
    async def screens_page(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        events = await queries.events(database, viewer.scope)
        event = await chosen_event(request, database, viewer.scope)
        context: dict[str, Any] = {"events": events, "event": event, "screens": [], "branding": None,
                                   "event_messages": [], "may_change": viewer.may_change,
                                   "layouts": [], "images": []}
        if event is not None:
            context["screens"] = await display_queries.screens(database, viewer.scope, event.id)
            context["branding"] = await display_queries.branding(database, event.id, event.partner_id)
            context["event_messages"], _ = await display_queries.messages(database, event.id, event.partner_id)
            context["default_messages"] = self.messages
            context["layouts"] = await designer_queries.event_layouts(database, viewer.scope, event.id)
            context["images"] = await designer_queries.event_images(database, viewer.scope, event.id)
        return self._render(request, "screens.html", title="Screens", active="screens", **context)

    async def _changed_event(self, request: IRequest, database: Database, event_id: int):
        viewer = await self._changer(request, database)  # type: ignore[attr-defined]
        event = await queries.event_in_scope(database, viewer.scope, event_id) if event_id <= MAX_ID else None
        if event is None:
            raise NotFound("no such event")
        return viewer, event

    @staticmethod
    async def _check_event_owns(database: Database, partner_id: int, event_id: int, layout_id: int | None = None,
                                logo_image_id: int | None = None) -> None:
        """A screen's layout and an event's logo must be the event's own (the designer's rows)."""
        scope = Scope(frozenset([partner_id]), event_id)
        if layout_id is not None and await designer_queries.layout(database, scope, layout_id) is None:
            raise BadParameter("layout_id", "is not one of this event's layouts")
        if logo_image_id is not None and not await designer_queries.images_by_id(database, scope, event_id,
                                                                                 {logo_image_id}):
            raise BadParameter("logo_image_id", "is not one of this event's images")

    @app.route("/events/<int:event_id>/screens", methods=["POST"])
    async def add_screen(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer, event = await self._changed_event(request, database, event_id)
        settings = parse_screen_form(request)
        await self._check_event_owns(database, event.partner_id, event.id, layout_id=settings.layout_id)
        screen = await display_queries.add_screen(database, viewer.scope, event.id, settings)
        if screen is None:
            raise BadParameter("name", f"this event already has a screen named {settings.name!r}")
        log.info("screen {screen} added to event {event} by {who}", screen=screen.id, event=event.id,
                 who=viewer.email or "open mode")
        return self._redirect(request, f"/screens?event={event.id}#screen-{screen.id}")

    @app.route("/screens/<int:screen_id>", methods=["POST"])
    async def update_screen(self, request: IRequest, screen_id: int) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)  # type: ignore[attr-defined]
        screen = await display_queries.screen_in_scope(database, viewer.scope, screen_id) \
            if screen_id <= MAX_ID else None
        if screen is None:
            raise NotFound("no such screen")
        settings = parse_screen_form(request)
        await self._check_event_owns(database, screen.partner_id, screen.event_id, layout_id=settings.layout_id)
        if await display_queries.screen_name_taken(database, screen.event_id, settings.name, screen.id):
            raise BadParameter("name", f"this event already has a screen named {settings.name!r}")
        await display_queries.update_screen(database, viewer.scope, screen.id, settings)
        self._end_screen_streams(screen.id)  # open screens reconnect and pick the new settings up
        log.info("screen {screen} changed by {who}", screen=screen.id, who=viewer.email or "open mode")
        return self._redirect(request, f"/screens?event={screen.event_id}#screen-{screen.id}")

    @app.route("/screens/<int:screen_id>/delete", methods=["POST"])
    async def delete_screen(self, request: IRequest, screen_id: int) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)  # type: ignore[attr-defined]
        screen = await display_queries.screen_in_scope(database, viewer.scope, screen_id) \
            if screen_id <= MAX_ID else None
        if screen is None or not await display_queries.delete_screen(database, viewer.scope, screen.id):
            raise NotFound("no such screen")
        self._end_screen_streams(screen.id)
        log.info("screen {screen} deleted by {who}", screen=screen.id, who=viewer.email or "open mode")
        return self._redirect(request, f"/screens?event={screen.event_id}")

    def _end_screen_streams(self, screen_id: int) -> None:
        for stream in list((self._screen_streams or {}).pop(screen_id, ())):
            stream.close(finish=True)

    @app.route("/events/<int:event_id>/branding", methods=["POST"])
    async def save_branding(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer, event = await self._changed_event(request, database, event_id)
        current = await display_queries.branding(database, event.id, event.partner_id)
        branding = parse_branding_form(request, current)
        await self._check_event_owns(database, event.partner_id, event.id, logo_image_id=branding.logo_image_id)
        await display_queries.save_branding(database, viewer.scope, event.id, branding)
        (self._dressing or {}).pop(event.id, None)
        log.info("branding of event {event} changed by {who}", event=event.id, who=viewer.email or "open mode")
        return self._redirect(request, f"/screens?event={event.id}#branding")

    @app.route("/events/<int:event_id>/messages", methods=["POST"])
    async def save_messages(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer, event = await self._changed_event(request, database, event_id)
        texts = parse_messages_form(request)
        await display_queries.replace_messages(database, viewer.scope, event.id, texts)
        (self._dressing or {}).pop(event.id, None)
        log.info("messages of event {event} changed by {who} ({count} messages)", event=event.id,
                 who=viewer.email or "open mode", count=len(texts))
        return self._redirect(request, f"/screens?event={event.id}#messages")
