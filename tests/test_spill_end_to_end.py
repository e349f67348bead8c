"""Reads waiting beyond ``--backlog-in-memory`` live only in the journal: the real twistd collector
still stores each of them exactly once after a PostgreSQL outage, and after kill -9 in the middle of
one (the simulator's reads over TCP, a real PostgreSQL stopped and started)."""

from __future__ import annotations

from tests.processes import CollectorProcess, start_simulator, wait_for
from tests.test_fault_tolerance import assert_stored_exactly_once, expected_pairs, stored_pairs

SMALL_MEMORY = ("--backlog-in-memory", "50", "--batch-size", "10")


def _stream(collector: CollectorProcess, tmp_path):
    return start_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "2000",
                           "--rate", "500", "--reconnect-delay", "0.5", "--connect-retries", "-1",
                           "--linger", "3", log_path=tmp_path / "simulator.log")


def _outage_with_reads_on_disk(collector, server, dsn):
    wait_for(lambda: len(stored_pairs(dsn)) > 300, 60, "the stream to be under way")
    server.stop_blocking()
    wait_for(lambda: collector.status()["database_connected"] is False, 30, "/status to report the outage")
    # Far more waiting than the 50 kept in memory: the rest wait in the journal only.
    wait_for(lambda: collector.status()["reads_waiting"] > 500, 60, "reads to pile up on disk")


def test_reads_spilled_to_the_journal_during_an_outage_are_all_stored_once(tmp_path, private_postgres):
    server = private_postgres
    dsn = server.start_blocking()
    collector = CollectorProcess(tmp_path, dsn=dsn, extra_args=SMALL_MEMORY)
    simulator = None
    try:
        collector.start()
        simulator = _stream(collector, tmp_path)
        _outage_with_reads_on_disk(collector, server, dsn)
        server.start_blocking()
        assert_stored_exactly_once(dsn, expected_pairs(("start", "finish"), 2000))
        wait_for(lambda: collector.status()["reads_waiting"] == 0, 60, "the backlog to drain")
        assert "cannot read" not in collector.log()
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        collector.stop()


def test_kill_9_with_reads_spilled_to_the_journal_loses_nothing(tmp_path, private_postgres):
    server = private_postgres
    dsn = server.start_blocking()
    collector = CollectorProcess(tmp_path, dsn=dsn, extra_args=SMALL_MEMORY)
    simulator = None
    try:
        collector.start()
        simulator = _stream(collector, tmp_path)
        _outage_with_reads_on_disk(collector, server, dsn)
        collector.kill()
        server.start_blocking()
        collector.start()
        assert_stored_exactly_once(dsn, expected_pairs(("start", "finish"), 2000))
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        collector.stop()
