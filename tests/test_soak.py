"""A long soak: many controllers streaming for minutes while faults repeat.

Not part of `make test` (marked slow); run it with `make soak`. Length:
CHRONOTRACK_SOAK_SECONDS (default 180). Faults cycle: kill -9 of the collector and a
restart, PostgreSQL stopped for 5 s, SIGTERM and a restart, one controller dropping.
At the end every read the controllers hold must be stored exactly once.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.processes import CollectorProcess, start_simulator
from tests.test_fault_tolerance import assert_stored_exactly_once, expected_pairs

SOAK_SECONDS = float(os.environ.get("CHRONOTRACK_SOAK_SECONDS", "180"))
CONTROLLERS = 50
RATE = 20  # reads per second per location per controller: 2000 reads/s in all


@pytest.mark.slow
def test_soak_with_repeated_faults_stores_every_read_exactly_once(tmp_path, private_postgres):
    server = private_postgres
    dsn = server.start_blocking()
    collector = CollectorProcess(tmp_path, dsn=dsn, extra_args=("--ping-interval", "2", "--idle-timeout", "6"))
    reads = int(SOAK_SECONDS * RATE * 0.8)
    simulator = None
    faults = []
    try:
        collector.start()
        simulator = start_simulator(
            collector.ctp01_port, "--controllers", str(CONTROLLERS), "--locations", "start,finish",
            "--reads", str(reads), "--rate", str(RATE), "--reconnect-delay", "1", "--connect-retries", "-1",
            "--linger", "20", "--quiet", log_path=tmp_path / "simulator.log")
        started = time.monotonic()
        cycle = 0
        while time.monotonic() - started < SOAK_SECONDS * 0.8:
            time.sleep(15)
            kind = ("kill -9", "database outage", "sigterm")[cycle % 3]
            cycle += 1
            faults.append((round(time.monotonic() - started), kind))
            if kind == "kill -9":
                collector.kill()
                collector.start()
            elif kind == "database outage":
                server.stop_blocking()
                time.sleep(5)
                server.start_blocking()
            else:
                collector.stop()
                collector.start()
        assert_stored_exactly_once(dsn, expected_pairs(("start", "finish"), reads, controllers=CONTROLLERS),
                                   timeout=SOAK_SECONDS)
        assert simulator.wait(SOAK_SECONDS) == 0
        total = CONTROLLERS * 2 * reads
        print(f"soak: {total} reads from {CONTROLLERS} controllers over {time.monotonic() - started:.0f} s, "
              f"faults {faults}: every read stored exactly once")
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        collector.stop()
