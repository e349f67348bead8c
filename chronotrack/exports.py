"""Exports of stored reads for results software: CSV for people and spreadsheets, CT01 for RunScore & co.

Two halves. The formatting functions at the top are pure (rows in, bytes out), so a page of
reads is turned into file content the same way by ``chronotrack export`` and by the web
download. The queries below them find what to export and walk its reads in pages of
``PAGE_SIZE`` by id (keyset, never OFFSET), so an export holds one page in memory however
large the event: ``write_export`` hands each page to its writer before asking for the next.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Awaitable, Callable, Iterable, Sequence

from chronotrack.storage.database import Database

PAGE_SIZE = 5_000
FORMATS = ("csv", "ct01")

# The read's own columns keep their timing_reads names: people who query the table by hand
# (and their scripts) recognise them.
READ_COLUMNS = ("location_name", "sequence_number", "tag_code", "read_time", "read_timestamp", "lap_count",
                "reader_id", "gator_number")
CSV_COLUMNS = ("event_name", "session_id", "runner_name", *READ_COLUMNS)

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...),
# +cmd|...); tag and location text comes from controllers, so nothing is trusted.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CT01_LINE_END = "\r\n"


@dataclass(frozen=True)
class ExportRead:
    """One stored read as the exports need it: the read, its event, and its runner when on the roster."""

    id: int
    event_name: str
    session_id: int
    first_name: str | None
    last_name: str | None
    location_name: str
    sequence_number: int
    tag_code: str
    read_time: str
    read_timestamp: datetime
    lap_count: int
    reader_id: str
    gator_number: int
    raw_data: str

    @property
    def runner_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


# Formatting (pure)


def spreadsheet_safe(value: str) -> str:
    """The cell text a spreadsheet shows as text: a leading ' before anything it would run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_cells(read: ExportRead) -> list[str]:
    values = {"event_name": read.event_name, "session_id": read.session_id, "runner_name": read.runner_name,
              "read_timestamp": read.read_timestamp.isoformat()}
    return [spreadsheet_safe(str(values[column] if column in values else getattr(read, column)))
            for column in CSV_COLUMNS]


def csv_header() -> bytes:
    return _csv_text([list(CSV_COLUMNS)])


def csv_page(reads: Iterable[ExportRead]) -> bytes:
    """One page of CSV rows (UTF-8, CR LF line ends, quoted where needed)."""
    return _csv_text(csv_cells(read) for read in reads)


def _csv_text(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def ct01_line(read: ExportRead) -> str:
    """The read exactly as its controller sent it, ended by CR LF as CTP01 and CTFF01 files are."""
    return read.raw_data.rstrip("\r\n") + CT01_LINE_END


def ct01_page(reads: Iterable[ExportRead]) -> bytes:
    return "".join(ct01_line(read) for read in reads).encode("utf-8")


def export_header(export_format: str) -> bytes:
    return csv_header() if export_format == "csv" else b""


def export_page(export_format: str, reads: Sequence[ExportRead]) -> bytes:
    return csv_page(reads) if export_format == "csv" else ct01_page(reads)


_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9]+")


def export_filename(kind: str, target_id: int, title: str, export_format: str) -> str:
    """``session-12-spring-10k.csv``: ASCII letters, digits, dots and dashes only, whatever the event is called."""
    words = _UNSAFE_IN_FILENAME.sub("-", title).strip("-.")[:60].strip("-.").lower()
    stem = f"{kind}-{target_id}" + (f"-{words}" if words else "")
    return stem + (".csv" if export_format == "csv" else ".ct01.txt")


# Finding what to export


@dataclass(frozen=True)
class ExportTarget:
    """A session, or an event (all its sessions), found within what the asker may see."""

    kind: str  # "session" or "event"
    id: int
    title: str
    partner_id: int
    session_ids: tuple[int, ...]


def _partner_condition(partner_ids: Iterable[int] | None, partner_slug: str | None,
                       column: str) -> tuple[str, list]:
    conditions, params = [], []
    if partner_ids is not None:
        conditions.append(f"{column} = ANY(%s::bigint[])")
        params.append(sorted(int(partner) for partner in partner_ids))
    if partner_slug is not None:
        conditions.append(f"{column} = (SELECT id FROM timing_partners WHERE slug = %s)")
        params.append(partner_slug)
    return "".join(f" AND {condition}" for condition in conditions), params


async def find_session(database: Database, session_id: int, partner_ids: Iterable[int] | None = None,
                       partner_slug: str | None = None) -> ExportTarget | None:
    """The session, if it exists and belongs to one of ``partner_ids`` / the partner ``partner_slug``."""
    condition, params = _partner_condition(partner_ids, partner_slug, "s.timing_partner_id")
    rows = await database.run_query(f"""
        SELECT s.id, coalesce(e.event_name, s.event_name, nullif(e.event_key, ''), s.session_name),
               s.timing_partner_id
        FROM timing_sessions s JOIN timing_events e ON e.id = s.timing_event_id
        WHERE s.id = %s{condition}""", [session_id, *params])
    if not rows:
        return None
    id_, title, partner = rows[0]
    return ExportTarget("session", id_, title or "", partner, (id_,))


