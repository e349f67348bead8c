"""All SQL of the web layer: reads, figures, sessions, events, rosters, sign-in and tokens.

Every query goes through ``Database.run_query`` with parameters (never string-built
values). A failed or impossible query raises ``DatabaseUnavailable``, which the app turns
into a 503, so callers never see a driver exception. Every query about timing data takes
the viewer's ``Scope`` (its partners, or one public event), so what a page or feed shows
is narrowed in SQL, never filtered afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from twisted.logger import Logger

from chronotrack.storage.database import Database
from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG
from web.errors import DatabaseUnavailable

log = Logger()

MAX_READS_PER_QUERY = 1000
MAX_READ_IDS_PER_QUERY = 10_000
NOT_RUNNER_TAGS = (GUN_TIME_TAG, NEW_LOCATION_TAG)  # 0008 leaves the same tags out of tags_seen


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Scope:
    """What one viewer may see: some partners (None: every one), and perhaps one event only.

    Every query below takes one, so a page or feed cannot forget to narrow itself down.
    """

    partners: frozenset[int] | None = None
    event_id: int | None = None

    @classmethod
    def of_partners(cls, partner_ids: Iterable[int]) -> "Scope":
        return cls(frozenset(int(partner) for partner in partner_ids))

    @property
    def everything(self) -> bool:
        return self.partners is None and self.event_id is None

    def allows(self, read: "DisplayRead") -> bool:
        """The same rule as ``conditions``, for reads already fetched (the live stream)."""
        if self.partners is not None and read.partner_id not in self.partners:
            return False
        return self.event_id is None or read.event_id == self.event_id

    def conditions(self, partner_column: str, event_column: str | None = None,
                   newest_first: bool = False) -> tuple[list[str], list[Any]]:
        """SQL conditions (with their parameters) that keep rows inside this scope.

        ``newest_first``: for a query ordered by ``newest_first()`` (see there).
        """
        conditions: list[str] = []
        params: list[Any] = []
        if self.partners is not None and len(self.partners) == 1 and newest_first:
            conditions.append(f"{partner_column} BETWEEN %s AND %s")
            params.extend([next(iter(self.partners))] * 2)
        elif self.partners is not None and len(self.partners) == 1:
            conditions.append(f"{partner_column} = %s")
            params.append(next(iter(self.partners)))
        elif self.partners is not None:
            conditions.append(f"{partner_column} = ANY(%s::bigint[])")
            params.append(sorted(self.partners))
        if self.event_id is not None:
            if event_column is None:
                raise ValueError("this query cannot be narrowed to one event")
            conditions.append(f"{event_column} = %s")
            params.append(self.event_id)
        return conditions, params

    def newest_first(self, partner_column: str, id_column: str) -> str:
        """ORDER BY for "newest first" that the planner serves from the partner's own index.

        With one partner, "partner DESC, id DESC" is the same order as "id DESC", but only the
        first matches timing_reads_by_partner (partner, id), read backward, exactly. Told
        "id DESC" the planner walks the whole table's ids down from the newest, which for a
        partner whose reads are all old (or a quiet one on a busy hub) means millions of rows
        (seconds at 10M rows). The partner condition must then be ``conditions(...,
        newest_first=True)``: written as "= x" the planner drops the partner from the order
        again (a constant orders nothing).
        """
        if self.partners is not None and len(self.partners) == 1:
            return f"{partner_column} DESC, {id_column} DESC"
        return f"{id_column} DESC"

    def where(self, partner_column: str, event_column: str | None = None,
              extra: Sequence[str] = (), extra_params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
        conditions, params = self.conditions(partner_column, event_column)
        conditions = [*conditions, *extra]
        params = [*params, *extra_params]
        return ("WHERE " + " AND ".join(conditions)) if conditions else "", params


EVERYTHING = Scope()
NOTHING = Scope(frozenset())


@dataclass(frozen=True)
class DisplayRead:
    """One stored read as the screen shows it: the runner's name joined from the roster."""

    id: int
    session_id: int
    bib: str
    location: str
    time: str  # read_time exactly as the controller sent it
    timestamp: datetime
    lap: int
    reader: str
    gator: int
    first_name: str | None
    last_name: str | None
    received_at: datetime | None = None
    partner_id: int | None = None  # whose read it is: the live stream filters on these
    event_id: int | None = None

    @property
    def gun_time(self) -> bool:
        return self.bib == GUN_TIME_TAG

    @property
    def name(self) -> str | None:
        """The runner's full name, or None when the bib is not in the roster."""
        full = " ".join(part for part in (self.first_name, self.last_name) if part)
        return full or None

    @property
    def headline(self) -> str:
        """What the big screen prints: the name, "Bib 1234", or the race start."""
        if self.gun_time:
            return "Race start"
        return self.name or f"Bib {self.bib}"

    @property
    def clock_time(self) -> str:
        """The time of day to show: ``time`` as sent when it is one, else from the timestamp.

        An ISO read time shows without its date; unix and millisecond times, which mean
        nothing to a spectator, show as the time of day of the resolved timestamp.
        """
        if "T" in self.time:
            return self.time.split("T", 1)[1]
        if ":" in self.time:
            return self.time
        hundredths = self.timestamp.microsecond // 10_000
        return f"{self.timestamp:%H:%M:%S}.{hundredths:02d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "bib": self.bib,
            "name": self.name,
            "location": self.location,
            "time": self.time,
            "clock": self.clock_time,
            "timestamp": iso(self.timestamp),
            "lap": self.lap,
            "reader": self.reader,
            "gator": self.gator,
            "gun_time": self.gun_time,
        }


