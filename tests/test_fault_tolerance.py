"""Issue 4: no read lost or stored twice, whatever a race day does to the collector.

Each test runs the real ``twistd chronotrack-collector``, a real PostgreSQL and the
simulator over TCP, injects one fault, and asserts the exact set of stored
(location, sequence) pairs.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from chronotrack.simulator import SimulatorConfig, build_session
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, start_simulator, wait_for


def expected_pairs(locations: tuple[str, ...], reads: int, controllers: int = 1,
                   distinct_locations: bool = False) -> set[tuple[str, str, int]]:
    """(stream, location, sequence) of every read the simulated controllers hold."""
    config = SimulatorConfig(locations=locations, reads=reads, distinct_locations=distinct_locations)
    pairs = set()
    for index in range(controllers):
        for location, session_reads in build_session(config, index).items():
            pairs |= {(f"connection:sim-{index}", location, read.sequence_number) for read in session_reads}
    return pairs


def stored_pairs(dsn: str) -> list[tuple[str, str, int]]:
    return query(dsn, "SELECT stream_id, location_name, sequence_number FROM timing_reads")


def assert_stored_exactly_once(dsn: str, expected: set, timeout: float = 120.0) -> None:
    wait_for(lambda: len(stored_pairs(dsn)) >= len(expected), timeout, f"{len(expected)} stored reads")
    rows = stored_pairs(dsn)
    assert len(rows) == len(set(rows)), "a read was stored twice"
    assert set(rows) == expected, (f"missing {sorted(expected - set(rows))[:10]}, "
                                   f"unexpected {sorted(set(rows) - expected)[:10]}")


def start_commands(simulator_output: str) -> list[str]:
    return re.findall(r"received: (start\S*)", simulator_output)


@pytest.fixture
def collector(tmp_path, pg_dsn):
    process = CollectorProcess(tmp_path, dsn=pg_dsn, extra_args=("--ping-interval", "1", "--idle-timeout", "3"))
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop()


def test_controller_that_drops_mid_stream_resumes_from_the_next_sequence(collector, pg_dsn):
    collector.start()
    result = run_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "1000",
                           "--rate", "2000", "--drop-after", "700", "--reconnect-delay", "0.5",
                           "--linger", "1")
    assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 1000))
    commands = start_commands(result.stdout)
    first, after_reconnect = commands[:2], commands[2:]
    assert sorted(first) == ["start~finish", "start~start"]
    assert after_reconnect, f"no start after the reconnect: {result.stdout[-2000:]}"
    assert "start" not in after_reconnect, "the reconnect replayed the whole session with a bare start"
    for command in after_reconnect:
        assert re.fullmatch(r"start~(start|finish)~\d+", command), command
    resumed = {c.split("~")[1]: int(c.split("~")[2]) for c in after_reconnect}
    assert sum(n - 1 for n in resumed.values()) >= 600, f"resumed too early: {resumed}"


def test_kill_9_mid_stream_then_restart_loses_nothing_and_stores_nothing_twice(collector, pg_dsn, tmp_path):
    collector.start()
    simulator = start_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "3000",
                                "--rate", "600", "--reconnect-delay", "0.5", "--connect-retries", "-1",
                                "--linger", "3", log_path=tmp_path / "simulator.log")
    try:
        wait_for(lambda: len(stored_pairs(pg_dsn)) > 500, 60, "the stream to be under way")
        collector.kill()
        stored_at_kill = len(stored_pairs(pg_dsn))
        assert stored_at_kill < 6000, "the stream finished before the kill; nothing was tested"
        collector.start()
        assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 3000))
        assert simulator.wait(120) == 0
    finally:
        if simulator.poll() is None:
            simulator.kill()
    assert "start~start~" in (tmp_path / "simulator.log").read_text()


def test_sigterm_flushes_pending_reads_and_closes_connections(collector, pg_dsn, tmp_path):
    collector.start()
    simulator = start_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "5000",
                                "--rate", "1000", "--reconnect-delay", "0.2", "--connect-retries", "3",
                                "--linger", "0", log_path=tmp_path / "simulator.log")
    try:
        wait_for(lambda: len(stored_pairs(pg_dsn)) > 200, 60, "the stream to be under way")
        # twistd ends itself with the signal that stopped it: systemd counts that as clean.
        assert collector.stop() in (0, -signal.SIGTERM)
        stopped_at = time.monotonic()
        log = collector.log()
        received = int(re.findall(r"(\d+) reads received", log)[-1]) if re.findall(r"(\d+) reads received", log) else None
        rows = stored_pairs(pg_dsn)
        assert len(rows) == len(set(rows))
        assert "not yet in the database" not in log, "SIGTERM left reads behind in the journal"
        if received is not None:
            assert len(rows) == received, "reads received before SIGTERM are not all stored"
        assert time.monotonic() - stopped_at < 60
    finally:
        simulator.kill()
        simulator.wait(10)


def test_postgresql_outage_mid_stream_is_ridden_out_and_reported(tmp_path, private_postgres):
    server = private_postgres
    dsn = server.start_blocking()
    collector = CollectorProcess(tmp_path, dsn=dsn)
    simulator = None
    try:
        collector.start()
        simulator = start_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "3000",
                                    "--rate", "500", "--reconnect-delay", "0.5", "--connect-retries", "-1",
                                    "--linger", "5", log_path=tmp_path / "simulator.log")
        wait_for(lambda: len(stored_pairs(dsn)) > 300, 60, "the stream to be under way")
        server.stop_blocking()
        outage = wait_for(lambda: (s := collector.status())["database_connected"] is False and s, 30,
                          "/status to report the outage")
        waiting = wait_for(lambda: (s := collector.status())["reads_waiting"] > 100 and s, 30,
                           "reads to pile up while the database is down")
        assert waiting["database_connected"] is False
        time.sleep(4)  # several seconds of outage while reads keep arriving
        during = collector.status()
        assert during["reads_received"] > waiting["reads_received"], "reads stopped being accepted"
        server.start_blocking()
        assert_stored_exactly_once(dsn, expected_pairs(("start", "finish"), 3000))
        after = wait_for(lambda: (s := collector.status())["reads_waiting"] == 0 and s, 60, "the backlog to drain")
        assert after["database_connected"] is True
        assert query(dsn, "SELECT count(*) FROM rejected_lines") == [(0,)]
        assert outage["database_connected"] is False
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        collector.stop()


def test_200_controllers_at_once_each_read_stored_once(collector, pg_dsn):
    # All 200 connect from 127.0.0.1: past the default --max-connections-per-address.
    collector.extra_args += ("--max-connections-per-address", "200")
    collector.start()
    run_simulator(collector.ctp01_port, "--controllers", "200", "--locations", "start,finish",
                  "--reads", "50", "--rate", "100", "--linger", "1", "--quiet", timeout=300)
    assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 50, controllers=200))


def test_half_open_controller_is_closed_by_keepalive_and_its_reconnect_resumed(collector, pg_dsn, tmp_path):
    collector.start()
    result = run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "600", "--rate", "300",
                           "--vanish-after", "200", "--reconnect-delay", "0.5", "--linger", "5")
    assert_stored_exactly_once(pg_dsn, expected_pairs(("finish",), 600))
    assert re.search(r"start~finish~\d+", result.stdout), result.stdout[-2000:]
    log = collector.log()
    assert re.search(r"sent nothing for \d+ s; closing the connection", log), "keepalive never closed it"
    assert "aborted locally" in log
    status = wait_for(lambda: (s := collector.status())["connections"] == 0 and s, 30,
                      "every connection to be closed, the half-open one included")
    assert status["connections"] == 0
