"""The operator's side of the race display: signing in and out, and the pages that change things.

A mixin of ``DisplayApp`` whose routes sit on the same Klein app, so the one error hook
answers for them too. Every change goes through ``_changer``: the form must come from our
own page (Origin / Sec-Fetch-Site), the viewer must be allowed to change things, and a
signed-in form must carry its session's CSRF token. Everything changed is looked up within
the viewer's scope, so another partner's session or event is simply not found (404).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from klein import Klein
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.accounts.passwords import MAX_PASSWORD_LENGTH
from chronotrack.storage.database import Database
from web import queries
from web.access import Access, Viewer
from web.api_changes import check_api_csrf
from web.errors import BadCredentials, BadParameter, Forbidden, NotFound, NotSignedIn
from web.params import int_param, parse_bounded_int, text_param
from web.queries import Event
from web.roster import parse_roster
from web.sign_in import (MAX_EMAIL_LENGTH, MAX_NEXT_LENGTH, SignIn, check_csrf, form_field, refuse_cross_site,
                         safe_next)
from web.stream_guard import StreamGuard

log = Logger()

MAX_ID = 2**62
MAX_ROSTER_BYTES = 5 * 1024 * 1024
ROSTER_PAGE_LIMIT = 1000
DISPLAY_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class OperatorPages:
    app = Klein()

    # Provided by DisplayApp
    access: Access
    sign_in: SignIn
    database: Callable[[], Database]
    _render: Callable[..., bytes]
    _redirect: Callable[[IRequest, bytes | str], bytes]
    _streams: StreamGuard

    # Who may do what

    async def _reader(self, request: IRequest, database: Database) -> Viewer:
        """Whoever may look at pages and feeds (open mode, an operator, a token); else NotSignedIn."""
        viewer = await self.access.viewer(request, database)
        if not viewer.may_read:
            raise NotSignedIn()
        return viewer

    async def _changer(self, request: IRequest, database: Database) -> Viewer:
        """Whoever may change things, having checked the form came from our own page."""
        viewer = await self._may_change(request, database)
        check_csrf(request, viewer)
        return viewer

    async def _api_changer(self, request: IRequest, database: Database) -> Viewer:
        """The same for a JSON API change: a page's script sends the CSRF token in X-CSRF-Token."""
        viewer = await self._may_change(request, database)
        check_api_csrf(request, viewer)
        return viewer

    async def _may_change(self, request: IRequest, database: Database) -> Viewer:
        """A signed-in viewer allowed to change things, asking from a page of this site (CSRF not yet checked)."""
        refuse_cross_site(request)
        viewer = await self._reader(request, database)
        if not viewer.may_change:
            raise Forbidden("An API token can read, not change anything; sign in to do that.")
        return viewer

    async def _public_event(self, database: Database, slug: str) -> Event:
        """The event of a public display link, or NotFound (also when its partner switched it off)."""
        event = await queries.public_event(database, slug) if DISPLAY_SLUG.match(slug) else None
        if event is None:
            raise NotFound("no such public display")
        return event

    async def _event_param(self, database: Database, viewer: Viewer, value: int | None) -> int:
        """The event a roster page is about: the one asked for (if the viewer's), else the default one."""
        if value is None:
            return await queries.roster_event_id(database, viewer.scope)
        if await queries.event_in_scope(database, viewer.scope, value) is None:
            raise NotFound("no such event")
        return value

    # Signing in and out

    @app.route("/login", methods=["GET"])
    async def login_page(self, request: IRequest) -> bytes:
        database = self.database()
        next_path = safe_next(text_param(request, "next", MAX_NEXT_LENGTH))
        viewer = await self.access.viewer(request, database)
        if viewer.signed_in:
            return self._redirect(request, next_path)
        return self._login_form(request, viewer, next_path)

    @app.route("/login", methods=["POST"])
    async def login(self, request: IRequest) -> bytes:
        refuse_cross_site(request)
        self.sign_in.check_login_form_token(request)
        database = self.database()
        next_path = safe_next(form_field(request, "next", MAX_NEXT_LENGTH))
        email = form_field(request, "email", MAX_EMAIL_LENGTH)
        password = form_field(request, "password", MAX_PASSWORD_LENGTH)
        operator = await self.sign_in.authenticate(request, database, email, password)
        try:
            viewer = await self.access.viewer(request, database)
        except BadCredentials:
            viewer = None
        if operator is None:  # 200: the form again, with the reason (browsers log a 4xx page as an error)
            return self._login_form(request, viewer, next_path, email=email,
                                    error="That e-mail address and password do not match an account.")
        await self.sign_in.start_session(request, database, operator, previous=viewer)
        return self._redirect(request, next_path)

    def _login_form(self, request: IRequest, viewer: Viewer | None, next_path: str, email: str = "",
                    error: str | None = None) -> bytes:
        return self._render(request, "login.html", title="Sign in", next_path=next_path, email=email, error=error,
                            login_token=self.sign_in.login_form_token(request),
                            open_mode=viewer is not None and viewer.kind == "open")

    @app.route("/logout", methods=["POST"])
    async def logout(self, request: IRequest) -> bytes:
        refuse_cross_site(request)
        database = self.database()
        viewer = await self.access.viewer(request, database)
        if viewer.signed_in:
            check_csrf(request, viewer)
            await self.sign_in.end_session(request, database, viewer)
            self._streams.end(lambda right: right.web_session == viewer.web_session_id)
        return self._redirect(request, "/login")

    # Changing things

    @app.route("/sessions/<int:session_id>/close", methods=["POST"])
    async def close_session(self, request: IRequest, session_id: int) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)
        closed = await queries.close_session(database, viewer.scope, session_id) if session_id <= MAX_ID else None
        if closed is None:
            raise NotFound("no such session")
        if closed:
            log.info("session {session} closed by {who}", session=session_id, who=viewer.email or "open mode")
        return self._redirect(request, "/sessions")

    @app.route("/events/<int:event_id>/public-display", methods=["POST"])
    async def switch_public_display(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)
        switch = form_field(request, "public", 3)
        if switch not in ("on", "off"):
            raise BadParameter("public", "must be on or off")
        event = (await queries.set_public_display(database, viewer.scope, event_id, switch == "on")
                 if event_id <= MAX_ID else None)
        if event is None:
            raise NotFound("no such event")
        log.info("public display of event {event} switched {switch} by {who}", event=event_id, switch=switch,
                 who=viewer.email or "open mode")
        if not event.public_display:  # screens showing it go dark now, not at their next reload
            self._streams.end(lambda right: right.public_event == event.id)
        return self._redirect(request, "/sessions#events")

    @app.route("/roster", methods=["GET"])
    async def roster_page(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)
        event_id = await self._event_param(database, viewer, int_param(request, "event", None, 1, MAX_ID))
        return await self._roster_response(request, database, viewer, event_id, outcome=None)

    @app.route("/roster", methods=["POST"])
    async def roster_upload(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)
        uploads = request.args.get(b"file")
        if not uploads or not uploads[0].strip():
            raise BadParameter("file", "choose a CSV file to upload")
        if len(uploads[0]) > MAX_ROSTER_BYTES:
            raise BadParameter("file", f"larger than {MAX_ROSTER_BYTES // (1024 * 1024)} MB")
        event_field = form_field(request, "event", 20).strip()
        event_id = await self._event_param(database, viewer,
                                           parse_bounded_int("event", event_field or None, None, 1, MAX_ID))
        parsed = parse_roster(uploads[0])
        imported = await queries.upsert_participants(database, event_id, parsed.participants, viewer.scope)
        log.info("roster upload to event {event}: {imported} runners imported, {rejected} lines rejected",
                 event=event_id, imported=imported, rejected=len(parsed.errors))
        return await self._roster_response(request, database, viewer, event_id,
                                           outcome={"imported": imported, "parsed": parsed})

    async def _roster_response(self, request: IRequest, database: Database, viewer: Viewer, event_id: int,
                               outcome: dict[str, Any] | None) -> bytes:
        search = text_param(request, "q") if outcome is None else None
        runners, total = await queries.participants(database, event_id, search, ROSTER_PAGE_LIMIT, viewer.scope)
        return self._render(request, "roster.html", active="roster", runners=runners, total=total,
                            search=search or "", outcome=outcome, shown_limit=ROSTER_PAGE_LIMIT,
                            roster_size=await queries.participant_count(database, event_id, viewer.scope),
                            events=await queries.events(database, viewer.scope), event_id=event_id)