_READ_SELECT = """
    SELECT r.id, r.session_id, r.tag_code, r.location_name, r.read_time, r.read_timestamp,
           r.lap_count, r.reader_id, r.gator_number, p.first_name, p.last_name, r.received_at,
           r.timing_partner_id, s.timing_event_id
    FROM timing_reads r
    JOIN timing_sessions s ON s.id = r.session_id
    LEFT JOIN participants p ON p.timing_event_id = s.timing_event_id AND p.bib = r.tag_code
"""


def _read_from_row(row: Sequence[Any]) -> DisplayRead:
    return DisplayRead(*row)


async def _rows(database: Database, sql: str, params: Any = None) -> list[tuple]:
    """Run one query, turning every way it can fail into DatabaseUnavailable."""
    if database is None or not database.connected:
        raise DatabaseUnavailable("database not connected")
    try:
        return await database.run_query(sql, params)
    except Exception as error:
        log.failure("database query failed: {error}", error=str(error).strip() or repr(error))
        raise DatabaseUnavailable(str(error)) from error


# Reads


def _from_the_events_newest_read(scope: Scope, conditions: list[str], params: list[Any]) -> tuple[list[str], list[Any]]:
    """For one event's reads newest first, start the walk down the ids at that event's newest read.

    timing_reads has no event column: the walk goes down the partner's (or the hub's) ids and
    keeps the event's. Starting at the event's newest id (kept in read_figures) skips whatever
    other events stored since, so a finished race's page does not walk every newer read.
    """
    if scope.event_id is None:
        return conditions, params
    return ([*conditions, "r.id <= (SELECT coalesce(max(last_id), 0) FROM read_figures WHERE timing_event_id = %s)"],
            [*params, scope.event_id])


async def recent_reads(database: Database, scope: Scope, limit: int, location: str | None = None,
                       bib: str | None = None, before_id: int | None = None) -> list[DisplayRead]:
    """The newest reads in ``scope`` first, optionally filtered; ``before_id`` pages to older ones."""
    conditions, params = scope.conditions("r.timing_partner_id", "s.timing_event_id", newest_first=True)
    conditions, params = _from_the_events_newest_read(scope, conditions, params)
    if location is not None:
        conditions.append("r.location_name = %s")
        params.append(location)
    if bib is not None:
        conditions.append("r.tag_code = %s")
        params.append(bib)
    if before_id is not None:
        conditions.append("r.id < %s")
        params.append(before_id)
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    params.append(min(limit, MAX_READS_PER_QUERY))
    rows = await _rows(database, f"{_READ_SELECT} {where} ORDER BY {scope.newest_first('r.timing_partner_id', 'r.id')}"
                                 " LIMIT %s", params)
    return [_read_from_row(row) for row in rows]


async def reads_after(database: Database, after_id: int, limit: int = MAX_READS_PER_QUERY) -> list[DisplayRead]:
    """Reads with an id above ``after_id``, oldest first (the live fetch pages through these).

    Fetched once for every subscriber; each stream keeps what its viewer's scope allows.
    """
    rows = await _rows(database, f"{_READ_SELECT} WHERE r.id > %s ORDER BY r.id LIMIT %s",
                       (after_id, min(limit, MAX_READS_PER_QUERY)))
    return [_read_from_row(row) for row in rows]


