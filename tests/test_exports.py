"""Exports of stored reads: the CT01 file parses back (with the project's own parser) into the very reads
stored; the CSV has the timing_reads column names, runner names from the event's roster, and no cell a
spreadsheet would run as a formula; a large export is read and written page by page.

The formatting is tested as pure functions; the queries and ``chronotrack export`` / ``event list``
against a real PostgreSQL (the command as an installed console script, as an operator runs it).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
import pytest_twisted

from chronotrack import exports
from chronotrack.ctp01 import parse_tag_bytes, parse_tag_line
from chronotrack.storage.database import Database
from tests import rows
from tests.postgres import query
from tests.test_cli import assert_clean_failure, run

EVENT_DAY = date(2024, 5, 4)
READ_FIELDS = ("sequence_number", "location_name", "tag_code", "read_time", "lap_count", "reader_id", "gator_number")


def insert_ct01_read(dsn: str, session_id: int, sequence: int, location: str, tag: str, time: str = "08:01:02.35",
                     lap: int = 1, reader: str = "0F2A38", gator: int = 2, line_end: str = "\r") -> int:
    """A read stored as the collector stores it: its fields, and raw_data = the line as received."""
    raw = f"CT01_33~{sequence}~{location}~{tag}~{time}~{lap}~{reader}~{gator}{line_end}"
    return query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT id, timing_partner_id, 'connection:test', %s, %s, %s, %s, '2024-05-04 08:01:02.35+00', %s, %s, %s, %s
        FROM timing_sessions WHERE id = %s RETURNING id""",
                 (sequence, location, tag, time, lap, reader, gator, raw, session_id))[0][0]


def stored_reads(dsn: str, session_ids: list[int], location: str | None = None) -> list[tuple]:
    condition = " AND location_name = %s" if location else ""
    return query(dsn, f"SELECT {', '.join(READ_FIELDS)} FROM timing_reads WHERE session_id = ANY(%s){condition}"
                      " ORDER BY id", (session_ids, *([location] if location else [])))


def fields(read) -> tuple:
    return tuple(getattr(read, name) for name in READ_FIELDS)


@pytest.fixture
def race(pg_dsn, database):
    """Acme's Spring 10K in two sessions (start and finish mats), two runners on the roster, one of them
    with a name a spreadsheet would run; tag and location text a controller might send to attack one."""
    rows.insert_partner(pg_dsn, "acme")
    first = rows.insert_session(pg_dsn, "Morning", "Spring 10K", partner="acme")
    query(pg_dsn, "UPDATE timing_sessions SET status = 'closed' WHERE id = %s", (first,))
    second = rows.insert_session(pg_dsn, "Afternoon", "Spring 10K", partner="acme")
    event = rows.event_of_session(pg_dsn, first)
    rows.insert_runner(pg_dsn, "101", "Ada", "Lovelace", event_id=event)
    rows.insert_runner(pg_dsn, "=2+5", "-Mallory", "@SUM(A1)", event_id=event)
    insert_ct01_read(pg_dsn, first, 1, "start", "guntime", "08:00:00.00", lap=0, gator=0)
    insert_ct01_read(pg_dsn, first, 2, "start", "101", "08:00:03.12")
    insert_ct01_read(pg_dsn, first, 3, "start", "=2+5", "08:00:04.50")
    insert_ct01_read(pg_dsn, second, 1, "finish", "101", "08:41:07.09", lap=3, reader="ED932A", gator=7)
    insert_ct01_read(pg_dsn, second, 2, "+cmd", "999", "08:42:00.00", line_end="")  # no roster entry
    other = rows.insert_session(pg_dsn, "Other race", "Autumn 5K", partner="acme")
    insert_ct01_read(pg_dsn, other, 1, "finish", "101", "09:00:00.00")  # another event: never exported
    return {"event": event, "sessions": [first, second], "other": other}


def read_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames) == exports.CSV_COLUMNS
    return list(reader)


# Pure formatting


def test_spreadsheet_safe_quotes_every_formula_start_and_nothing_else():
    for dangerous in ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1", "\r=1"):
        assert exports.spreadsheet_safe(dangerous) == "'" + dangerous
    for harmless in ("101", "Ada Lovelace", "finish", "", "2024-05-04T08:01:02+00:00", "a=b"):
        assert exports.spreadsheet_safe(harmless) == harmless


