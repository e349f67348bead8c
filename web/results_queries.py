"""The SQL behind results: an event's settings, its reads for scoring, its roster, and what changed.

Same rules as ``web.queries``: parameters only, failures become ``DatabaseUnavailable``
(a 503), and whatever a viewer names is looked up within the viewer's ``Scope``. The reads
and roster of an event are fetched for an ``Event`` already found in scope, and narrowed to
its partner as well, so a caller that skipped the check still gets nothing of another partner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chronotrack.storage.database import Database
from chronotrack.reads import TagRead
from chronotrack.results import EventSettings, PlaceBy
from web.queries import _EVENT_SELECT, Event, Scope, _rows
from web.roster import Participant


@dataclass(frozen=True)
class StoredSettings:
    """An event's results settings as the form shows them (None: the default applies)."""

    finish_location: str | None = None
    start_location: str | None = None  # "" = no start mat
    gun_time: datetime | None = None
    duplicate_window_seconds: int = 60
    place_by: str = "gun"
    age_group_years: int = 5

    def event_settings(self) -> EventSettings:
        return EventSettings(finish_location=self.finish_location, start_location=self.start_location,
                             gun_time=self.gun_time,
                             duplicate_window=timedelta(seconds=self.duplicate_window_seconds),
                             place_by=PlaceBy(self.place_by), age_group_years=self.age_group_years)

    def to_json(self) -> dict[str, Any]:
        return {"finish_location": self.finish_location, "start_location": self.start_location,
                "gun_time": self.gun_time.isoformat() if self.gun_time else None,
                "duplicate_window_s": self.duplicate_window_seconds, "place_by": self.place_by,
                "age_group_years": self.age_group_years}


async def current_event(database: Database, scope: Scope) -> Event | None:
    """The event results show when none is named: the newest active session's, else the newest session's."""
    if scope.event_id is not None:
        rows = await _rows(database, f"{_EVENT_SELECT} WHERE e.id = %s", (scope.event_id,))
        return Event(*rows[0]) if rows else None
    where, params = scope.where("s.timing_partner_id")
    rows = await _rows(database, f"""
        {_EVENT_SELECT}
        WHERE e.id = (SELECT s.timing_event_id FROM timing_sessions s {where}
                      ORDER BY (s.status = 'active') DESC, s.id DESC LIMIT 1)""", params)
    return Event(*rows[0]) if rows else None


async def active_events(database: Database, limit: int) -> list[Event]:
    """Events with an active session, newest first (every partner's: for the process's own warm-up,
    never shown to a viewer)."""
    rows = await _rows(database, f"""
        {_EVENT_SELECT}
        WHERE e.id IN (SELECT s.timing_event_id FROM timing_sessions s WHERE s.status = 'active')
        ORDER BY e.id DESC LIMIT %s""", (limit,))
    return [Event(*row) for row in rows]


async def stored_settings(database: Database, event: Event) -> StoredSettings:
    rows = await _rows(database, """
        SELECT finish_location, start_location, gun_time, duplicate_window_seconds, place_by, age_group_years
        FROM event_results_settings WHERE timing_event_id = %s AND timing_partner_id = %s""",
                       (event.id, event.partner_id))
    return StoredSettings(*rows[0]) if rows else StoredSettings()


async def save_settings(database: Database, scope: Scope, event_id: int, settings: StoredSettings) -> bool:
    """Insert or replace an event's settings; False (nothing written) when the event is not in ``scope``."""
    conditions, params = scope.conditions("e.timing_partner_id", "e.id")
    narrowed = "".join(f" AND {condition}" for condition in conditions)
    rows = await _rows(database, f"""
        INSERT INTO event_results_settings AS r (timing_event_id, timing_partner_id, finish_location, start_location,
                                                 gun_time, duplicate_window_seconds, place_by, age_group_years)
        SELECT e.id, e.timing_partner_id, %s, %s, %s, %s, %s, %s FROM timing_events e WHERE e.id = %s{narrowed}
        ON CONFLICT (timing_event_id) DO UPDATE SET
            finish_location = EXCLUDED.finish_location, start_location = EXCLUDED.start_location,
            gun_time = EXCLUDED.gun_time, duplicate_window_seconds = EXCLUDED.duplicate_window_seconds,
            place_by = EXCLUDED.place_by, age_group_years = EXCLUDED.age_group_years,
            updated_at = clock_timestamp()
        RETURNING r.timing_event_id""",
                       [settings.finish_location, settings.start_location, settings.gun_time,
                        settings.duplicate_window_seconds, settings.place_by, settings.age_group_years,
                        event_id, *params])
    return bool(rows)


