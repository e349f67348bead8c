"""The finish line's screens: the live display, operator-configured finish screens, the announcer.

A mixin of ``DisplayApp`` on the same Klein app (one error hook answers for every route):

- ``/`` and ``/display/<slug>``: the live feed of every crossing (moved here from ``web.app``);
- ``/screens``: the operator's page for an event's screens, branding and live messages
  (``web.display_settings_pages``, a mixin of this one);
- ``/screen/<code>``: a finish screen by its public code (no sign-in: the code is the link the
  operator put on the screen), its stream ``/screen/<code>/stream`` of runner objects built
  once per read by ``web.display_feed``, and its messages ``/api/screens/<code>/messages``
  (polled with an ETag, so an edit reaches open screens without a reload);
- ``/announcer`` (signed-in, the current event or ``?event=``) and ``/screen/<code>/announcer``
  (public): the runners about to arrive, from ``/api/announcer``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, Iterable

from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.reads import NEW_LOCATION_TAG
from chronotrack.storage.database import Database
from web import display_queries, queries
from web.display_feed import EventFeed, ScreenFeeds, ScreenView
from web.display_queries import Branding, Screen
from web.display_settings_pages import ScreenSettingsPages
from web.errors import DatabaseUnavailable, NotFound
from web.event_choice import chosen_event
from web.live import LiveReads
from web.operator_pages import DISPLAY_SLUG, MAX_ID, OperatorPages
from web.params import parse_bounded_int, text_param
from web.queries import DisplayRead, Event, Scope
from web.sse import EventStream, parse_last_event_id
from web.stream_guard import StreamRight

log = Logger()

app = OperatorPages.app

DISPLAY_RECENT = 12
SCREEN_RECENT = 10
ANNOUNCER_LIMIT = 30
REPEAT_WINDOW_SECONDS = 60
SCREEN_CODE_LENGTH = 100
SCREEN_RECHECK_SECONDS = 60.0
DRESSING_SECONDS = 1.0


def distinct_crossings(reads: Iterable[DisplayRead]) -> list[DisplayRead]:
    """Drop repeat reads of one chip on one mat in one lap within a minute.

    Antennas read a chip many times as it crosses; the screen shows the crossing once, at
    its first read (display.js applies the same rule to live reads). Takes and returns
    reads newest first.
    """
    kept_at: dict[tuple, list[datetime]] = {}
    crossings = []
    for read in reversed(list(reads)):
        if read.bib == NEW_LOCATION_TAG:
            continue  # a controller announcing a mat, not a runner
        key = (read.bib, read.location, read.lap)
        times = kept_at.setdefault(key, [])
        if not read.gun_time and any(abs((read.timestamp - kept).total_seconds()) < REPEAT_WINDOW_SECONDS
                                     for kept in times):
            continue
        times.append(read.timestamp)
        crossings.append(read)
    crossings.reverse()
    return crossings


def stream_url_for(path: bytes) -> str:
    """The stream a display page listens to: its public display's, or the viewer's own."""
    if path.startswith(b"/display/"):
        slug = path[len(b"/display/"):].decode("ascii", "replace")
        if DISPLAY_SLUG.match(slug):
            return "/stream?display=" + slug
    return "/stream"


def branding_json(branding: Branding, event: Event, urls: dict[int, str]) -> dict[str, Any]:
    """Branding as renderers take it (the contract): image ids resolved to URLs."""
    return {"display_name": branding.display_name or event.title, "primary_color": branding.primary_color,
            "accent_color": branding.accent_color, "background_color": branding.background_color,
            "text_color": branding.text_color,
            "logo_url": urls.get(branding.logo_image_id) if branding.logo_image_id else None,
            "sponsor_urls": [urls[image] for image in branding.sponsor_image_ids if image in urls]}


def etag_of(payload: Any) -> bytes:
    return b'"' + hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32].encode() + b'"'


class DisplayPages(ScreenSettingsPages):
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    # Provided by DisplayApp / OperatorPages / ResultsPages
    reactor: Any
    messages: tuple[str, ...]
    database: Callable[[], Database]
    live_reads: Callable[..., LiveReads]
    keepalive_interval: float
    _render: Callable[..., bytes]
    _redirect: Callable[[IRequest, bytes | str], bytes]
    _json: Callable[[IRequest, dict[str, Any]], bytes]

    _screen_feeds: ScreenFeeds | None = None
    _screen_streams: dict[int, set[EventStream]] | None = None
    _dressing: dict[int, tuple[float, dict[str, Any], bytes]] | None = None
    _screen_watch: LoopingCall | None = None

    # The live feed of every crossing

    @app.route("/", methods=["GET"])
    async def display(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        return await self._display_page(request, database, viewer.scope, "/stream", "Live race display")

    @app.route("/display/<string:slug>", methods=["GET"])
    async def public_display(self, request: IRequest, slug: str) -> bytes:
        """The big screen of one event its partner made public: no sign-in, that event's reads only."""
        database = self.database()
        event = await self._public_event(database, slug)  # type: ignore[attr-defined]
        return await self._display_page(request, database, Scope(frozenset([event.partner_id]), event.id),
                                        stream_url_for(request.path), event.title)

    async def _display_page(self, request: IRequest, database: Database, scope: Scope, stream_url: str,
                            title: str) -> bytes:
        reads = distinct_crossings(await queries.recent_reads(database, scope, DISPLAY_RECENT * 3))[:DISPLAY_RECENT]
        last_id = reads[0].id if reads else await queries.highest_read_id(database)
        return self._render(request, "display.html", reads=reads[1:], hero=reads[0] if reads else None,
                            last_id=last_id, messages=self.messages, available=True, stream_url=stream_url,
                            title=title)

    def display_unavailable(self, request: IRequest) -> bytes:
        """The page a screen opened while the database is down shows: it retries by itself."""
        if request.path.startswith((b"/screen/", b"/announcer")):
            return self._render(request, "screen_unavailable.html", title="Finish screen")
        return self._render(request, "display.html", reads=[], hero=None, last_id="", messages=self.messages,
                            available=False, stream_url=stream_url_for(request.path), title="Live race display")

    # Feeds of finish screens

    @property
    def screen_feeds(self) -> ScreenFeeds:
        if self._screen_feeds is None:
            self._screen_feeds = ScreenFeeds(self._event_results)  # type: ignore[attr-defined]
        return self._screen_feeds

    async def _feed(self, database: Database, event: Event) -> EventFeed:
        live = self.live_reads(database)
        await live.when_ready()
        return await self.screen_feeds.feed(database, live, event)

    async def _screen(self, database: Database, code: str) -> tuple[Screen, Event]:
        if not DISPLAY_SLUG.match(code):
            raise NotFound("no such screen")
        screen = await display_queries.screen_by_code(database, code)
        event = (await queries.event_in_scope(database, Scope(frozenset([screen.partner_id])), screen.event_id)
                 if screen is not None else None)
        if screen is None or event is None:
            raise NotFound("no such screen")
        return screen, event

    async def _event_messages(self, database: Database, event: Event) -> list[str]:
        own, _ = await display_queries.messages(database, event.id, event.partner_id)
        return own or list(self.messages)

    async def _branding(self, database: Database, event: Event) -> dict[str, Any]:
        chosen = await display_queries.branding(database, event.id, event.partner_id)
        wanted = [image for image in (chosen.logo_image_id, *chosen.sponsor_image_ids) if image]
        urls = await display_queries.image_urls(database, event.id, event.partner_id, wanted)
        return branding_json(chosen, event, urls)

    @app.route("/screen/<string:code>", methods=["GET"])
    async def screen_page(self, request: IRequest, code: str) -> bytes:
        database = self.database()
        screen, event = await self._screen(database, code)
        feed = await self._feed(database, event)
        view = ScreenView(feed, screen.time_kind, screen.locations)
        config = {"hold_ms": int(screen.hold_seconds * 1000), "grid_threshold": screen.grid_threshold,
                  "sound": screen.sound, "time_kind": screen.time_kind, "layout_id": screen.layout_id,
                  "stream_url": f"/screen/{code}/stream", "messages_url": f"/api/screens/{code}/messages",
                  "last_id": feed.last_read_id, "recent": view.recent(SCREEN_RECENT),
                  "branding": await self._branding(database, event),
                  "layout": (await display_queries.layout(database, screen.layout_id, event.partner_id, event.id)
                             if screen.layout_id else None)}
        return self._render(request, "screen.html", title=config["branding"]["display_name"], screen=screen,
                            event=event, config=config, messages=await self._event_messages(database, event),
                            announcer_url=f"/screen/{code}/announcer")

    @app.route("/screen/<string:code>/stream", methods=["GET"])
    async def screen_stream(self, request: IRequest, code: str) -> None:
        from_query = parse_bounded_int("last_event_id", text_param(request, "last_event_id"), None, 0, MAX_ID)
        from_header = parse_last_event_id(request.getHeader(b"Last-Event-ID"))
        resume_from = from_header if from_header is not None else from_query
        database = self.database()
        screen, event = await self._screen(database, code)
        feed = await self._feed(database, event)
        view = ScreenView(feed, screen.time_kind, screen.locations)
        stream = EventStream(request, view, self.reactor, view.missed, resume_from,  # type: ignore[arg-type]
                             self.keepalive_interval)
        if self._screen_streams is None:
            self._screen_streams = {}
        self._screen_streams.setdefault(screen.id, set()).add(stream)
        self._watch_screens()
        self._streams.add(stream, StreamRight())  # type: ignore[attr-defined]
        try:
            await stream.run()
        except CancelledError:
            pass  # the screen went away (a reload, a phone asleep): nothing to answer
        finally:
            self._streams.remove(stream)  # type: ignore[attr-defined]
            self._screen_streams.get(screen.id, set()).discard(stream)

    def _watch_screens(self) -> None:
        """Now and then, end the streams of screens deleted elsewhere (another web process)."""
        if self._screen_watch is None:
            self._screen_watch = LoopingCall(lambda: ensureDeferred(self.recheck_screens()).addErrback(
                lambda failure: log.failure("re-checking open screens failed", failure)))
            self._screen_watch.clock = self.reactor
        if not self._screen_watch.running:
            self._screen_watch.start(SCREEN_RECHECK_SECONDS, now=False)

    async def recheck_screens(self) -> int:
        """End the open streams of screens that no longer exist; how many screens that was."""
        open_ids = [screen_id for screen_id, streams in (self._screen_streams or {}).items() if streams]
        if not open_ids:
            if self._screen_watch is not None and self._screen_watch.running:
                self._screen_watch.stop()
            return 0
        try:
            existing = await display_queries.existing_screens(self.database(), open_ids)
        except DatabaseUnavailable:
            return 0  # nothing known: keep them; the next check decides
        gone = [screen_id for screen_id in open_ids if screen_id not in existing]
        for screen_id in gone:
            self._end_screen_streams(screen_id)  # type: ignore[attr-defined]
        return len(gone)

    @app.route("/api/screens/<string:code>/messages", methods=["GET"])
    async def screen_messages(self, request: IRequest, code: str) -> bytes:
        """The messages and branding of a screen's event; 304 while unchanged (the screens poll this)."""
        database = self.database()
        _, event = await self._screen(database, code)
        payload, etag = await self._screen_dressing(database, event)
        if request.getHeader(b"If-None-Match") == etag:
            request.setResponseCode(304)
            request.setHeader(b"ETag", etag)
            return b""
        body = self._json(request, payload)
        request.setHeader(b"ETag", etag)
        request.setHeader(b"Cache-Control", b"no-cache")
        return body

    async def _screen_dressing(self, database: Database, event: Event) -> tuple[dict[str, Any], bytes]:
        """An event's messages and branding with their ETag, fetched at most once per
        ``DRESSING_SECONDS`` however many screens poll (an edit still shows within seconds)."""
        if self._dressing is None:
            self._dressing = {}
        now = self.reactor.seconds()
        kept = self._dressing.get(event.id)
        if kept is not None and now - kept[0] < DRESSING_SECONDS:
            return kept[1], kept[2]
        payload = {"success": True, "messages": await self._event_messages(database, event),
                   "branding": await self._branding(database, event)}
        etag = etag_of(payload)
        if len(self._dressing) > 100:
            self._dressing.clear()
        self._dressing[event.id] = (now, payload, etag)
        return payload, etag

    # The announcer

    @app.route("/announcer", methods=["GET"])
    async def announcer_page(self, request: IRequest) -> bytes:
        database = self.database()
        event = await self._viewer_event(request, database)
        query = f"event={event.id}" if event is not None else ""
        return self._render(request, "announcer.html", title="Announcer", active="announcer", event=event,
                            api_url="/api/announcer?" + query if event is not None else "")

    @app.route("/screen/<string:code>/announcer", methods=["GET"])
    async def public_announcer_page(self, request: IRequest, code: str) -> bytes:
        database = self.database()
        _, event = await self._screen(database, code)
        return self._render(request, "announcer.html", title="Announcer", active="announcer", event=event,
                            api_url=f"/api/announcer?screen={code}")

    async def _viewer_event(self, request: IRequest, database: Database, required: bool = False) -> Event | None:
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        event = await chosen_event(request, database, viewer.scope)
        if event is None and required:
            raise NotFound("no event yet: the announcer shows runners once a timing session has started")
        return event

    @app.route("/api/announcer", methods=["GET"])
    async def api_announcer(self, request: IRequest) -> bytes:
        code = text_param(request, "screen", SCREEN_CODE_LENGTH)
        database = self.database()
        if code is not None:
            _, event = await self._screen(database, code)
        else:
            event = await self._viewer_event(request, database, required=True)
        feed = await self._feed(database, event)
        etag = b'"%d-%d"' % (event.id, feed.projection.version)
        if request.getHeader(b"If-None-Match") == etag:
            request.setResponseCode(304)
            request.setHeader(b"ETag", etag)
            return b""
        approaching = feed.approaching(ANNOUNCER_LIMIT)
        body = self._json(request, {"success": True, "event": {"id": event.id, "name": event.title},
                                    "finish_location": feed.finish_location, "runners": approaching})
        request.setHeader(b"ETag", etag)
        request.setHeader(b"Cache-Control", b"no-cache")
        return body