async def missed_reads(database: Database, scope: Scope, after_id: int,
                       limit: int = MAX_READS_PER_QUERY) -> list[DisplayRead]:
    """The newest ``limit`` reads in ``scope`` above ``after_id``, oldest first: what a resuming screen needs."""
    conditions, params = scope.conditions("r.timing_partner_id", "s.timing_event_id", newest_first=True)
    conditions, params = _from_the_events_newest_read(scope, [*conditions, "r.id > %s"], [*params, after_id])
    where = "WHERE " + " AND ".join(conditions)
    rows = await _rows(
        database,
        f"SELECT * FROM ({_READ_SELECT} {where} ORDER BY {scope.newest_first('r.timing_partner_id', 'r.id')}"
        " LIMIT %s) newest ORDER BY id",
        [*params, min(limit, MAX_READS_PER_QUERY)])
    return [_read_from_row(row) for row in rows]


async def read_ids_between(database: Database, low_id: int, high_id: int,
                           limit: int = MAX_READ_IDS_PER_QUERY) -> list[int]:
    """Ids of the reads with ``low_id < id <= high_id``, ascending, at most ``limit``: the
    primary key alone, for statements that committed late (the live feed fetches only those
    of them it has not delivered)."""
    rows = await _rows(database, "SELECT id FROM timing_reads WHERE id > %s AND id <= %s ORDER BY id LIMIT %s",
                       (low_id, high_id, limit))
    return [row[0] for row in rows]


async def reads_with_ids(database: Database, ids: Sequence[int]) -> list[DisplayRead]:
    """The reads with these ids (at most ``MAX_READS_PER_QUERY``), oldest first."""
    rows = await _rows(database, f"{_READ_SELECT} WHERE r.id = ANY(%s) ORDER BY r.id",
                       (list(ids[:MAX_READS_PER_QUERY]),))
    return [_read_from_row(row) for row in rows]


async def highest_read_id(database: Database) -> int:
    """The highest read id of the whole hub: where "new" starts for the live stream (a cursor, no data)."""
    rows = await _rows(database, "SELECT coalesce(max(id), 0) FROM timing_reads")
    return int(rows[0][0])


async def location_names(database: Database, scope: Scope) -> list[str]:
    """The locations that have reads in ``scope``, from the maintained figures (never the reads)."""
    where, params = scope.where("timing_partner_id", "timing_event_id")
    rows = await _rows(database, f"SELECT DISTINCT location_name FROM read_figures {where} ORDER BY 1", params)
    return [row[0] for row in rows]


# Figures
#
# Counted from read_figures and read_minutes, which triggers keep up to date as reads are
# stored or removed (chronotrack/schema/0008_maintained_figures.sql): a request reads one row
# per session and location in scope, not the reads. unique_tags is an estimate (exact for a
# few dozen tags, within ~1-3% for thousands).


async def stats(database: Database, scope: Scope) -> dict[str, Any]:
    """Totals, per-location figures and reads per minute over the last hour, within ``scope``."""
    where, params = scope.where("timing_partner_id", "timing_event_id")
    totals = await _rows(database, f"""
        SELECT coalesce(sum(reads), 0), distinct_tags_estimate(bit_or(tags_seen)), coalesce(sum(gun_times), 0),
               count(DISTINCT session_id), max(last_read), coalesce(max(last_id), 0)
        FROM read_figures {where}""", params)
    total_reads, unique_tags, gun_times, sessions, latest_read, latest_id = totals[0]
    by_location = await _rows(database, f"""
        SELECT l.location_name, l.reads, l.unique_tags, r.id, r.tag_code, r.read_time, r.read_timestamp
        FROM (SELECT location_name, sum(reads) AS reads, distinct_tags_estimate(bit_or(tags_seen)) AS unique_tags,
                     max(last_id) AS last_id
              FROM read_figures {where} GROUP BY location_name) l
        JOIN timing_reads r ON r.id = l.last_id
        ORDER BY l.location_name""", params)
    per_minute = await reads_per_minute(database, scope)
    return {
        "total_reads": int(total_reads),
        "unique_tags": int(unique_tags),
        "gun_times": int(gun_times),
        "sessions": sessions,
        "latest_read": iso(latest_read),
        "latest_read_id": latest_id,
        "locations": [
            {"location": name, "reads": int(reads), "unique_tags": int(tags),
             "latest_read": {"id": read_id, "bib": tag, "time": read_time, "timestamp": iso(timestamp),
                             "gun_time": tag == GUN_TIME_TAG}}
            for name, reads, tags, read_id, tag, read_time, timestamp in by_location
        ],
        "reads_per_minute": per_minute,
    }


