"""The race display: one class-based Klein app with pages, JSON feeds and the live stream.

Dependencies come in through ``__init__`` (reactor, where the database is, the messages,
how to ask the collector), so the same app runs inside the collector process, in
``twistd chronotrack-display``, and in tests. One error hook turns every failure into a
clean answer: 503 when the database is not there, 400 naming a bad parameter, never a
traceback.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from chronotrack.config import DEFAULT_MESSAGES
from chronotrack.storage.database import Database
from web import queries
from web.access import Access
from web.brand_pages import BrandPages
from web.charts import bar_chart
from web.errors import (BadCredentials, BadParameter, DatabaseUnavailable, Forbidden, NotFound, NotSignedIn,
                        TooManyAttempts)
from web.designer_pages import DesignerPages
from web.export_pages import ExportPages
from web.image_pages import ImagePages
from web.live import LiveReads
from web.operator_pages import MAX_ID, OperatorPages
from web.params import int_param, parse_bounded_int, text_param
from web.queries import DisplayRead, Scope
from web.display_pages import DisplayPages
from web.results_pages import ResultsPages
from web.roster_source_pages import RosterSourcePages
from web.scoped_live import ScopedLive
from web.sign_in import SignIn, login_url, retry_after_header
from web.sse import KEEPALIVE_SECONDS, CATCH_UP_LIMIT, EventStream, parse_last_event_id
from web.stream_guard import StreamGuard, StreamRight

log = Logger()

CollectorStatus = Callable[[], Deferred]

PAGE_SIZE = 50
MAX_LIMIT = 1000

STATIC_FILES = {
    "display.js": b"text/javascript; charset=utf-8",
    "display.css": b"text/css; charset=utf-8",
    "site.css": b"text/css; charset=utf-8",
    "results.js": b"text/javascript; charset=utf-8",
    "layout.js": b"text/javascript; charset=utf-8",
    "designer.js": b"text/javascript; charset=utf-8",
    "designer_brand.js": b"text/javascript; charset=utf-8",
    "designer.css": b"text/css; charset=utf-8",
    "layout_preview.js": b"text/javascript; charset=utf-8",
    "roster_sources.js": b"text/javascript; charset=utf-8",
    "roster_sources.css": b"text/css; charset=utf-8",
    "screen.js": b"text/javascript; charset=utf-8",
    "screen.css": b"text/css; charset=utf-8",
    "announcer.js": b"text/javascript; charset=utf-8",
    "screens.js": b"text/javascript; charset=utf-8",
}
PAGE_TITLES = {b"/reads": "Reads", b"/sessions": "Sessions", b"/status": "Status", b"/roster": "Roster",
               b"/login": "Sign in", b"/results": "Results", b"/screens": "Screens"}


def template_directories() -> list[Path]:
    """``web/templates`` in an installed copy, ``templates/`` beside ``web/`` in the source tree."""
    here = Path(__file__).resolve().parent
    candidates = [here / "templates", here.parent / "templates"]
    return [path for path in candidates if path.is_dir()]


def default_messages() -> tuple[str, ...]:
    return tuple(part.strip() for part in DEFAULT_MESSAGES.split("|") if part.strip())


def _formatter(pattern: str) -> Callable[[str | datetime | None], str]:
    """A Jinja filter printing a datetime (or its ISO text) with ``pattern``; other text as is."""

    def format_value(value: str | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return value.strftime(pattern)

    return format_value


_format_timestamp = _formatter("%Y-%m-%d %H:%M:%S")
_format_time_of_day = _formatter("%H:%M")


class DisplayApp(DisplayPages, ResultsPages, BrandPages, RosterSourcePages, OperatorPages, ExportPages,
                 DesignerPages, ImagePages):
    """Pages, JSON feeds and the live stream; the operator's pages come from ``OperatorPages``,
    the results (page, JSON, CSV, settings) from ``ResultsPages``, the downloads from ``ExportPages``."""

    app = OperatorPages.app  # one Klein app for both, so one error hook answers for every route

    def __init__(self, reactor: IReactorTime, database_source: Any,
                 messages: tuple[str, ...] = (), collector_status: CollectorStatus | None = None,
                 keepalive_interval: float = KEEPALIVE_SECONDS, access: Access | None = None,
                 sign_in: SignIn | None = None) -> None:
        """``database_source.database`` is read on every request (None while starting)."""
        self.reactor = reactor
        self.database_source = database_source
        self.messages = tuple(messages) or default_messages()
        self.collector_status = collector_status
        self.keepalive_interval = keepalive_interval
        self.access = access or Access(reactor)
        self.sign_in = sign_in or SignIn(reactor)
        self.templates = Environment(loader=FileSystemLoader([str(p) for p in template_directories()]),
                                     autoescape=True, undefined=StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["timestamp"] = _format_timestamp
        self.templates.filters["time_of_day"] = _format_time_of_day
        self._live: LiveReads | None = None
        self._streams = StreamGuard(reactor, self.database)

    # Plumbing

    def resource(self):
        return self.app.resource()

    def database(self) -> Database:
        """The database, if a query can be sent now; else DatabaseUnavailable (a 503)."""
        database = getattr(self.database_source, "database", None)
        if database is None or not getattr(self.database_source, "schema_ready", True) or not database.connected:
            raise DatabaseUnavailable("database not connected")
        return database

    def live_reads(self, database: Database | None = None) -> LiveReads:
        """The one LiveReads of the current database (a new Database gets a new one)."""
        database = database or self.database()
        if self._live is None or self._live.database is not database:
            if self._live is not None:
                self._live.stop()
            self._live = LiveReads(database, self.reactor)
            self._live.start()
        return self._live

    def database_ready(self, database: Database) -> Deferred:
        """At start-up: start the live feed and say whether pages are open or need a sign-in."""
        self.live_reads(database)
        self.warm_results(database)
        announced = ensureDeferred(self.access.announce(database))
        announced.addErrback(lambda failure: log.failure("could not tell whether operator accounts exist", failure))
        return announced

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def close_streams(self) -> None:
        """End every open stream cleanly (on shut-down); browsers reconnect and resume."""
        self._streams.end_all()
        self.stop_roster_pulls()
        if self._screen_feeds is not None:
            self._screen_feeds.stop_all()
        if self._screen_watch is not None and self._screen_watch.running:
            self._screen_watch.stop()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self, request: IRequest, template: str, **context: Any) -> bytes:
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")  # the security headers: web.headers, on every response
        context.setdefault("active", "")
        context.setdefault("viewer", getattr(request, "_chronotrack_viewer", None))
        return self.templates.get_template(template).render(**context).encode("utf-8")

    @staticmethod
    def _json(request: IRequest, payload: dict[str, Any]) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(payload).encode("utf-8")

    @staticmethod
    def _redirect(request: IRequest, location: bytes | str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"Location", location.encode("ascii") if isinstance(location, str) else location)
        request.setHeader(b"Cache-Control", b"no-store")
        return b""

    @staticmethod
    def _wants_json(request: IRequest) -> bool:
        return request.path.startswith(b"/api/") or request.path == b"/stream"

    async def _collector(self) -> dict[str, Any] | None:
        if self.collector_status is None:
            return None
        try:
            return await self.collector_status()
        except Exception:
            log.failure("asking the collector for its status failed")
            return None

    # The one error hook

    @app.handle_errors(Exception)
    def handle_error(self, request: IRequest, failure) -> bytes:
        wants_json = self._wants_json(request)
        if failure.check(DatabaseUnavailable):
            request.setResponseCode(503)
            request.setHeader(b"Retry-After", b"5")
            if wants_json:
                return self._json(request, {"success": False, "error": "database unavailable",
                                            "connected": False})
            if request.path == b"/" or request.path.startswith((b"/display/", b"/screen/", b"/announcer")):
                return self.display_unavailable(request)
            return self._render(request, "unavailable.html", title=PAGE_TITLES.get(request.path, "Race display"),
                                active=request.path.decode("ascii", "replace").strip("/"))
        if failure.check(NotSignedIn):
            if wants_json:
                request.setResponseCode(401)
                request.setHeader(b"WWW-Authenticate", b'Bearer realm="chronotrack"')
                return self._json(request, {"success": False,
                                            "error": "sign in, or send an API token (Authorization: Bearer ...)"})
            return self._redirect(request, login_url(request.uri.decode("ascii", "replace")))
        if failure.check(BadCredentials):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="chronotrack", error="invalid_token"')
            return self._json(request, {"success": False, "error": "invalid or revoked API token"})
        if failure.check(TooManyAttempts):
            request.setResponseCode(429)
            request.setHeader(b"Retry-After", retry_after_header(failure.value.retry_after))
            if wants_json:
                return self._json(request, {"success": False, "error": str(failure.value)})
            return self._render(request, "error.html", title="Too many attempts", code=429,
                                message=str(failure.value))
        if failure.check(Forbidden, NotFound):
            code, title = (403, "Forbidden") if failure.check(Forbidden) else (404, "Not Found")
            request.setResponseCode(code)
            if wants_json:
                return self._json(request, {"success": False, "error": str(failure.value)})
            return self._render(request, "error.html", title=title, code=code, message=str(failure.value))
        if failure.check(BadParameter):
            error = failure.value
            request.setResponseCode(400)
            if wants_json:
                return self._json(request, {"success": False, "error": str(error), "parameter": error.name})
            return self._render(request, "error.html", title="Bad request", code=400, message=str(error))
        if failure.check(HTTPException):
            error = failure.value
            request.setResponseCode(error.code)
            if error.code == 405 and getattr(error, "valid_methods", None):
                request.setHeader(b"Allow", ", ".join(error.valid_methods).encode("ascii"))
            if wants_json:
                return self._json(request, {"success": False, "error": error.name.lower()})
            return self._render(request, "error.html", title=error.name, code=error.code, message=error.name)
        log.failure("request for {path} failed", failure, path=request.path.decode("ascii", "replace"))
        request.setResponseCode(500)
        if wants_json:
            return self._json(request, {"success": False, "error": "internal error"})
        return self._render(request, "error.html", title="Error", code=500,
                            message="Something went wrong; the details are in the server log.")

    # Pages

    # Pages (the live display and the finish screens: web.display_pages)

    @app.route("/reads", methods=["GET"])
    async def reads_page(self, request: IRequest) -> bytes:
        limit = int_param(request, "limit", PAGE_SIZE, 1, MAX_LIMIT)
        before = int_param(request, "before", None, 1, MAX_ID)
        location = text_param(request, "location")
        bib = text_param(request, "bib")
        database = self.database()
        scope = (await self._reader(request, database)).scope
        reads = await queries.recent_reads(database, scope, limit + 1, location, bib, before)
        has_older = len(reads) > limit
        reads = reads[:limit]
        return self._render(request, "reads.html", active="reads", reads=reads, limit=limit,
                            location=location or "", bib=bib or "", before=before,
                            locations=await queries.location_names(database, scope),
                            older=reads[-1].id if has_older else None)

    @app.route("/sessions", methods=["GET"])
    async def sessions_page(self, request: IRequest) -> bytes:
        database = self.database()
        scope = (await self._reader(request, database)).scope
        return self._render(request, "sessions.html", active="sessions",
                            sessions=await queries.sessions(database, scope),
                            status=await queries.database_status(database, scope),
                            events=await queries.events(database, scope))

    @app.route("/status", methods=["GET"])
    async def status_page(self, request: IRequest) -> bytes:
        database = self.database()
        scope = (await self._reader(request, database)).scope
        collector = await self._collector()
        figures = await queries.stats(database, scope)
        per_minute = figures["reads_per_minute"]
        chart = bar_chart([(_format_time_of_day(minute["minute"]), minute["reads"]) for minute in per_minute])
        largest_location = max((location["reads"] for location in figures["locations"]), default=0)
        return self._render(
            request, "status.html", active="status", collector=collector,
            collector_configured=self.collector_status is not None,
            collector_url=getattr(self.collector_status, "url", None), hub_wide=scope.everything,
            database_status=await queries.database_status(database, scope), stats=figures, chart=chart,
            largest_location=largest_location, open_streams=self.open_streams,
            controllers=await queries.open_controller_connections(database, scope),
            reads_last_hour=sum(minute["reads"] for minute in per_minute))

    @app.route("/static/<string:name>", methods=["GET"])
    def static(self, request: IRequest, name: str) -> bytes:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            request.setResponseCode(404)
            return b"not found"
        for directory in template_directories():
            path = directory / name
            if path.is_file():
                request.setHeader(b"Content-Type", content_type)
                request.setHeader(b"Cache-Control", b"no-cache")
                return path.read_bytes()
        request.setResponseCode(404)
        return b"not found"

    # JSON feeds

    @app.route("/api/timing/database-status", methods=["GET"])
    async def api_database_status(self, request: IRequest) -> bytes:
        database = self.database()
        scope = (await self._reader(request, database)).scope
        status = await queries.database_status(database, scope)
        return self._json(request, {"success": True, **status})

    @app.route("/api/timing/stats", methods=["GET"])
    async def api_stats(self, request: IRequest) -> bytes:
        database = self.database()
        scope = (await self._reader(request, database)).scope
        figures = await queries.stats(database, scope)
        return self._json(request, {"success": True, **figures})

    @app.route("/api/timing/recent-reads", methods=["GET"])
    async def api_recent_reads(self, request: IRequest) -> bytes:
        limit = int_param(request, "limit", PAGE_SIZE, 1, MAX_LIMIT)
        before = int_param(request, "before_id", None, 1, MAX_ID)
        location = text_param(request, "location")
        bib = text_param(request, "bib")
        database = self.database()
        scope = (await self._reader(request, database)).scope
        reads = await queries.recent_reads(database, scope, limit, location, bib, before)
        return self._json(request, {"success": True, "count": len(reads), "reads": [r.to_json() for r in reads]})

    @app.route("/api/timing/sessions", methods=["GET"])
    async def api_sessions(self, request: IRequest) -> bytes:
        database = self.database()
        scope = (await self._reader(request, database)).scope
        return self._json(request, {"success": True, "sessions": await queries.sessions(database, scope)})

    # The live stream

    @app.route("/stream", methods=["GET"])
    async def stream(self, request: IRequest) -> None:
        # The header wins: on an automatic reconnect the browser sends the newest id there,
        # while the URL still carries the id the page started from.
        from_query = parse_bounded_int("last_event_id", text_param(request, "last_event_id"), None, 0, MAX_ID)
        from_header = parse_last_event_id(request.getHeader(b"Last-Event-ID"))
        resume_from = from_header if from_header is not None else from_query
        display_slug = text_param(request, "display")
        database = self.database()
        if display_slug is not None:  # a public display: anyone, that event only
            event = await self._public_event(database, display_slug)
            scope, right = Scope(frozenset([event.partner_id]), event.id), StreamRight(public_event=event.id)
        else:
            viewer = await self._reader(request, database)
            scope = viewer.scope
            right = StreamRight(web_session=viewer.web_session_id, api_token=viewer.api_token_id)
        live = self.live_reads(database)
        await live.when_ready()

        async def catch_up(after_id: int) -> list[DisplayRead]:
            return await queries.missed_reads(database, scope, after_id, CATCH_UP_LIMIT)

        stream = EventStream(request, ScopedLive(live, scope), self.reactor, catch_up, resume_from,
                             self.keepalive_interval)
        self._streams.add(stream, right)
        try:
            await stream.run()
        finally:
            self._streams.remove(stream)

