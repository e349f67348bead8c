"""Raw data retention: exactly the reads (and rejected lines, and unreferenced connection records)
received more than N days ago go, in batches of short statements, while controllers keep sending;
sessions, events, rosters and resume watermarks stay; ``--dry-run`` only counts.

The accounting is checked in-process against a real PostgreSQL; the rest end to end, with the real
twistd collector, the controller simulator and the ``chronotrack retention`` command.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from chronotrack.storage import retention
from tests import rows
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, start_simulator, wait_for
from tests.test_cli import assert_clean_failure, run

KEPT_TABLES = ("timing_sessions", "timing_events", "timing_partners", "participants", "stream_watermarks",
               "timing_locations")


def insert_reads(dsn: str, session_id: int, count: int, age: str, first_sequence: int = 1,
                 stream: str = "connection:old", connection_id: int | None = None) -> list[int]:
    """``count`` reads received ``age`` ago (an SQL interval), as one statement."""
    return [row[0] for row in query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data,
                                  received_at, connection_id)
        SELECT s.id, s.timing_partner_id, %s, n, 'finish', n::text, '09:00:00.00', now() - %s::interval, 0,
               'AAAAAA', 1, 'CT01_33~' || n || '~finish~' || n || '~09:00:00.00~0~AAAAAA~1',
               now() - %s::interval, %s
        FROM timing_sessions s, generate_series(%s, %s) AS n WHERE s.id = %s RETURNING id""",
                                    (stream, age, age, connection_id, first_sequence, first_sequence + count - 1,
                                     session_id))]


def insert_connection(dsn: str, age: str) -> int:
    return query(dsn, """
        INSERT INTO controller_connections (peer, connected_at, disconnected_at, timing_partner_id)
        SELECT '10.0.0.9:5000', now() - %s::interval, now() - %s::interval, id FROM timing_partners
        WHERE slug = 'default' RETURNING id""", (age, age))[0][0]


def insert_rejected_line(dsn: str, age: str) -> None:
    query(dsn, "INSERT INTO rejected_lines (line, reason, received_at) VALUES ('CT01_33~x', 'malformed',"
               " now() - %s::interval)", (age,))


def kept_counts(dsn: str) -> dict[str, int]:
    return {table: query(dsn, f"SELECT count(*) FROM {table}")[0][0] for table in KEPT_TABLES}


def seed_old_race(dsn: str, old_reads: int) -> dict:
    """Last month's race: ``old_reads`` reads 40 days old, 5 reads just inside 30 days, its roster,
    its watermark, two old rejected lines and one new, and three connection records."""
    session = rows.insert_session(dsn, "Last month", "Old race", status="closed")
    rows.insert_runner(dsn, "1", "Old", "Runner", event_id=rows.event_of_session(dsn, session))
    query(dsn, "INSERT INTO timing_locations (session_id, timing_partner_id, location_name)"
               " SELECT id, timing_partner_id, 'finish' FROM timing_sessions WHERE id = %s", (session,))
    query(dsn, "INSERT INTO stream_watermarks (timing_partner_id, stream_id, location_name, contiguous_through)"
               " SELECT id, 'connection:old', 'finish', %s FROM timing_partners WHERE slug = 'default'", (old_reads,))
    old_connection = insert_connection(dsn, "40 days")
    still_used = insert_connection(dsn, "40 days")  # a kept read points at it
    insert_connection(dsn, "1 hour")
    old = insert_reads(dsn, session, old_reads, "40 days", connection_id=old_connection)
    recent = insert_reads(dsn, session, 5, "29 days 23 hours", first_sequence=old_reads + 1,
                          connection_id=still_used)
    for age in ("40 days", "31 days", "1 day"):
        insert_rejected_line(dsn, age)
    return {"session": session, "old": old, "recent": recent, "old_connection": old_connection,
            "still_used": still_used}


def read_ids(dsn: str) -> set[int]:
    return {row[0] for row in query(dsn, "SELECT id FROM timing_reads")}


# The accounting, in-process


@pytest_twisted.ensureDeferred
async def test_exactly_the_expired_rows_go_in_batches_and_a_dry_run_only_counts(pg_dsn, database):
    old_race = seed_old_race(pg_dsn, 25)
    new_session = rows.insert_session(pg_dsn, "Today", "New race")
    new = insert_reads(pg_dsn, new_session, 3, "1 minute", stream="connection:new")
    before, kept_before = read_ids(pg_dsn), kept_counts(pg_dsn)

    counted = await retention.count_expired(database, 30)
    assert counted.dry_run and counted.removed == {"timing_reads": 25, "rejected_lines": 2,
                                                   "controller_connections": 1}
    assert read_ids(pg_dsn) == before and kept_counts(pg_dsn) == kept_before  # a dry run touches nothing
    assert query(pg_dsn, "SELECT count(*) FROM rejected_lines")[0][0] == 3

    report = await retention.delete_expired(database, 30, reactor, batch_size=10, pause=0)
    assert report.removed == counted.removed and report.complete
    assert report.batches == 3 + 1 + 1  # reads 10 + 10 + 5; one batch each for the two small tables
    assert read_ids(pg_dsn) == set(old_race["recent"]) | set(new)
    assert query(pg_dsn, "SELECT count(*) FROM rejected_lines")[0][0] == 1
    connections = {row[0] for row in query(pg_dsn, "SELECT id FROM controller_connections")}
    assert old_race["old_connection"] not in connections and old_race["still_used"] in connections
    assert len(connections) == 2
    assert kept_counts(pg_dsn) == kept_before  # sessions, events, roster, watermarks, locations stay
    again = await retention.delete_expired(database, 30, reactor, batch_size=10, pause=0)
    assert again.removed == {"timing_reads": 0, "rejected_lines": 0, "controller_connections": 0}