async def reads_per_minute(database: Database, scope: Scope, minutes: int = 60) -> list[dict[str, Any]]:
    """Reads received in each of the last ``minutes`` minutes (zeros included), oldest first.

    Counted by arrival (``received_at``, the server's clock) so the chart shows what the
    system is taking in now, whatever clock the controllers keep; from the per-minute
    figures (read_minutes), one row per partner, event and minute.
    """
    conditions, params = scope.conditions("c.timing_partner_id", "c.timing_event_id")
    narrowed = "".join(f" AND {condition}" for condition in conditions)
    rows = await _rows(database, f"""
        SELECT m.minute, coalesce(c.reads, 0)
        FROM generate_series(date_trunc('minute', now()) - make_interval(mins => %s - 1),
                             date_trunc('minute', now()), interval '1 minute') AS m(minute)
        LEFT JOIN (SELECT c.minute, sum(c.reads) AS reads FROM read_minutes c
                   WHERE c.minute > date_trunc('minute', now()) - make_interval(mins => %s){narrowed}
                   GROUP BY c.minute) c ON c.minute = m.minute
        ORDER BY m.minute""", [minutes, minutes, *params])
    return [{"minute": iso(minute), "reads": int(count)} for minute, count in rows]


async def database_status(database: Database, scope: Scope) -> dict[str, Any]:
    where, params = scope.where("timing_partner_id", "timing_event_id", ["status = 'active'"])
    rows = await _rows(database, f"""
        SELECT now(), s.id, s.session_name, s.event_name, s.created_at
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (SELECT id, session_name, event_name, created_at FROM timing_sessions
                           {where} ORDER BY id DESC LIMIT 1) s ON true""", params)
    server_time, session_id, session_name, event_name, created_at = rows[0]
    return {
        "connected": True,
        "current_session": session_id,
        "session_name": session_name,
        "event_name": event_name,
        "session_started": iso(created_at),
        "server_time": iso(server_time),
    }


MAX_SESSIONS_LISTED = 500


async def sessions(database: Database, scope: Scope) -> list[dict[str, Any]]:
    """The newest sessions in ``scope`` with their read figures (at most ``MAX_SESSIONS_LISTED``)."""
    where, params = scope.where("s.timing_partner_id", "s.timing_event_id")
    rows = await _rows(database, f"""
        SELECT s.id, s.session_name, s.event_name, s.event_id, s.status, s.created_at, s.closed_at,
               coalesce(sum(f.reads), 0), count(f.location_name), min(f.first_read), max(f.last_read),
               s.timing_event_id
        FROM (SELECT * FROM timing_sessions s {where} ORDER BY id DESC LIMIT %s) s
        LEFT JOIN read_figures f ON f.session_id = s.id
        GROUP BY s.id, s.session_name, s.event_name, s.event_id, s.status, s.created_at, s.closed_at,
                 s.timing_event_id
        ORDER BY s.id DESC""", [*params, MAX_SESSIONS_LISTED])
    return [
        {"id": id_, "session_name": name, "event_name": event, "event_id": event_id, "status": status,
         "created_at": iso(created), "closed_at": iso(closed), "read_count": int(reads),
         "location_count": locations, "first_read": iso(first), "last_read": iso(last),
         "timing_event_id": timing_event}
        for id_, name, event, event_id, status, created, closed, reads, locations, first, last, timing_event in rows
    ]


async def close_session(database: Database, scope: Scope, session_id: int) -> bool | None:
    """Close an active session in ``scope``: True when closed now, False when it was closed already,
    None when ``scope`` has no such session."""
    where, params = scope.where("timing_partner_id", "timing_event_id", ["id = %s"], [session_id])
    rows = await _rows(database, f"""
        WITH target AS (SELECT id, status FROM timing_sessions {where}),
             closed AS (UPDATE timing_sessions t SET status = 'closed', closed_at = now()
                        FROM target WHERE t.id = target.id AND target.status = 'active' RETURNING t.id)
        SELECT target.status, EXISTS (SELECT 1 FROM closed) FROM target""", params)
    if not rows:
        return None
    return bool(rows[0][1])


