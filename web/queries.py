"""The read side of the timing database, as the web layer needs it.

Every query goes through ``Database.run_query`` with parameters (never string-built
values). A failed or impossible query raises ``DatabaseUnavailable``, which the app turns
into a 503, so callers never see a driver exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from twisted.logger import Logger

from chronotrack.database import Database
from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG
from web.errors import DatabaseUnavailable

log = Logger()

MAX_READS_PER_QUERY = 1000
NOT_RUNNER_TAGS = (GUN_TIME_TAG, NEW_LOCATION_TAG)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
           r.lap_count, r.reader_id, r.gator_number, p.first_name, p.last_name, r.received_at
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


async def recent_reads(database: Database, limit: int, location: str | None = None,
                       bib: str | None = None, before_id: int | None = None) -> list[DisplayRead]:
    """The newest reads first, optionally filtered; ``before_id`` pages to older ones."""
    conditions, params = [], []
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
    rows = await _rows(database, f"{_READ_SELECT} {where} ORDER BY r.id DESC LIMIT %s", params)
    return [_read_from_row(row) for row in rows]


async def reads_after(database: Database, after_id: int, limit: int = MAX_READS_PER_QUERY) -> list[DisplayRead]:
    """Reads with an id above ``after_id``, oldest first (the live fetch pages through these)."""
    rows = await _rows(database, f"{_READ_SELECT} WHERE r.id > %s ORDER BY r.id LIMIT %s",
                       (after_id, min(limit, MAX_READS_PER_QUERY)))
    return [_read_from_row(row) for row in rows]


async def missed_reads(database: Database, after_id: int, limit: int = MAX_READS_PER_QUERY) -> list[DisplayRead]:
    """The newest ``limit`` reads above ``after_id``, oldest first: what a resuming screen needs."""
    rows = await _rows(
        database,
        f"SELECT * FROM ({_READ_SELECT} WHERE r.id > %s ORDER BY r.id DESC LIMIT %s) newest ORDER BY id",
        (after_id, min(limit, MAX_READS_PER_QUERY)))
    return [_read_from_row(row) for row in rows]


async def reads_between(database: Database, low_id: int, high_id: int) -> list[DisplayRead]:
    """Reads with ``low_id < id <= high_id``, oldest first: for inserts that committed late."""
    rows = await _rows(database, f"{_READ_SELECT} WHERE r.id > %s AND r.id <= %s ORDER BY r.id LIMIT %s",
                       (low_id, high_id, MAX_READS_PER_QUERY))
    return [_read_from_row(row) for row in rows]


async def highest_read_id(database: Database) -> int:
    rows = await _rows(database, "SELECT coalesce(max(id), 0) FROM timing_reads")
    return int(rows[0][0])


async def location_names(database: Database) -> list[str]:
    rows = await _rows(database, "SELECT location_name FROM timing_reads GROUP BY location_name ORDER BY 1")
    return [row[0] for row in rows]


# Figures


async def stats(database: Database) -> dict[str, Any]:
    """Totals, per-location figures and reads per minute over the last hour."""
    totals = await _rows(database, """
        SELECT count(*),
               count(DISTINCT tag_code) FILTER (WHERE tag_code <> ALL(%s)),
               count(*) FILTER (WHERE tag_code = %s),
               count(DISTINCT session_id),
               max(read_timestamp),
               coalesce(max(id), 0)
        FROM timing_reads""", (list(NOT_RUNNER_TAGS), GUN_TIME_TAG))
    total_reads, unique_tags, gun_times, sessions, latest_read, latest_id = totals[0]
    by_location = await _rows(database, """
        SELECT l.location_name, l.reads, l.unique_tags, r.id, r.tag_code, r.read_time, r.read_timestamp
        FROM (SELECT location_name, count(*) AS reads,
                     count(DISTINCT tag_code) FILTER (WHERE tag_code <> ALL(%s)) AS unique_tags,
                     max(id) AS last_id
              FROM timing_reads GROUP BY location_name) l
        JOIN timing_reads r ON r.id = l.last_id
        ORDER BY l.location_name""", (list(NOT_RUNNER_TAGS),))
    per_minute = await reads_per_minute(database)
    return {
        "total_reads": total_reads,
        "unique_tags": unique_tags,
        "gun_times": gun_times,
        "sessions": sessions,
        "latest_read": iso(latest_read),
        "latest_read_id": latest_id,
        "locations": [
            {"location": name, "reads": reads, "unique_tags": tags,
             "latest_read": {"id": read_id, "bib": tag, "time": read_time, "timestamp": iso(timestamp),
                             "gun_time": tag == GUN_TIME_TAG}}
            for name, reads, tags, read_id, tag, read_time, timestamp in by_location
        ],
        "reads_per_minute": per_minute,
    }


async def reads_per_minute(database: Database, minutes: int = 60) -> list[dict[str, Any]]:
    """Reads received in each of the last ``minutes`` minutes (zeros included), oldest first.

    Counted by arrival (``received_at``, the server's clock) so the chart shows what the
    system is taking in now, whatever clock the controllers keep.
    """
    rows = await _rows(database, """
        SELECT m.minute, count(r.id)
        FROM generate_series(date_trunc('minute', now()) - make_interval(mins => %s - 1),
                             date_trunc('minute', now()), interval '1 minute') AS m(minute)
        LEFT JOIN timing_reads r
               ON r.received_at >= m.minute AND r.received_at < m.minute + interval '1 minute'
        GROUP BY m.minute ORDER BY m.minute""", (minutes,))
    return [{"minute": iso(minute), "reads": count} for minute, count in rows]


async def database_status(database: Database) -> dict[str, Any]:
    rows = await _rows(database, """
        SELECT now(), s.id, s.session_name, s.event_name, s.created_at
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (SELECT id, session_name, event_name, created_at FROM timing_sessions
                           WHERE status = 'active' ORDER BY id DESC LIMIT 1) s ON true""")
    server_time, session_id, session_name, event_name, created_at = rows[0]
    return {
        "connected": True,
        "current_session": session_id,
        "session_name": session_name,
        "event_name": event_name,
        "session_started": iso(created_at),
        "server_time": iso(server_time),
    }


async def sessions(database: Database) -> list[dict[str, Any]]:
    rows = await _rows(database, """
        SELECT s.id, s.session_name, s.event_name, s.event_id, s.status, s.created_at, s.closed_at,
               count(r.id), count(DISTINCT r.location_name), min(r.read_timestamp), max(r.read_timestamp)
        FROM timing_sessions s LEFT JOIN timing_reads r ON r.session_id = s.id
        GROUP BY s.id ORDER BY s.id DESC""")
    return [
        {"id": id_, "session_name": name, "event_name": event, "event_id": event_id, "status": status,
         "created_at": iso(created), "closed_at": iso(closed), "read_count": reads,
         "location_count": locations, "first_read": iso(first), "last_read": iso(last)}
        for id_, name, event, event_id, status, created, closed, reads, locations, first, last in rows
    ]


async def open_controller_connections(database: Database, limit: int = 100) -> list[dict[str, Any]]:
    """Controller connections the database records as open (any collector process)."""
    rows = await _rows(database, """
        SELECT id, peer, stream_id, event_name, connected_at FROM controller_connections
        WHERE disconnected_at IS NULL ORDER BY connected_at DESC LIMIT %s""", (limit,))
    return [{"id": id_, "peer": peer, "stream_id": stream, "event_name": event, "connected_at": iso(at)}
            for id_, peer, stream, event, at in rows]


# Roster


PARTICIPANT_FIELDS = ("bib", "first_name", "last_name", "age", "gender", "city", "state", "division", "team")


async def roster_event_id(database: Database) -> int:
    """The event a roster goes to: the newest session's event, else the default partner's unnamed one."""
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


async def upsert_participants(database: Database, event_id: int, participants: Sequence[Any]) -> int:
    """Insert or update an event's runners by bib in one statement; returns how many rows were written."""
    if not participants:
        return 0
    columns = [[getattr(person, field) for person in participants] for field in PARTICIPANT_FIELDS]
    rows = await _rows(database, """
        INSERT INTO participants AS p (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender,
                                       city, state, division, team)
        SELECT e.id, e.timing_partner_id, batch.*
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[],
                    %s::text[], %s::text[], %s::text[]) AS batch
        JOIN timing_events e ON e.id = %s
        ON CONFLICT (timing_event_id, bib) DO UPDATE SET
            first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, age = EXCLUDED.age,
            gender = EXCLUDED.gender, city = EXCLUDED.city, state = EXCLUDED.state,
            division = EXCLUDED.division, team = EXCLUDED.team, updated_at = now()
        RETURNING p.bib""", [*columns, event_id])
    return len(rows)


_NUMERIC_BIB_ORDER = "(bib !~ '^[0-9]+$'), CASE WHEN bib ~ '^[0-9]{1,18}$' THEN bib::bigint END, bib"


async def participants(database: Database, event_id: int, search: str | None = None,
                       limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
    """An event's runners in bib order (numeric bibs numerically), matching ``search`` if given; and the total."""
    where, params = "WHERE timing_event_id = %s", [event_id]
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


async def participant_count(database: Database, event_id: int) -> int:
    rows = await _rows(database, "SELECT count(*) FROM participants WHERE timing_event_id = %s", (event_id,))
    return int(rows[0][0])
