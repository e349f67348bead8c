"""A burst from controllers sending as fast as they can: the real twistd collector pauses them
while its journal is behind, so the reads it holds before they are durable stay bounded, reads
them again once the journal has caught up, and stores every read exactly once (the simulator's
reads over TCP, a real PostgreSQL), even when killed while statements are sent ahead.
"""

from __future__ import annotations

from chronotrack.storage.pgstore import default_journal_queue_limit
from tests.processes import CollectorProcess, run_simulator, start_simulator, wait_for
from tests.test_fault_tolerance import assert_stored_exactly_once, expected_pairs, stored_pairs

BATCH_SIZE = 50  # small journal batches: the journal falls behind the parser at once
CONTROLLERS = 4
READS = 5000  # per location per controller
TCP_CHUNK = 65536  # what Twisted reads from a socket at once (tcp.Connection.bufferSize)
SHORTEST_LINE = 40  # bytes of a simulated tag line, at least


def test_a_burst_pauses_the_controllers_while_the_journal_catches_up_and_loses_nothing(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, extra_args=(
        "--batch-size", str(BATCH_SIZE), "--max-connections-per-address", "100"))
    try:
        collector.start()
        run_simulator(collector.ctp01_port, "--controllers", str(CONTROLLERS), "--locations", "start,finish",
                      "--reads", str(READS), "--rate", "0", "--linger", "1", "--quiet")
        assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), READS, controllers=CONTROLLERS))
        status = collector.status()
        assert status["pauses_for_journal"] > 0, "the journal never fell behind: the burst tested nothing"
        # Once paused, only the rest of the chunk being parsed is still taken in.
        limit = default_journal_queue_limit(BATCH_SIZE)
        assert status["reads_awaiting_journal_peak"] <= limit + TCP_CHUNK // SHORTEST_LINE, status
        assert status["controllers_paused"] is False
    finally:
        collector.stop()


def test_kill_9_while_statements_are_sent_ahead_then_restart_stores_every_read_once(tmp_path, pg_dsn):
    """A burst deep enough that the collector sends statements ahead (0020); kill -9 while they are
    in PostgreSQL: the journal still holds every read not yet released, and the restart stores the
    rest, none twice."""
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, extra_args=(
        "--write-batch-size", "2000", "--max-connections-per-address", "100"))
    simulator = None
    try:
        collector.start()
        simulator = start_simulator(collector.ctp01_port, "--controllers", str(CONTROLLERS), "--locations",
                                    "start,finish", "--reads", "10000", "--rate", "0", "--reconnect-delay", "0.5",
                                    "--connect-retries", "-1", "--linger", "3", "--quiet",
                                    log_path=tmp_path / "simulator.log")
        wait_for(lambda: collector.status()["statements_sent_ahead"] > 2, 60, "statements sent ahead")
        collector.kill()
        total = CONTROLLERS * 2 * 10000
        assert len(stored_pairs(pg_dsn)) < total, "the burst was stored before the kill; nothing was tested"
        collector.start()
        assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 10000, controllers=CONTROLLERS))
        assert simulator.wait(120) == 0
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        collector.stop()