async def open_controller_connections(database: Database, scope: Scope, limit: int = 100) -> list[dict[str, Any]]:
    """Controller connections the database records as open (any collector process)."""
    where, params = scope.where("timing_partner_id", extra=["disconnected_at IS NULL"])
    if scope.event_id is not None:
        return []  # connections belong to a partner, not to one event
    rows = await _rows(database, f"""
        SELECT id, peer, stream_id, event_name, connected_at FROM controller_connections
        {where} ORDER BY connected_at DESC LIMIT %s""", [*params, limit])
    return [{"id": id_, "peer": peer, "stream_id": stream, "event_name": event, "connected_at": iso(at)}
            for id_, peer, stream, event, at in rows]


# Events


@dataclass(frozen=True)
class Event:
    id: int
    partner_id: int
    partner_name: str
    key: str
    name: str | None
    display_slug: str
    public_display: bool

    @property
    def title(self) -> str:
        return self.name or self.key or "Unnamed event"


_EVENT_SELECT = """
    SELECT e.id, e.timing_partner_id, p.name, e.event_key, e.event_name, e.display_slug, e.public_display
    FROM timing_events e JOIN timing_partners p ON p.id = e.timing_partner_id
"""
MAX_EVENTS_LISTED = 200


async def events(database: Database, scope: Scope) -> list[Event]:
    """The events in ``scope``, newest first (at most ``MAX_EVENTS_LISTED``)."""
    where, params = scope.where("e.timing_partner_id", "e.id")
    rows = await _rows(database, f"{_EVENT_SELECT} {where} ORDER BY e.id DESC LIMIT %s",
                       [*params, MAX_EVENTS_LISTED])
    return [Event(*row) for row in rows]


async def event_in_scope(database: Database, scope: Scope, event_id: int) -> Event | None:
    where, params = scope.where("e.timing_partner_id", extra=["e.id = %s"], extra_params=[event_id])
    rows = await _rows(database, f"{_EVENT_SELECT} {where}", params)
    return Event(*rows[0]) if rows else None


async def public_event(database: Database, display_slug: str) -> Event | None:
    """The event whose public display link this is, while its partner has the display switched on."""
    rows = await _rows(database, f"{_EVENT_SELECT} WHERE e.display_slug = %s AND e.public_display",
                       (display_slug,))
    return Event(*rows[0]) if rows else None


async def set_public_display(database: Database, scope: Scope, event_id: int, public: bool) -> Event | None:
    where, params = scope.where("timing_partner_id", extra=["id = %s"], extra_params=[event_id])
    rows = await _rows(database, f"UPDATE timing_events SET public_display = %s {where} RETURNING id",
                       [public, *params])
    return await event_in_scope(database, scope, event_id) if rows else None


# Roster


PARTICIPANT_FIELDS = ("bib", "first_name", "last_name", "age", "gender", "city", "state", "division", "team")


async def roster_event_id(database: Database, scope: Scope = EVERYTHING) -> int:
    """The event a roster goes to by default: the newest session's event in ``scope``, else the
    unnamed event of the scope's partner (the default partner when the scope is everything)."""
    if scope.event_id is not None:
        return scope.event_id
    if scope.partners is None:
        return await _default_roster_event_id(database)
    if not scope.partners:
        raise ValueError("an empty scope has no roster")
    partners, partner = sorted(scope.partners), min(scope.partners)
    rows = await _rows(database, """
        WITH newest AS (SELECT timing_event_id FROM timing_sessions WHERE timing_partner_id = ANY(%s::bigint[])
                        ORDER BY (status = 'active') DESC, id DESC LIMIT 1),
             unnamed AS (INSERT INTO timing_events (timing_partner_id, event_key)
                         SELECT %s, '' WHERE NOT EXISTS (SELECT 1 FROM newest)
                         ON CONFLICT DO NOTHING RETURNING id)
        SELECT timing_event_id FROM newest
        UNION ALL SELECT id FROM unnamed
        UNION ALL SELECT id FROM timing_events WHERE timing_partner_id = %s AND event_key = ''
        LIMIT 1""", (partners, partner, partner))
    return int(rows[0][0])


