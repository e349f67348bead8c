"""Results of an event: the ``/results`` page, ``/api/results``, ``/results.csv`` and the settings form.

A mixin of ``DisplayApp`` on the same Klein app (one error hook answers for every route).
What is shown comes from ``web.results_cache`` (each event's live table kept in the process,
never re-scored per request); which event is shown follows the viewer's scope:

- no ``event`` named: the viewer's newest active session's event (else its newest session's);
- ``?event=<id>``: that event, if it is one of the viewer's partner's (else 404);
- ``?display=<slug>``: the event of a public display its partner switched on, for anyone.

Changing the settings goes through ``_changer`` like every operator form (same-site form,
a viewer who may change things, the session's CSRF token).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable, Generator

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.storage.database import Database
from chronotrack.results import ResultRow, filter_rows, search
from web import compressed, queries, results_queries
from web.access import Viewer
from web.compressed import gzipped, send_gzipped, wants_compressed
from web.errors import BadParameter, NotFound
from web.live import LiveReads
from web.operator_pages import MAX_ID, OperatorPages
from web.params import CONTROL_CHARACTERS, int_param, parse_bounded_int, text_param
from web.queries import Event, Scope
from web.results_cache import DEFAULT_MEMORY_BUDGET, EventResults, ResultsCache
from web.results_queries import StoredSettings
from web.sign_in import form_field

log = Logger()

app = OperatorPages.app

GENDER_PARAM = re.compile(r"^[A-Za-z]{1,20}$")
MAX_SEARCH_LENGTH = 100
MAX_DIVISION_LENGTH = 60
MAX_LOCATION_LENGTH = 100
MAX_DUPLICATE_WINDOW_SECONDS = 86400
PAGE_ROWS = 500  # rows the page shows (a phone, a big race): search or filter for the rest
MAX_RESULTS_LIMIT = 1_000_000
WARM_EVENTS = 4  # events with an active session whose results are built at start-up, newest first
CSV_COLUMNS = ("place", "bib", "name", "gender", "gender_place", "division", "division_place", "gun_time",
               "chip_time", "gun_time_s", "chip_time_s", "age", "team", "city", "state", "flags")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def row_json(row: ResultRow) -> dict[str, Any]:
    return {"place": row.place, "bib": row.bib, "name": row.name, "gender": row.gender,
            "gender_place": row.gender_place, "division": row.division, "division_place": row.division_place,
            "gun_time_s": row.gun_time_s, "chip_time_s": row.chip_time_s, "gun_time": row.gun_time,
            "chip_time": row.chip_time, "age": row.age, "team": row.team, "city": row.city, "state": row.state,
            "in_roster": row.in_roster, "flags": list(row.flags)}


def json_in_steps(payload: dict[str, Any], list_key: str, rows: list[ResultRow],
                  piece: int = 250) -> Generator[None, None, bytes]:
    """``json.dumps({**payload, list_key: [row_json(row) for row in rows]}).encode()``, byte for byte,
    made ``piece`` rows at a time (a generator yielding between pieces: a whole big table in one
    call would hold the reactor for hundreds of milliseconds). ``payload[list_key]`` is ``[]``."""
    head = json.dumps(payload)
    marker = json.dumps({list_key: []})[1:-2]  # '"results": [' : a key, so never inside an (escaped) string
    at = head.index(marker) + len(marker)
    pieces = []
    for start in range(0, len(rows), piece):
        pieces.append(json.dumps([row_json(row) for row in rows[start:start + piece]])[1:-1])
        yield None
    return (head[:at] + ", ".join(pieces) + head[at:]).encode("utf-8")


def clock_text(moment: datetime | None) -> str | None:
    """``2024-05-04 08:00:00.00 UTC``: a gun time as a timer reads it (hundredths, its own offset)."""
    if moment is None:
        return None
    offset = moment.strftime("%z")
    zone = "UTC" if offset in ("+0000", "") else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 10_000:02d} {zone}"


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def results_csv(rows: list[ResultRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        fields = row_json(row)
        fields["flags"] = " ".join(row.flags)
        writer.writerow([csv_cell(fields[column]) for column in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads the names as UTF-8


class ResultsPages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    # Provided by DisplayApp / OperatorPages
    reactor: Any
    database: Callable[[], Database]
    live_reads: Callable[..., LiveReads]
    _render: Callable[..., bytes]
    _redirect: Callable[[IRequest, bytes | str], bytes]
    _json: Callable[[IRequest, dict[str, Any]], bytes]

    _results_cache: ResultsCache | None = None
    results_freshness: float = 0.0  # seconds (--results-freshness): see web/results_cache.py
    results_memory: int = DEFAULT_MEMORY_BUDGET  # bytes (--results-memory-mb)

    @property
    def results_cache(self) -> ResultsCache:
        if self._results_cache is None:
            self._results_cache = ResultsCache(self.reactor, freshness=self.results_freshness,
                                               memory_budget=self.results_memory)
        return self._results_cache

    def configure_results(self, freshness: float, memory_mb: int | None = None) -> None:
        """How long a results answer is served while newer reads wait (0: every change at once),
        and how much memory the kept events' results may take."""
        self.results_freshness = freshness
        if memory_mb is not None:
            self.results_memory = memory_mb << 20
        if self._results_cache is not None:
            self._results_cache.freshness = freshness
            self._results_cache.memory_budget = self.results_memory

    # Which event, and its results

    async def _results_target(self, request: IRequest, database: Database,
                              required: bool = True) -> tuple[Viewer | None, Scope, Event | None, str | None]:
        """(viewer, scope, event, public display slug) for a results request."""
        event_id = int_param(request, "event", None, 1, MAX_ID)
        slug = text_param(request, "display", 100)
        if slug is not None:
            event = await self._public_event(database, slug)  # type: ignore[attr-defined]
            if event_id is not None and event_id != event.id:
                raise NotFound("no such event")
            return None, Scope(frozenset([event.partner_id]), event.id), event, slug
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        if event_id is None:
            event = await results_queries.current_event(database, viewer.scope)
            if event is None and required:
                raise NotFound("no event yet: results appear once a timing session has started")
        else:
            event = await queries.event_in_scope(database, viewer.scope, event_id)
            if event is None:
                raise NotFound("no such event")
        return viewer, viewer.scope, event, None

    def warm_results(self, database: Database) -> Deferred[None]:
        """At start-up, in the background: build the results of the events racing now (an active
        session), newest first, as many as the cache keeps, so the first phone at the finish does
        not wait for a whole event's reads. Failures are logged; requests build as usual."""
        return ensureDeferred(self._warm_results(database))

    async def _warm_results(self, database: Database) -> None:
        try:
            events = await results_queries.active_events(database, WARM_EVENTS)
            for event in events:
                entry = await self._event_results(database, event)
                log.info("results of event {event} ready at start-up ({reads} reads)", event=event.id,
                         reads=entry.read_count)
        except Exception:  # noqa: BLE001 - a warm-up never takes anything down
            log.failure("results warm-up stopped")

    async def _event_results(self, database: Database, event: Event) -> EventResults:
        self.results_cache.use_live(self.live_reads(database))
        await self.live_reads(database).when_ready()  # the feed knows where new reads start before we build
        return await self.results_cache.results(database, event)

    @staticmethod
    def _filters(request: IRequest) -> dict[str, str | None]:
        gender = text_param(request, "gender", 20)
        if gender is not None and not GENDER_PARAM.match(gender):
            raise BadParameter("gender", "must be letters, like M, F or X")
        return {"q": text_param(request, "q", MAX_SEARCH_LENGTH), "gender": gender,
                "division": text_param(request, "division", MAX_DIVISION_LENGTH)}

    @staticmethod
    def _shown(rows: list[ResultRow], filters: dict[str, str | None]) -> list[ResultRow]:
        shown = filter_rows(rows, filters["gender"], filters["division"])
        return search(shown, filters["q"]) if filters["q"] else shown

    def _shown_first(self, results: EventResults, filters: dict[str, str | None],
                     limit: int | None) -> tuple[int, list[ResultRow]]:
        """(how many finishers match, the first ``limit`` of them): unfiltered, only those rows are made."""
        if not any(filters.values()):
            return results.finisher_count(), results.first_rows(limit)
        shown = self._shown(results.rows(), filters)
        return len(shown), shown[:limit]

    @staticmethod
    def _event_json(event: Event, results: EventResults) -> dict[str, Any]:
        race = results.race
        return {"id": event.id, "name": event.title, "key": event.key, "partner": event.partner_name,
                "gun_time": race.gun_time.isoformat() if race.gun_time else None,
                "gun_time_text": clock_text(race.gun_time),
                "finish_location": race.finish_location, "start_location": race.start_location,
                "finishers": results.finisher_count(), "last_read_id": results.as_of_id,
                "settings": results.settings.to_json()}

    @staticmethod
    def _as_of_json(results: EventResults) -> dict[str, Any]:
        """How fresh an answer is: every read the hub had taken in by ``time`` is in it (the newest
        being ``read_id``); newer ones appear within ``freshness_seconds``."""
        made = datetime.fromtimestamp(results.answered_at(), timezone.utc)
        return {"read_id": results.as_of_id, "time": made.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "freshness_seconds": results.freshness}

    async def _all_rows(self, results: EventResults) -> list[ResultRow]:
        """Every row, made a slice at a time when this window has not made them yet."""
        return await results.memo_off_reactor("rows", results.rows_in_steps, self.results_cache.in_steps)

    # Routes

    @app.route("/api/results", methods=["GET"])
    async def api_results(self, request: IRequest) -> bytes:
        """``count`` finishers match; ``results`` holds the first ``limit`` of them (all by default)."""
        filters = self._filters(request)
        limit = int_param(request, "limit", None, 1, MAX_RESULTS_LIMIT)
        database = self.database()
        _, _, event, _ = await self._results_target(request, database)
        results = await self._event_results(database, event)

        def payload(count: int, shown: list[ResultRow]) -> dict[str, Any]:
            return {
                "success": True, "event": self._event_json(event, results), "count": count,
                "filters": filters, "divisions": results.divisions(), "genders": results.genders(),
                "results": [row_json(row) for row in shown], "unknown_tags": results.unknown_tags(),
                "results_as_of": self._as_of_json(results)}

        if filters["q"] is not None:  # searches are many and different: not kept
            await self._all_rows(results)

            def searched() -> Generator[Any, None, bytes]:
                count, shown = self._shown_first(results, filters, limit)
                return (yield from json_in_steps(payload(count, []), "results", shown))

            found = await results.memo_off_reactor(None, searched, self.results_cache.in_steps, keep=False)
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Cache-Control", b"no-store")
            return found

        every_row = any(filters.values()) or limit is None or limit > PAGE_ROWS

        def made() -> Generator[Any, None, tuple[bytes, bytes | None]]:
            """A slice at a time on the reactor (``ResultsCache.in_steps``): the answer's bytes, and
            gzipped (in a worker thread: zlib lets go of the GIL) when big enough to send so."""
            if every_row and not results.has("rows"):  # the window closed since _all_rows: rare
                results.keep("rows", (yield from results.rows_in_steps()))
            count, shown = self._shown_first(results, filters, limit)
            plain = yield from json_in_steps(payload(count, []), "results", shown)
            if len(plain) < compressed.MIN_COMPRESSED_BYTES:
                return plain, None
            zipped: list[bytes] = []
            yield self.results_cache.in_thread(gzipped, plain).addCallback(zipped.append)
            return plain, zipped[0]

        # The same question until the race takes new reads in (at most once per freshness window):
        # the same bytes (a big race's whole table is megabytes of JSON, and phones ask for it
        # every few seconds), made a slice at a time, shared by everyone who asks meanwhile.
        key = ("api body", filters["gender"], filters["division"], limit)
        if every_row and not results.has(key):
            await self._all_rows(results)
        plain, zipped = await results.memo_off_reactor(key, made, self.results_cache.in_steps)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Age", b"%d" % max(0, int(self.results_cache.clock() - results.answered_at())))
        if zipped is not None and wants_compressed(request, plain):
            return send_gzipped(request, zipped)
        return plain

    @app.route("/results.csv", methods=["GET"])
    async def results_csv_download(self, request: IRequest) -> bytes:
        filters = self._filters(request)
        database = self.database()
        _, _, event, _ = await self._results_target(request, database)
        results = await self._event_results(database, event)
        request.setHeader(b"Content-Type", b"text/csv; charset=utf-8")
        request.setHeader(b"Content-Disposition", b'attachment; filename="results-event-%d.csv"' % event.id)
        request.setHeader(b"Cache-Control", b"no-store")
        return results_csv(self._shown(await self._all_rows(results), filters))

    @app.route("/results", methods=["GET"])
    async def results_page(self, request: IRequest) -> bytes:
        filters = self._filters(request)
        database = self.database()
        viewer, scope, event, slug = await self._results_target(request, database, required=False)
        context: dict[str, Any] = {"filters": filters, "display_slug": slug, "event": event, "results": None,
                                   "rows": [], "events": [], "settings_form": None}
        if viewer is not None:
            context["events"] = await queries.events(database, scope)
        if event is not None:
            results = await self._event_results(database, event)
            if any(filters.values()):
                await self._all_rows(results)
            matching, shown = self._shown_first(results, filters, PAGE_ROWS)
            context.update(results=results, rows=shown, matching=matching, page_rows=PAGE_ROWS,
                           divisions=results.divisions(), genders=results.genders(),
                           event_json=self._event_json(event, results))
            if viewer is not None and viewer.may_change:
                context["settings_form"] = {"settings": results.settings,
                                            "locations": await results_queries.event_locations(database, event)}
        query = [("limit", str(PAGE_ROWS))]
        if event is not None and slug is None:
            query.append(("event", str(event.id)))
        if slug is not None:
            query.append(("display", slug))
        context["api_query"] = "&".join(f"{name}={value}" for name, value in query)
        context["stream_url"] = f"/stream?display={slug}" if slug is not None else "/stream"
        return self._render(request, "results.html", active="results", title="Results", **context)

    @app.route("/results/settings", methods=["POST"])
    async def results_settings(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)  # type: ignore[attr-defined]
        event_id = parse_bounded_int("event", form_field(request, "event", 20).strip() or None, None, 1, MAX_ID)
        if event_id is None:
            raise BadParameter("event", "choose an event")
        event = await queries.event_in_scope(database, viewer.scope, event_id)
        if event is None:
            raise NotFound("no such event")
        settings = parse_settings_form(request)
        if not await results_queries.save_settings(database, viewer.scope, event.id, settings):
            raise NotFound("no such event")
        self.results_cache.forget(event.id)
        log.info("results settings of event {event} changed by {who}: {settings}", event=event.id,
                 who=viewer.email or "open mode", settings=settings.to_json())
        return self._redirect(request, f"/results?event={event.id}")