_SCORED_READ_SELECT = """
    SELECT r.id, r.location_name, r.tag_code, r.read_time, r.read_timestamp, r.lap_count, r.reader_id,
           r.gator_number
    FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id
    WHERE s.timing_event_id = %s AND s.timing_partner_id = %s AND r.timing_partner_id = %s AND r.id > %s
    ORDER BY r.id
"""


def scored_read(location: str, tag: str, read_time: str, timestamp: datetime, lap: int, reader: str,
                gator: int) -> TagRead:
    """A stored read as the scoring core takes it (it needs location, tag and timestamp)."""
    return TagRead(format_id="", sequence_number=0, location_name=location, tag_code=tag, read_time=read_time,
                   read_timestamp=timestamp, lap_count=lap, reader_id=reader, gator_number=gator, raw_data="")


async def event_reads(database: Database, event: Event, after_id: int = 0) -> list[tuple[int, TagRead]]:
    """Every read of ``event`` above ``after_id``, in id order: one query, however many sessions it had."""
    rows = await _rows(database, _SCORED_READ_SELECT, (event.id, event.partner_id, event.partner_id, after_id))
    return [(row[0], scored_read(*row[1:])) for row in rows]


@dataclass(frozen=True)
class ReadPage:
    """Up to ``PAGE_READS`` reads of an event, next in id order, as PostgreSQL reduced them: one
    group per (location, tag) with the group's lowest id, its count, and its times (runners'
    reads: sorted microseconds since the epoch, 8 big-endian bytes each; gun reads: datetimes).
    ``last_id`` is the highest id in the page; fewer than ``PAGE_READS`` reads means the end."""

    groups: list[tuple[str, str, int, int, bytes | None, list[datetime] | None]]
    last_id: int
    reads: int


PAGE_READS = 100_000

# The page's reads are the next PAGE_READS of the event's sessions in id order (an index range
# on (timing_partner_id, id): a page never walks the rest of the event); the grouping, the
# sorting per (location, tag) and the packing into bytes happen in PostgreSQL, so the web
# process gets about one row per crossing instead of one per read. The microseconds come from
# date_part's double, rounded: exact for any time within centuries of now (a double holds
# epoch seconds to within 0.25 us), and twice as fast as extract's numeric.
_READ_PAGE_SELECT = """
    SELECT page.location_name, page.tag_code, min(page.id), count(*),
           string_agg(int8send(round(date_part('epoch', page.read_timestamp) * 1000000)::bigint), ''::bytea
                      ORDER BY page.read_timestamp) FILTER (WHERE page.tag_code NOT IN ('guntime', 'newlocation')),
           array_agg(page.read_timestamp ORDER BY page.read_timestamp) FILTER (WHERE page.tag_code = 'guntime'),
           max(page.id)
    FROM (SELECT r.id, r.location_name, r.tag_code, r.read_timestamp FROM timing_reads r
          WHERE r.timing_partner_id = %s AND r.session_id = ANY(%s) AND r.id > %s
          ORDER BY r.id LIMIT %s) AS page
    GROUP BY page.location_name, page.tag_code
"""


async def event_sessions(database: Database, event: Event) -> list[int]:
    rows = await _rows(database, "SELECT id FROM timing_sessions WHERE timing_event_id = %s AND timing_partner_id = %s",
                       (event.id, event.partner_id))
    return [row[0] for row in rows]


async def event_read_page(database: Database, event: Event, sessions: list[int], after_id: int,
                          size: int = 0) -> ReadPage:
    """The event's next page of reads above ``after_id`` (``sessions``: ``event_sessions(event)``)."""
    size = size or PAGE_READS
    if not sessions:
        return ReadPage([], after_id, 0)
    rows = await _rows(database, _READ_PAGE_SELECT, (event.partner_id, sessions, after_id, size))
    groups = [(location, tag, first_id, count, None if packed is None else bytes(packed), guns)
              for location, tag, first_id, count, packed, guns, _ in rows]
    return ReadPage(groups, max((row[6] for row in rows), default=after_id), sum(row[3] for row in rows))


@dataclass(frozen=True)
class RunnerReadPage:
    """Up to ``size`` runners' reads of an event (no gun or new-location reads), next in id order,
    as PostgreSQL grouped them: one group per (location, tag) with its read ids and its times
    (microseconds since the epoch), both packed 8 big-endian bytes each and in id order (the
    order a finish screen's duplicate window takes reads in, unlike ``ReadPage``'s time order).
    ``last_id`` is the highest id in the page; fewer than ``size`` reads means the end."""

    groups: list[tuple[str, str, bytes, bytes]]
    last_id: int
    reads: int


