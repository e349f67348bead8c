"""The whole collector as a timer runs it: real twistd, embedded PostgreSQL, simulator over TCP."""

from __future__ import annotations

import pytest

from chronotrack.simulator import SimulatorConfig, build_session
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, wait_for

READ_COLUMNS = ("location_name, sequence_number, tag_code, lap_count, reader_id, gator_number,"
                " read_time, raw_data, stream_id")


def expected_rows(config: SimulatorConfig, index: int = 0) -> dict[tuple[str, int], tuple]:
    """What the controller holds, keyed by (location, sequence)."""
    rows = {}
    for location, reads in build_session(config, index).items():
        for read in reads:
            rows[(location, read.sequence_number)] = (
                read.tag_code, read.lap_count, read.reader_id, read.gator_number)
    return rows


@pytest.fixture
def collector(tmp_path):
    process = CollectorProcess(tmp_path).start()
    yield process
    process.stop()
    if process.process.returncode != 0:
        print(process.log())


def test_two_locations_of_1000_reads_and_gun_times_are_stored_exactly_once(collector):
    """Issue 2's end-to-end check: every read in timing_reads once, right fields, /status agrees."""
    run_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "1000", "--gun-time",
                  "--rate", "0", "--event-name", "Turkey Trot", "--event-id", "77",
                  "--linger", "0.5", "--quiet")
    config = SimulatorConfig(locations=("start", "finish"), reads=1000, gun_time=True)
    expected = expected_rows(config)
    assert len(expected) == 2002

    dsn = collector.embedded_dsn
    wait_for(lambda: query(dsn, "SELECT count(*) FROM timing_reads")[0][0] >= len(expected), 60,
             "2002 reads in timing_reads")
    rows = query(dsn, f"SELECT {READ_COLUMNS} FROM timing_reads")
    stored = {(row[0], row[1]): row for row in rows}
    assert len(rows) == len(stored) == len(expected), "a read is missing or stored twice"
    assert set(stored) == set(expected)
    for key, (tag, lap, reader, gator) in expected.items():
        row = stored[key]
        assert (row[2], row[3], row[4], row[5]) == (tag, lap, reader, gator), key
        fields = row[7].split("~")  # raw_data is the original line
        assert (fields[3], int(fields[5]), fields[6], int(fields[7])) == (tag, lap, reader, gator)
        assert row[6] == fields[4]  # read_time keeps the time as sent
    gun_times = query(dsn, "SELECT location_name, sequence_number FROM timing_reads"
                           " WHERE tag_code = 'guntime' ORDER BY location_name")
    assert gun_times == [("finish", 1), ("start", 1)]
    assert query(dsn, "SELECT event_name, event_id, status FROM timing_sessions") == [("Turkey Trot", "77", "active")]

    status = wait_for(lambda: (s := collector.status())["total_reads"] == 2002 and s, 30, "/status total")
    assert status["service"] == "timing-collector" and status["status"] == "running"
    assert status["tcp_port"] == collector.ctp01_port
    assert status["database_connected"] is True
    assert status["current_session"] == query(dsn, "SELECT id FROM timing_sessions")[0][0]
    assert status["connections"] == 0  # the simulator has gone


def test_the_operators_psql_queries_answer_after_a_race(collector):
    run_simulator(collector.ctp01_port, "--locations", "start,5k,finish", "--reads", "20",
                  "--rate", "0", "--linger", "0.3", "--quiet")
    dsn = collector.embedded_dsn
    wait_for(lambda: query(dsn, "SELECT count(*) FROM timing_reads")[0][0] == 60, 30, "60 reads")
    assert query(dsn, "SELECT COUNT(*) FROM timing_sessions") == [(1,)]
    assert len(query(dsn, "SELECT * FROM timing_reads ORDER BY read_timestamp DESC LIMIT 3")) == 3
    total, sessions, locations, latest = query(
        dsn, "SELECT COUNT(*) AS total_reads, COUNT(DISTINCT session_id) AS sessions,"
             " COUNT(DISTINCT location_name) AS locations, MAX(read_timestamp) AS latest_read"
             " FROM timing_reads")[0]
    assert (total, sessions, locations) == (60, 1, 3) and latest is not None


def test_malformed_lines_are_kept_as_rejected_and_good_reads_around_them_are_stored(collector):
    run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "100", "--rate", "0",
                  "--malformed-every", "10", "--linger", "0.5", "--quiet")
    dsn = collector.embedded_dsn
    wait_for(lambda: query(dsn, "SELECT count(*) FROM timing_reads")[0][0] == 100, 30, "100 reads")
    rejected = wait_for(lambda: (n := query(dsn, "SELECT count(*) FROM rejected_lines")[0][0]) >= 10 and n,
                        30, "rejected lines")
    assert rejected == 10
    assert collector.status()["lines_rejected"] == 10


def test_collector_port_taken_gives_a_clear_error(collector, tmp_path):
    second = CollectorProcess(tmp_path / "second")
    second.ctp01_port = collector.ctp01_port
    second.process = None
    import subprocess

    result = subprocess.run(second.command(), capture_output=True, text=True, timeout=60,
                            cwd=second.work_dir)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"cannot listen on tcp:{collector.ctp01_port}" in output
    assert "Traceback" not in output


def test_a_wrong_dsn_is_reported_without_its_password(tmp_path):
    process = CollectorProcess(tmp_path, dsn="host=127.0.0.1 port=1 dbname=x user=x password=hunter2")
    process.process = None
    import subprocess
    import time

    proc = subprocess.Popen(process.command(), stdout=open(process.log_path, "w"),
                            stderr=subprocess.STDOUT, cwd=process.work_dir)
    process.process = proc
    try:
        wait_for(lambda: "cannot reach PostgreSQL" in process.log(), 30, "the error message")
        time.sleep(1)
        status = process.status()
        assert status["database_connected"] is False
    finally:
        process.stop()
    assert "hunter2" not in process.log()
    assert "password=***" in process.log()


def test_health_answers_with_status_and_an_iso_timestamp(collector):
    from datetime import datetime

    from tests.processes import get_json

    health = get_json(f"http://127.0.0.1:{collector.status_port}/health")
    assert health["status"] == "healthy"
    assert datetime.fromisoformat(health["timestamp"]).tzinfo is not None


def test_second_collector_on_the_same_data_directory_stops_with_a_clear_error(collector, tmp_path):
    import subprocess

    second = CollectorProcess(tmp_path / "second", data_dir=collector.data_dir)
    result = subprocess.run(second.command(), capture_output=True, text=True, timeout=60, cwd=second.work_dir)
    output = result.stdout + result.stderr
    assert "cannot start: journal directory" in output and "is in use by another journal" in output
    assert "Is another collector using --data-dir" in output
    assert collector.status()["database_connected"] is True  # the first one is untouched