async def find_event(database: Database, event_id: int, partner_ids: Iterable[int] | None = None,
                     partner_slug: str | None = None) -> ExportTarget | None:
    """The event (with its sessions, oldest first), if it exists within the partners asked for."""
    condition, params = _partner_condition(partner_ids, partner_slug, "e.timing_partner_id")
    rows = await database.run_query(f"""
        SELECT e.id, coalesce(e.event_name, nullif(e.event_key, ''), ''), e.timing_partner_id,
               coalesce(array_agg(s.id ORDER BY s.id) FILTER (WHERE s.id IS NOT NULL), '{{}}')
        FROM timing_events e LEFT JOIN timing_sessions s ON s.timing_event_id = e.id
        WHERE e.id = %s{condition}
        GROUP BY e.id""", [event_id, *params])
    if not rows:
        return None
    id_, title, partner, sessions = rows[0]
    return ExportTarget("event", id_, title, partner, tuple(sessions))


@dataclass(frozen=True)
class EventSummary:
    id: int
    partner_slug: str
    key: str
    name: str | None
    sessions: int
    reads: int


async def list_events(database: Database, partner_slug: str | None = None) -> list[EventSummary]:
    """Every event (or one partner's) with its session and read counts, for ``chronotrack event list``."""
    condition, params = ("WHERE p.slug = %s", [partner_slug]) if partner_slug is not None else ("", [])
    rows = await database.run_query(f"""
        SELECT e.id, p.slug, e.event_key, e.event_name,
               (SELECT count(*) FROM timing_sessions s WHERE s.timing_event_id = e.id),
               (SELECT coalesce(sum(f.reads), 0)::bigint FROM read_figures f WHERE f.timing_event_id = e.id)
        FROM timing_events e JOIN timing_partners p ON p.id = e.timing_partner_id
        {condition}
        ORDER BY e.id""", params)
    return [EventSummary(*row) for row in rows]


# Walking the reads page by page

_PAGE_QUERY = """
    SELECT r.id, coalesce(e.event_name, s.event_name, e.event_key), r.session_id, p.first_name, p.last_name,
           r.location_name, r.sequence_number, r.tag_code, r.read_time, r.read_timestamp, r.lap_count,
           r.reader_id, r.gator_number, r.raw_data
    FROM timing_reads r
    JOIN timing_sessions s ON s.id = r.session_id
    JOIN timing_events e ON e.id = s.timing_event_id
    LEFT JOIN participants p ON p.timing_event_id = s.timing_event_id AND p.bib = r.tag_code
    WHERE r.timing_partner_id = %s AND r.session_id = %s AND r.id > %s{location}
    ORDER BY r.id
    LIMIT %s
"""


async def read_pages(database: Database, target: ExportTarget, location: str | None = None,
                     page_size: int = PAGE_SIZE) -> AsyncIterator[list[ExportRead]]:
    """The target's reads in id order (session after session), ``page_size`` at a time.

    Each page is one short query that starts after the last id seen, so a read stored while the
    export runs is either in it or after it, and nothing holds a transaction open meanwhile. The
    partner condition is a second fence: a page never holds another partner's read.
    """
    location_condition, location_params = (" AND r.location_name = %s", [location]) if location else ("", [])
    sql = _PAGE_QUERY.format(location=location_condition)
    for session_id in target.session_ids:
        # Start at the session's first read, not at the table's: the pages walk ids upwards. "id + 0"
        # keeps the planner on the session's own index (timing_reads_by_location) instead of walking
        # the primary key from the table's first read until this session's turns up.
        first = await database.run_query("SELECT min(id + 0) FROM timing_reads WHERE session_id = %s",
                                         (session_id,))
        if first[0][0] is None:
            continue
        after = first[0][0] - 1
        while True:
            rows = await database.run_query(sql, [target.partner_id, session_id, after, *location_params, page_size])
            if not rows:
                break
            yield [ExportRead(*row) for row in rows]
            if len(rows) < page_size:
                break
            after = rows[-1][0]


Writer = Callable[[bytes], "Awaitable[None] | None"]


async def write_export(database: Database, target: ExportTarget, export_format: str, write: Writer,
                       location: str | None = None, page_size: int = PAGE_SIZE) -> int:
    """Write the export through ``write`` page by page; returns the number of reads written."""
    if export_format not in FORMATS:
        raise ValueError(f"unknown export format {export_format!r}")
    written = 0
    header = export_header(export_format)
    if header:
        await _call(write, header)
    async for page in read_pages(database, target, location, page_size):
        await _call(write, export_page(export_format, page))
        written += len(page)
    return written


async def _call(write: Writer, data: bytes) -> None:
    result = write(data)
    if result is not None:
        await result