async def _default_roster_event_id(database: Database) -> int:
    rows = await _rows(database, """
        WITH newest AS (SELECT timing_event_id FROM timing_sessions ORDER BY (status = 'active') DESC, id DESC
                        LIMIT 1),
             unnamed AS (INSERT INTO timing_events (timing_partner_id, event_key)
                         SELECT id, '' FROM timing_partners WHERE slug = 'default' AND NOT EXISTS (SELECT 1 FROM newest)
                         ON CONFLICT DO NOTHING RETURNING id)
        SELECT timing_event_id FROM newest
        UNION ALL SELECT id FROM unnamed
        UNION ALL SELECT e.id FROM timing_events e JOIN timing_partners p ON p.id = e.timing_partner_id
                  WHERE p.slug = 'default' AND e.event_key = ''
        LIMIT 1""")
    return int(rows[0][0])


async def event_id_for(database: Database, partner_slug: str, event_key: str) -> int | None:
    """The partner's event with this key (a controller's event id, or its name), created when new.

    None when there is no such partner.
    """
    rows = await _rows(database, """
        WITH partner AS (SELECT id FROM timing_partners WHERE slug = %s),
             created AS (INSERT INTO timing_events (timing_partner_id, event_key)
                         SELECT id, %s FROM partner ON CONFLICT DO NOTHING RETURNING id)
        SELECT id FROM created
        UNION ALL SELECT e.id FROM timing_events e JOIN partner ON e.timing_partner_id = partner.id
                  WHERE e.event_key = %s
        LIMIT 1""", (partner_slug, event_key, event_key))
    return int(rows[0][0]) if rows else None


async def upsert_participants(database: Database, event_id: int, participants: Sequence[Any],
                              scope: Scope = EVERYTHING) -> int:
    """Insert or update an event's runners by bib in one statement; returns how many rows were written.

    Nothing is written when the event is not in ``scope``.
    """
    if not participants:
        return 0
    columns = [[getattr(person, field) for person in participants] for field in PARTICIPANT_FIELDS]
    in_scope, scope_params = scope.conditions("e.timing_partner_id")
    narrowed = "".join(f" AND {condition}" for condition in in_scope)
    rows = await _rows(database, f"""
        INSERT INTO participants AS p (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender,
                                       city, state, division, team)
        SELECT e.id, e.timing_partner_id, batch.*
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[],
                    %s::text[], %s::text[], %s::text[]) AS batch
        JOIN timing_events e ON e.id = %s{narrowed}
        ON CONFLICT (timing_event_id, bib) DO UPDATE SET
            first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, age = EXCLUDED.age,
            gender = EXCLUDED.gender, city = EXCLUDED.city, state = EXCLUDED.state,
            division = EXCLUDED.division, team = EXCLUDED.team, updated_at = now()
        RETURNING p.bib""", [*columns, event_id, *scope_params])
    return len(rows)


_NUMERIC_BIB_ORDER = "(bib !~ '^[0-9]+$'), CASE WHEN bib ~ '^[0-9]{1,18}$' THEN bib::bigint END, bib"


async def participants(database: Database, event_id: int, search: str | None = None,
                       limit: int = 1000, scope: Scope = EVERYTHING) -> tuple[list[dict[str, Any]], int]:
    """An event's runners in bib order (numeric bibs numerically), matching ``search`` if given; and the total."""
    where, params = scope.where("timing_partner_id", extra=["timing_event_id = %s"], extra_params=[event_id])
    if search:
        where += " AND (bib = %s OR (first_name || ' ' || last_name) ILIKE %s OR team ILIKE %s)"
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [search, pattern, pattern]
    rows = await _rows(database, f"""
        SELECT bib, first_name, last_name, age, gender, city, state, division, team, count(*) OVER ()
        FROM participants {where} ORDER BY {_NUMERIC_BIB_ORDER} LIMIT %s""", params + [limit])
    total = rows[0][-1] if rows else 0
    return [dict(zip(PARTICIPANT_FIELDS, row[:-1])) for row in rows], total


async def participant(database: Database, event_id: int, bib: str) -> dict[str, Any] | None:
    rows = await _rows(database, """
        SELECT bib, first_name, last_name, age, gender, city, state, division, team
        FROM participants WHERE timing_event_id = %s AND bib = %s""", (event_id, bib))
    return dict(zip(PARTICIPANT_FIELDS, rows[0])) if rows else None