def test_ct01_lines_are_the_raw_line_with_exactly_one_cr_lf():
    read = exports.ExportRead(1, "E", 1, None, None, "start", 7, "101", "08:00:00.00",
                              datetime(2024, 5, 4, 8, tzinfo=timezone.utc), 0, "0F2A38", 1,
                              "CT01_33~7~start~101~08:00:00.00~0~0F2A38~1\r")
    assert exports.ct01_page([read, read]) == b"CT01_33~7~start~101~08:00:00.00~0~0F2A38~1\r\n" * 2


def test_export_filenames_are_plain_ascii_whatever_the_event_is_called():
    assert exports.export_filename("session", 12, "Spring 10K", "csv") == "session-12-spring-10k.csv"
    assert exports.export_filename("session", 3, 'Évry "10K"\r\n; rm -rf /', "ct01") == \
        "session-3-vry-10k-rm-rf.ct01.txt"
    assert exports.export_filename("event", 4, "", "csv") == "event-4.csv"


# The command: round trips


def test_ct01_export_of_an_event_parses_back_into_the_same_reads(pg_dsn, tmp_path, race):
    result = run("export", "--event", str(race["event"]), "--format", "ct01", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out.ct01"
    assert run("export", "--event", str(race["event"]), "--format", "ct01", "--output", str(out),
               dsn=pg_dsn, cwd=tmp_path).returncode == 0
    data = out.read_bytes()
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 5 and b"\r\r" not in data
    lines = data.split(b"\r\n")[:-1]
    parsed = [parse_tag_bytes(line, timezone.utc, EVENT_DAY) for line in lines]
    assert [fields(read) for read in parsed] == stored_reads(pg_dsn, race["sessions"])
    assert "exported 5 reads" in result.stderr
    # standard output carries the same bytes (text mode would have turned CR LF into something else)
    assert result.stdout.replace("\n", "\r\n") == data.decode()


def test_csv_export_has_the_named_columns_runner_names_and_no_formulas(pg_dsn, tmp_path, race):
    out = tmp_path / "reads.csv"
    result = run("export", "--event", str(race["event"]), "--format", "csv", "--output", str(out),
                 dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = read_csv(out.read_text(encoding="utf-8"))
    assert len(found) == 5
    assert {row["event_name"] for row in found} == {"Spring 10K"}
    assert [int(row["session_id"]) for row in found] == [race["sessions"][0]] * 3 + [race["sessions"][1]] * 2
    by_tag = {row["tag_code"]: row for row in found}
    assert by_tag["101"]["runner_name"] == "Ada Lovelace"
    assert by_tag["999"]["runner_name"] == ""  # not on the roster
    assert by_tag["guntime"]["lap_count"] == "0" and by_tag["guntime"]["read_time"] == "08:00:00.00"
    # the formula-injection guard: tag, runner name and location all start with a quote now
    assert "'=2+5" in by_tag and by_tag["'=2+5"]["runner_name"] == "'-Mallory @SUM(A1)"
    assert by_tag["999"]["location_name"] == "'+cmd"
    for row in found:
        assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values()), row
    finish = next(row for row in found if row["location_name"] == "finish")
    assert (finish["sequence_number"], finish["lap_count"], finish["reader_id"], finish["gator_number"]) == \
        ("1", "3", "ED932A", "7")
    assert datetime.fromisoformat(finish["read_timestamp"]) == datetime(2024, 5, 4, 8, 1, 2, 350000, timezone.utc)


def test_location_filter_exports_only_that_locations_reads(pg_dsn, tmp_path, race):
    result = run("export", "--event", str(race["event"]), "--location", "start", "--format", "ct01",
                 dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = [parse_tag_line(line, timezone.utc, EVENT_DAY) for line in result.stdout.splitlines()]
    assert [fields(read) for read in parsed] == stored_reads(pg_dsn, race["sessions"], "start")
    assert len(parsed) == 3
    result = run("export", "--session", str(race["sessions"][1]), "--location", "finish", "--format", "csv",
                 dsn=pg_dsn, cwd=tmp_path)
    assert [row["tag_code"] for row in read_csv(result.stdout)] == ["101"]


def test_session_export_holds_only_that_session(pg_dsn, tmp_path, race):
    result = run("export", "--session", str(race["other"]), "--format", "csv", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = read_csv(result.stdout)
    assert [(row["event_name"], row["tag_code"]) for row in found] == [("Autumn 5K", "101")]
    assert found[0]["runner_name"] == ""  # Ada is on the Spring 10K's roster, not this one's


def test_export_of_an_empty_session_is_just_the_header(pg_dsn, tmp_path, database):
    session = rows.insert_session(pg_dsn, "Quiet", "Nothing yet")
    result = run("export", "--session", str(session), "--format", "csv", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [",".join(exports.CSV_COLUMNS)]


# The command: refusals


def test_export_refuses_unknown_sessions_and_events_clearly(pg_dsn, tmp_path, race):
    assert_clean_failure(run("export", "--session", "999999", "--format", "csv", dsn=pg_dsn, cwd=tmp_path),
                         1, "no session 999999")
    assert_clean_failure(run("export", "--event", "999999", "--format", "ct01", dsn=pg_dsn, cwd=tmp_path),
                         1, "no event 999999")
    out = tmp_path / "never.csv"
    assert_clean_failure(run("export", "--event", str(race["event"]), "--partner", "default", "--format", "csv",
                             "--output", str(out), dsn=pg_dsn, cwd=tmp_path),
                         1, f"no event {race['event']} of timing partner 'default'")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_export_wants_exactly_one_of_session_and_event(pg_dsn, tmp_path, race):
    assert_clean_failure(run("export", "--format", "csv", dsn=pg_dsn, cwd=tmp_path),
                         1, "exactly one of --session ID and --event ID", "neither")
    assert_clean_failure(run("export", "--session", str(race["sessions"][0]), "--event", str(race["event"]),
                             "--format", "csv", dsn=pg_dsn, cwd=tmp_path),
                         1, "exactly one of --session ID and --event ID", "both")


def test_event_list_shows_ids_partner_key_name_sessions_and_reads(pg_dsn, tmp_path, race):
    result = run("event", "list", "acme", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "PARTNER", "KEY", "NAME", "SESSIONS", "READS"]
    spring = next(line for line in lines if line.startswith(f"{race['event']} "))
    assert spring.split()[1] == "acme" and "Spring 10K" in spring and spring.split()[-2:] == ["2", "5"]
    assert len(lines) == 3  # header, Spring 10K, Autumn 5K
    assert run("event", "list", "nobody", dsn=pg_dsn, cwd=tmp_path).stdout.strip() == "no events"


# Large exports stream


class CountingDatabase:
    """The real database, counting queries and the most rows any one of them returned."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queries = 0
        self.largest_answer = 0
        self.log: list[str] = []

    def run_query(self, sql, params=None):
        self.queries += 1
        self.log.append("query")

        def answered(result):
            self.largest_answer = max(self.largest_answer, len(result))
            return result

        return self.database.run_query(sql, params).addCallback(answered)


@pytest_twisted.ensureDeferred
async def test_a_large_export_is_read_and_written_a_page_at_a_time(pg_dsn, database):
    session = rows.insert_session(pg_dsn, "Marathon", "City Marathon")
    query(pg_dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT s.id, s.timing_partner_id, 'connection:big', n, 'finish', n::text, '09:00:00.00',
               '2024-05-04 09:00:00+00', 0, 'AAAAAA', 1, 'CT01_33~' || n || '~finish~' || n || '~09:00:00.00~0~AAAAAA~1'
        FROM timing_sessions s, generate_series(1, 20000) AS n WHERE s.id = %s""", (session,))
    counting = CountingDatabase(database)
    target = await exports.find_session(counting, session)
    counting.queries, counting.log = 0, []
    chunks: list[bytes] = []

    def write(data: bytes) -> None:
        counting.log.append("write")
        chunks.append(data)

    written = await exports.write_export(counting, target, "ct01", write, page_size=5000)
    assert written == 20000
    assert counting.largest_answer == 5000  # never more than one page in memory
    assert counting.queries == 1 + 5  # where the session starts; four full pages, then one that finds nothing
    assert counting.log == ["query"] * 2 + ["write", "query"] * 4  # each page written before the next is read
    lines = b"".join(chunks).split(b"\r\n")[:-1]
    assert [int(parse_tag_bytes(line, timezone.utc, EVENT_DAY).sequence_number) for line in lines] == \
        list(range(1, 20001))
