"""Memory of the real ``twistd chronotrack-collector`` web layer with one /stream client
that stopped reading (a phone gone to sleep) while reads stream in fast.

    .venv/bin/python bench/stalled_stream_rss.py [--reads 20000] [--location-bytes 900]

Prints the web process's VmRSS before, while and after the reads, whether the stalled
client was disconnected, and how many events a healthy client received. Uses an embedded
PostgreSQL (or ``CHRONOTRACK_TEST_DSN``) like the tests do.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import rows  # noqa: E402
from tests.postgres import PostgresForTests, query  # noqa: E402
from tests.processes import CollectorProcess, EventStream  # noqa: E402

BATCH = 500


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def stalled_client(port: int) -> socket.socket:
    """Asks for /stream and never reads a byte after that."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
    return client


def was_disconnected(client: socket.socket) -> bool:
    """Drain what the kernel holds; a closed or reset connection ends the drain."""
    client.settimeout(2.0)
    try:
        while client.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def wait_for_schema(dsn: str) -> None:
    deadline = time.monotonic() + 60
    while not query(dsn, "SELECT to_regclass('timing_events') IS NOT NULL")[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError("the collector never migrated the database")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=20000)
    parser.add_argument("--location-bytes", type=int, default=900)
    arguments = parser.parse_args()
    postgres = PostgresForTests()
    dsn = postgres.create_database()
    work = Path(tempfile.mkdtemp(prefix="stalled-"))
    collector = CollectorProcess(work, dsn=dsn, web=True).start()
    try:
        wait_for_schema(dsn)
        rows.insert_session(dsn)
        pid = collector.process.pid
        base = f"http://127.0.0.1:{collector.web_port}"
        healthy = EventStream(base + "/stream")
        received: list[int] = []

        def read_healthy() -> None:
            try:
                while True:
                    received.extend(event["id"] for event in healthy.events(1))
            except (AssertionError, AttributeError, OSError, ValueError):
                return  # closed at the end

        threading.Thread(target=read_healthy, daemon=True).start()
        stalled = stalled_client(collector.web_port)
        time.sleep(1.0)
        before = rss_kib(pid)
        peak = before
        location = "L" * arguments.location_bytes
        inserted = 0
        while inserted < arguments.reads:
            query(dsn, f"""
                INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name,
                                          tag_code, read_time, read_timestamp, lap_count, reader_id, gator_number,
                                          raw_data)
                SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'bench', {inserted} + n, %s, n::text,
                       '08:00:00.00', now(), 1, 'AAAAAA', 1, 'raw' FROM generate_series(1, {BATCH}) AS n""",
                  (location,))
            inserted += BATCH
            time.sleep(0.05)
            peak = max(peak, rss_kib(pid))
        deadline = time.monotonic() + 60
        while len(received) < inserted and time.monotonic() < deadline:
            time.sleep(0.1)
            peak = max(peak, rss_kib(pid))
        during = rss_kib(pid)
        disconnected = was_disconnected(stalled)
        stalled.close()
        time.sleep(2.0)
        after = rss_kib(pid)
        print(f"reads inserted: {inserted} (~{inserted * (arguments.location_bytes + 250) / 1e6:.1f} MB of events)")
        print(f"healthy client received: {len(received)} events")
        print(f"stalled client disconnected by the server: {disconnected}")
        print(f"web process VmRSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
              f"at the end {during / 1024:.1f} MiB, 2 s after the stalled client left {after / 1024:.1f} MiB")
        healthy.close()
    finally:
        collector.stop()
        postgres.drop_database(dsn)
        postgres.stop()


if __name__ == "__main__":
    main()
