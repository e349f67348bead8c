"""Memory of the twistd collector process (VmRSS from /proc/<pid>/status; the database
server is a separate process and not counted): idle, with 200 simulated controllers
connected and streaming, the peak during a burst of reads sent as fast as possible, and
the peak while as many reads wait through a PostgreSQL outage (beyond
``--backlog-in-memory`` they wait in the journal, not in memory).
"""

from __future__ import annotations

import time

from bench.context import Context, RssSampler, connect, rss_mb, wait_rows
from bench.report import Row, Target
from tests.processes import start_simulator, wait_for

STEADY_TARGET = Target("<", 80, "MB")
BURST_TARGET = Target("<", 150, "MB")
CONTROLLERS = 200
RATE_PER_LOCATION = 5  # 200 controllers x 2 locations x 5 = 2,000 reads/s
COLLECTOR_ARGS: tuple[str, ...] = ()  # extra twistd options, to compare settings such as --backlog-in-memory


def run(ctx: Context) -> None:
    print("memory: VmRSS of the twistd process", flush=True)
    collector = ctx.collector("memory", extra_args=COLLECTOR_ARGS)
    pid = collector.process.pid
    connection = connect(collector.dsn)
    try:
        time.sleep(2)
        idle = rss_mb(pid)
        ctx.add(Row("memory", "idle", idle, "MB", STEADY_TARGET))

        seconds = ctx.mode.memory_streaming_seconds
        reads = int(RATE_PER_LOCATION * seconds)
        simulator = start_simulator(collector.ctp01_port, "--controllers", str(CONTROLLERS), "--locations",
                                    "start,finish", "--reads", str(reads), "--rate", str(RATE_PER_LOCATION),
                                    "--linger", "1", "--quiet", log_path=collector.work_dir / "sim-200.log")
        with RssSampler(pid) as sampler:
            simulator.wait(seconds + 120)
        streamed = CONTROLLERS * 2 * reads
        wait_rows(connection, "SELECT count(*) FROM timing_reads", streamed, timeout=60)
        ctx.add(Row("memory", f"{CONTROLLERS} controllers streaming {CONTROLLERS * 2 * RATE_PER_LOCATION:,} reads/s"
                    " (peak)", sampler.peak, "MB", STEADY_TARGET, f"{seconds:.0f} s"))

        burst = ctx.mode.memory_burst_reads
        per_location = burst // 8  # 4 controllers x 2 locations
        simulator = start_simulator(collector.ctp01_port, "--controllers", "4", "--locations", "start,finish",
                                    "--reads", str(per_location), "--rate", "0", "--linger", "1", "--quiet",
                                    "--event-id", "burst", "--connection-id", "burst",
                                    log_path=collector.work_dir / "sim-burst.log")
        with RssSampler(pid) as sampler:
            _, stored = wait_rows(connection, "SELECT count(*) FROM timing_reads", streamed + per_location * 8,
                                  timeout=300, interval=0.1)
            simulator.wait(60)
            time.sleep(0.5)
        status = collector.status()
        ctx.add(Row("memory", f"peak during a {per_location * 8:,}-read burst", sampler.peak, "MB", BURST_TARGET,
                    f"after: {rss_mb(pid):.0f} MB; controllers paused {status.get('pauses_for_journal', '?')}"
                    f" times for the journal, at most {status.get('reads_awaiting_journal_peak', '?')}"
                    " reads awaiting it"))
        print(f"  idle {idle:.0f} MB; burst peak {sampler.peak:.0f} MB", flush=True)
    finally:
        connection.close()
        collector.stop()
    outage(ctx)


def outage(ctx: Context) -> None:
    """The burst's reads sent while PostgreSQL is down: all of them wait in the collector."""
    server = ctx.postgres.embedded
    if server is None:
        ctx.note("memory: no outage figure (the bench's PostgreSQL is CHRONOTRACK_TEST_DSN's, not its own)")
        return
    collector = ctx.collector("memory-outage", extra_args=COLLECTOR_ARGS)
    pid = collector.process.pid
    reads = ctx.mode.memory_burst_reads
    simulator = None
    try:
        server.stop_blocking()
        wait_for(lambda: collector.status()["database_connected"] is False, 60, "/status to report the outage")
        simulator = start_simulator(collector.ctp01_port, "--controllers", "4", "--locations", "start,finish",
                                    "--reads", str(reads // 8), "--rate", "0", "--linger", "1", "--quiet",
                                    "--reconnect-delay", "0.5", "--connect-retries", "-1",
                                    log_path=collector.work_dir / "sim-outage.log")
        with RssSampler(pid) as sampler:
            wait_for(lambda: collector.status()["reads_received"] >= reads // 8 * 8, 300,
                     "every read to be received", interval=0.2)
            time.sleep(0.5)
        waiting = collector.status()["reads_waiting"]
        ctx.add(Row("memory", f"peak with {waiting:,} reads waiting through a database outage", sampler.peak, "MB",
                    BURST_TARGET))
    finally:
        server.start_blocking()  # the parts after this one need it
        if simulator is not None:
            simulator.kill()
        collector.stop()