@pytest_twisted.ensureDeferred
async def test_a_run_told_to_stop_stops_between_batches(pg_dsn, database):
    seed_old_race(pg_dsn, 30)
    answers = iter([True, True, False])
    report = await retention.delete_expired(database, 30, reactor, batch_size=10, pause=0,
                                            keep_going=lambda: next(answers))
    assert not report.complete and report.batches == 2 and report.reads == 20
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 15  # 10 old and the 5 recent ones


# The command


def test_retention_command_dry_run_reports_counts_and_removes_nothing(pg_dsn, tmp_path):
    assert run("event", "list", dsn=pg_dsn, cwd=tmp_path).returncode == 0  # the schema
    seed_old_race(pg_dsn, 12)
    before = read_ids(pg_dsn)
    result = run("retention", "--dry-run", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would delete" in result.stdout and "(30 days)" in result.stdout
    table = dict(line.split() for line in result.stdout.splitlines()[2:])
    assert table == {"timing_reads": "12", "rejected_lines": "2", "controller_connections": "1"}
    assert read_ids(pg_dsn) == before

    result = run("retention", "--days", "35", "--batch-size", "5", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("deleted rows received before ") and "(35 days)" in lines[0]
    assert dict(line.split() for line in lines[2:5]) == {"timing_reads": "12", "rejected_lines": "1",
                                                          "controller_connections": "1"}
    assert lines[5] == "in 5 batches of at most 5 rows"  # reads 5 + 5 + 2, then one each
    assert len(read_ids(pg_dsn)) == 5
    assert_clean_failure(run("retention", "--days", "0", dsn=pg_dsn, cwd=tmp_path), 1, "--days")


# End to end: while a stream is being stored


def test_retention_by_hand_removes_old_reads_while_a_controller_stream_is_stored(pg_dsn, tmp_path):
    assert run("event", "list", dsn=pg_dsn, cwd=tmp_path).returncode == 0  # the schema
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn).start()
    try:
        old_race = seed_old_race(pg_dsn, 20_000)
        simulator = start_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "1500",
                                    "--rate", "300", "--event-name", "Live race", "--linger", "0.5", "--quiet",
                                    log_path=tmp_path / "simulator.log")
        try:
            new_reads = "SELECT count(*) FROM timing_reads WHERE received_at > now() - interval '1 hour'"
            wait_for(lambda: query(pg_dsn, new_reads)[0][0] > 100, 60, "the stream to be stored")
            result = run("retention", "--batch-size", "1000", dsn=pg_dsn, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            storing_during = query(pg_dsn, new_reads)[0][0]
            assert storing_during < 3000, "the stream ended before retention ran; nothing was tested"
            assert simulator.wait(120) == 0, (tmp_path / "simulator.log").read_text()
        finally:
            if simulator.poll() is None:
                simulator.kill()
        wait_for(lambda: query(pg_dsn, new_reads)[0][0] >= 3000, 60, "every new read stored")
        lines = result.stdout.splitlines()
        assert dict(line.split() for line in lines[2:5])["timing_reads"] == "20000"
        assert int(lines[5].split()[1]) >= 20  # 20,000 reads, at most 1,000 per statement
        remaining = read_ids(pg_dsn)
        assert not remaining & set(old_race["old"])  # every old read gone
        assert set(old_race["recent"]) <= remaining  # the ones inside 30 days kept
        live = query(pg_dsn, "SELECT location_name, count(DISTINCT sequence_number) FROM timing_reads r"
                             " JOIN timing_sessions s ON s.id = r.session_id WHERE s.event_name = 'Live race'"
                             " AND r.tag_code <> 'guntime' GROUP BY 1 ORDER BY 1")
        assert live == [("finish", 1500), ("start", 1500)]  # every new read present
        assert query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 3000 + 5
        assert collector.status()["database_connected"]
    finally:
        collector.stop()


def test_the_collector_deletes_expired_reads_by_itself_in_batches(pg_dsn, tmp_path):
    assert run("event", "list", dsn=pg_dsn, cwd=tmp_path).returncode == 0  # the schema
    old_race = seed_old_race(pg_dsn, 12_000)
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, extra_args=("--retention-days", "30")).start()
    try:
        wait_for(lambda: "retention: deleted 12000 reads" in collector.log(), 60, "the collector's retention run")
        assert "in 5 batches" in collector.log()  # 5,000 + 5,000 + 2,000 reads, then one per small table
        run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "50", "--rate", "0",
                      "--event-name", "Live race", "--linger", "0.3", "--quiet")
        wait_for(lambda: len(read_ids(pg_dsn)) == 5 + 50, 30, "the new reads stored")
        assert set(old_race["recent"]) <= read_ids(pg_dsn)
        assert kept_counts(pg_dsn)["timing_sessions"] == 2
    finally:
        collector.stop()
