"""Memory of the twistd collector process (VmRSS from /proc/<pid>/status; the database
server is a separate process and not counted): idle, with 200 simulated controllers
connected and streaming, and the peak during a burst of reads sent as fast as possible.
"""

from __future__ import annotations

import time

from bench.context import Context, RssSampler, connect, rss_mb, wait_rows
from bench.report import Row, Target
from tests.processes import start_simulator

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
                    f" times for the journal, at most {status.get('reads_awaiting_journal_peak', '?'):,}"
                    " reads awaiting it"))
        print(f"  idle {idle:.0f} MB; burst peak {sampler.peak:.0f} MB", flush=True)
    finally:
        connection.close()
        collector.stop()