# Like _READ_PAGE_SELECT (an index range on (timing_partner_id, id), packed in PostgreSQL: about
# one row per crossing reaches the web process), but ids and times in id order, and only up to
# ``through`` (the reads the results were built from).
_RUNNER_READ_PAGE_SELECT = """
    SELECT page.location_name, page.tag_code,
           string_agg(int8send(page.id), ''::bytea ORDER BY page.id),
           string_agg(int8send(round(date_part('epoch', page.read_timestamp) * 1000000)::bigint), ''::bytea
                      ORDER BY page.id),
           count(*), max(page.id)
    FROM (SELECT r.id, r.location_name, r.tag_code, r.read_timestamp FROM timing_reads r
          WHERE r.timing_partner_id = %s AND r.session_id = ANY(%s) AND r.id > %s AND r.id <= %s
            AND r.tag_code NOT IN ('guntime', 'newlocation')
          ORDER BY r.id LIMIT %s) AS page
    GROUP BY page.location_name, page.tag_code
"""


async def runner_read_page(database: Database, event: Event, sessions: list[int], after_id: int, through_id: int,
                           size: int = 0) -> RunnerReadPage:
    """The event's next page of runners' reads in (``after_id``, ``through_id``] (``sessions``:
    ``event_sessions(event)``)."""
    size = size or PAGE_READS
    if not sessions or through_id <= after_id:
        return RunnerReadPage([], after_id, 0)
    rows = await _rows(database, _RUNNER_READ_PAGE_SELECT, (event.partner_id, sessions, after_id, through_id, size))
    groups = [(location, tag, bytes(ids), bytes(micros)) for location, tag, ids, micros, _, _ in rows]
    return RunnerReadPage(groups, max((row[5] for row in rows), default=after_id), sum(row[4] for row in rows))


async def read_times_of(database: Database, event: Event, sessions: list[int], ids: list[int]
                        ) -> dict[int, tuple[str, datetime]]:
    """``read_time`` (the controller's text) and ``read_timestamp`` of the event's reads ``ids``
    (a page's first crossings: primary-key probes, one row each). Narrowed to the event's partner
    in SQL and to its sessions here: a session condition in SQL lets the planner, on a table not
    yet analysed, walk the event's reads by session and test each against the whole id list
    (seconds a page instead of milliseconds)."""
    if not sessions or not ids:
        return {}
    rows = await _rows(database, """
        SELECT r.id, r.session_id, r.read_time, r.read_timestamp FROM timing_reads r
        WHERE r.id = ANY(%s::bigint[]) AND r.timing_partner_id = %s""", (ids, event.partner_id))
    ours = set(sessions)
    return {read_id: (read_time, timestamp) for read_id, session, read_time, timestamp in rows if session in ours}


async def read_ids_above(database: Database, event: Event, sessions: list[int], above: int, through: int
                         ) -> list[int]:
    """The ids of the event's reads in (above, through]: the few a build must remember as taken in."""
    if not sessions:
        return []
    rows = await _rows(database, """
        SELECT r.id FROM timing_reads r
        WHERE r.timing_partner_id = %s AND r.session_id = ANY(%s) AND r.id > %s AND r.id <= %s""",
                       (event.partner_id, sessions, above, through))
    return [row[0] for row in rows]


async def event_roster(database: Database, event: Event) -> list[Participant]:
    rows = await _rows(database, """
        SELECT bib, first_name, last_name, age, gender, city, state, division, team
        FROM participants WHERE timing_event_id = %s AND timing_partner_id = %s""", (event.id, event.partner_id))
    return [Participant(*row) for row in rows]


async def event_version(database: Database, event: Event) -> tuple[Any, ...]:
    """What the cached results were built from besides the reads: the roster's version (0016:
    bumped by any change to the event's runners, by any writer) and the settings' last change.
    A roster import or a settings change from any process changes it (one index probe per table,
    however big the roster)."""
    rows = await _rows(database, """
        SELECT (SELECT version FROM roster_versions WHERE timing_event_id = %s),
               (SELECT updated_at FROM event_results_settings WHERE timing_event_id = %s)""",
                       (event.id, event.id))
    return tuple(rows[0])


async def event_locations(database: Database, event: Event) -> list[str]:
    """The locations the event's reads came from, for the settings form (from the maintained figures)."""
    rows = await _rows(database, """
        SELECT DISTINCT location_name FROM read_figures WHERE timing_event_id = %s AND timing_partner_id = %s
        ORDER BY 1""", (event.id, event.partner_id))
    return [row[0] for row in rows]