async def participant_count(database: Database, event_id: int, scope: Scope = EVERYTHING) -> int:
    where, params = scope.where("timing_partner_id", extra=["timing_event_id = %s"], extra_params=[event_id])
    rows = await _rows(database, f"SELECT count(*) FROM participants {where}", params)
    return int(rows[0][0])


# Who is asking: operators, their browser sessions, API tokens


async def operators_exist(database: Database) -> bool:
    """Whether any operator account exists (one index probe, not a count)."""
    rows = await _rows(database, "SELECT EXISTS (SELECT 1 FROM operators)")
    return bool(rows[0][0])


@dataclass(frozen=True)
class OperatorLogin:
    id: int
    partner_id: int
    email: str
    password_hash: str


async def operator_for_login(database: Database, email: str) -> OperatorLogin | None:
    """The enabled operator with this e-mail, with the hash to check a password against."""
    rows = await _rows(database, """
        SELECT id, timing_partner_id, email, password_hash FROM operators
        WHERE email = %s AND disabled_at IS NULL""", (email,))
    return OperatorLogin(*rows[0]) if rows else None


async def create_web_session(database: Database, operator_id: int, token_hash: str, csrf_token: str,
                             lifetime_seconds: int) -> int:
    """Store a new browser session (only its token's hash); expired ones go at the same time (by index)."""
    rows = await _rows(database, """
        WITH expired AS (DELETE FROM web_sessions WHERE expires_at <= now())
        INSERT INTO web_sessions (operator_id, token_hash, csrf_token, expires_at)
        VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING id""",
                       (operator_id, token_hash, csrf_token, lifetime_seconds))
    return int(rows[0][0])


@dataclass(frozen=True)
class SignedInSession:
    session_id: int
    csrf_token: str
    operator_id: int
    email: str
    partner_id: int


async def web_session(database: Database, token_hash: str) -> SignedInSession | None:
    """The unexpired session with this token hash, while its operator is not disabled."""
    rows = await _rows(database, """
        SELECT s.id, s.csrf_token, o.id, o.email, o.timing_partner_id
        FROM web_sessions s JOIN operators o ON o.id = s.operator_id
        WHERE s.token_hash = %s AND s.expires_at > now() AND o.disabled_at IS NULL""", (token_hash,))
    return SignedInSession(*rows[0]) if rows else None


async def delete_web_session(database: Database, session_id: int) -> None:
    await _rows(database, "DELETE FROM web_sessions WHERE id = %s RETURNING id", (session_id,))


@dataclass(frozen=True)
class ApiToken:
    id: int
    partner_id: int


async def api_token(database: Database, token_hash: str) -> ApiToken | None:
    """The unrevoked token with this hash; its ``last_used_at`` is brought up to date at most once a minute."""
    rows = await _rows(database, """
        WITH found AS (SELECT id, timing_partner_id, last_used_at FROM api_tokens
                       WHERE token_hash = %s AND revoked_at IS NULL),
             touched AS (UPDATE api_tokens t SET last_used_at = now() FROM found
                         WHERE t.id = found.id
                           AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
                         RETURNING t.id)
        SELECT found.id, found.timing_partner_id FROM found""", (token_hash,))
    return ApiToken(*rows[0]) if rows else None


# Still allowed? (open streams are checked again now and then)


async def still_public(database: Database, event_ids: Iterable[int]) -> set[int]:
    rows = await _rows(database, "SELECT id FROM timing_events WHERE id = ANY(%s::bigint[]) AND public_display",
                       (sorted(event_ids),))
    return {row[0] for row in rows}


async def still_signed_in(database: Database, session_ids: Iterable[int]) -> set[int]:
    rows = await _rows(database, """
        SELECT s.id FROM web_sessions s JOIN operators o ON o.id = s.operator_id
        WHERE s.id = ANY(%s::bigint[]) AND s.expires_at > now() AND o.disabled_at IS NULL""",
                       (sorted(session_ids),))
    return {row[0] for row in rows}


async def still_valid_tokens(database: Database, token_ids: Iterable[int]) -> set[int]:
    rows = await _rows(database, "SELECT id FROM api_tokens WHERE id = ANY(%s::bigint[]) AND revoked_at IS NULL",
                       (sorted(token_ids),))
    return {row[0] for row in rows}