def _form_text(request: IRequest, name: str, max_length: int) -> str | None:
    value = form_field(request, name, max_length)
    if CONTROL_CHARACTERS.search(value):
        raise BadParameter(name, "must not contain control characters")
    return value.strip() or None


def parse_settings_form(request: IRequest) -> StoredSettings:
    """The settings form's fields, checked; a bad one is a BadParameter naming it (400)."""
    finish = _form_text(request, "finish_location", MAX_LOCATION_LENGTH)
    start = _form_text(request, "start_location", MAX_LOCATION_LENGTH)
    if form_field(request, "no_start_mat", 3) == "on":
        start = ""
    gun_text = _form_text(request, "gun_time", 40)
    gun_time = None
    if gun_text is not None:
        try:
            gun_time = datetime.fromisoformat(gun_text)
        except ValueError:
            raise BadParameter("gun_time", "must be a date and time like 2024-05-04 08:00:00.00+00:00") from None
        if gun_time.utcoffset() is None:
            raise BadParameter("gun_time", "needs its UTC offset, like +00:00, as the reads have")
    window = parse_bounded_int("duplicate_window_seconds", _form_text(request, "duplicate_window_seconds", 10), 60, 0,
                               MAX_DUPLICATE_WINDOW_SECONDS)
    place_by = form_field(request, "place_by", 4) or "gun"
    if place_by not in ("gun", "chip"):
        raise BadParameter("place_by", "must be gun or chip")
    years = form_field(request, "age_group_years", 2) or "5"
    if years not in ("5", "10"):
        raise BadParameter("age_group_years", "must be 5 or 10")
    settings = StoredSettings(finish, start, gun_time, window, place_by, int(years))
    try:
        settings.event_settings()  # the scoring core's own checks
    except ValueError as error:
        raise BadParameter("settings", str(error)) from None
    return settings
