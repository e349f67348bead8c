"""Collector throughput and store latency: real twistd, embedded PostgreSQL, simulator over TCP.

    make bench                      # defaults below
    .venv/bin/python bench/throughput.py --controllers 50 --reads 2000

Prints figures and ratios; it asserts nothing about time (tests never do).
- ingest rate: stored reads per second, from the first read stored to the last
- write amplification: database insert statements per read (batching at work)
- latency: how long after a read is written to the collector's socket it is in
  timing_reads, one read at a time, with this script playing the controller
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.postgres import query  # noqa: E402
from tests.processes import CollectorProcess, start_simulator, wait_for  # noqa: E402


def count(dsn: str) -> int:
    return query(dsn, "SELECT count(*) FROM timing_reads")[0][0]


def socket_to_database_latencies(port: int, dsn: str, reads: int) -> list[float]:
    """Play a controller by hand: greet, wait for start, then send one read at a time."""
    connection = socket.create_connection(("127.0.0.1", port))
    stream = connection.makefile("rwb")
    stream.write(b"BenchClient~1.0~CTP01\r\n")
    stream.flush()
    for line in stream:
        text = line.decode().strip()
        if text == "getlocations":
            stream.write(b"ack~getlocations~latency\r\n")
        elif text == "geteventinfo":
            stream.write(b"ack~geteventinfo~Bench~1~latency\r\n")
        elif text == "getconnectionid":
            stream.write(b"ack~getconnectionid~bench-latency\r\n")
        elif text.startswith("start"):
            break
        stream.flush()
    latencies = []
    for sequence in range(1, reads + 1):
        line = f"CT01_33~{sequence}~latency~{sequence}~2026-11-24T09:00:00.00~0~BE0001~1\r\n"
        sent = time.monotonic()
        stream.write(line.encode())
        stream.flush()
        wait_for(lambda: query(dsn, "SELECT count(*) FROM timing_reads WHERE location_name = 'latency'")[0][0]
                 >= sequence, 30, "the read", interval=0.0005)
        latencies.append(time.monotonic() - sent)
    connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controllers", type=int, default=20)
    parser.add_argument("--locations", default="start,finish")
    parser.add_argument("--reads", type=int, default=2500, help="per location per controller")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ctbench-", dir="/tmp"))
    work.chmod(0o755)
    collector = CollectorProcess(work).start()
    dsn = collector.embedded_dsn
    try:
        total = args.controllers * len(args.locations.split(",")) * args.reads
        print(f"bulk: {args.controllers} controllers x {args.locations} x {args.reads} reads = {total} reads")
        transactions_before = query(dsn, "SELECT xact_commit FROM pg_stat_database"
                                         " WHERE datname = current_database()")[0][0]
        started = time.monotonic()
        simulator = start_simulator(collector.ctp01_port, "--controllers", str(args.controllers),
                                    "--locations", args.locations, "--reads", str(args.reads),
                                    "--rate", "0", "--linger", "2", "--quiet", log_path=work / "sim.log")
        wait_for(lambda: count(dsn) > 0, 60, "the first stored read", interval=0.01)
        first_stored = time.monotonic()
        wait_for(lambda: count(dsn) >= total, 600, f"{total} stored reads", interval=0.05)
        finished = time.monotonic()
        simulator.wait(60)
        status = collector.status()
        transactions = query(dsn, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0][0]
        print(f"  stored {count(dsn)} reads in {finished - started:.2f} s from the first connect"
              f" ({finished - first_stored:.2f} s from the first stored read)")
        print(f"  ingest rate: {total / (finished - first_stored):,.0f} reads/s")
        print(f"  database transactions per read: {(transactions - transactions_before) / total:.4f}"
              f"  (1.0 would be one round trip per read; includes this script's polling)")
        print(f"  /status total_reads={status['total_reads']} duplicates_skipped={status['duplicates_skipped']}")

        print("latency: 50 single reads, each timed from the socket write until it is in timing_reads")
        latencies = socket_to_database_latencies(collector.ctp01_port, dsn, 50)
        print(f"  median {statistics.median(latencies) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms "
              f"(batch delay is 5 ms: ratio median/batch-delay {statistics.median(latencies) / 0.005:.1f})")
    finally:
        collector.stop()
        print(f"collector log: {collector.log_path}")


if __name__ == "__main__":
    main()
