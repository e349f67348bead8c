"""What every part of the suite shares: the mode's counts, the private PostgreSQL server,
a scratch folder, and small blocking helpers (count rows, read a process's VmRSS).

The collector itself is ``tests.processes.CollectorProcess``: the real ``twistd``.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench.report import Row
from tests.postgres import PostgresForTests
from tests.processes import CollectorProcess


@dataclass(frozen=True)
class Mode:
    name: str
    ingest: tuple[tuple[int, int], ...]  # (controllers, reads per location per controller), 2 locations
    baseline_reads: int
    latency_rates: tuple[int, ...]
    latency_seconds: float
    memory_streaming_seconds: float
    memory_burst_reads: int
    web_rows: int
    web_requests: int  # per endpoint, sequential; as many again from 4 concurrent clients
    web_budget_seconds: float  # per endpoint and pass: the rest is skipped (and said so)
    web_timeout_seconds: float
    fanout_clients: int
    fanout_rate: int
    fanout_seconds: float
    fanout_drain_seconds: float


QUICK = Mode("quick", ingest=((1, 5_000), (4, 2_500), (10, 1_000), (200, 50)), baseline_reads=500,
             latency_rates=(1000, 5000), latency_seconds=3, memory_streaming_seconds=4,
             memory_burst_reads=40_000, web_rows=1_000_000, web_requests=20, web_budget_seconds=6,
             web_timeout_seconds=10, fanout_clients=500, fanout_rate=200, fanout_seconds=4,
             fanout_drain_seconds=25)
FULL = Mode("full", ingest=((1, 50_000), (4, 25_000), (10, 10_000), (200, 500)), baseline_reads=2_000,
            latency_rates=(1000, 5000), latency_seconds=20, memory_streaming_seconds=15,
            memory_burst_reads=200_000, web_rows=10_000_000, web_requests=100, web_budget_seconds=60,
            web_timeout_seconds=30, fanout_clients=2_000, fanout_rate=200, fanout_seconds=20,
            fanout_drain_seconds=120)


@dataclass
class Context:
    mode: Mode
    work: Path
    postgres: PostgresForTests
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)  # shared between parts (ratios, DSNs)
    profile: bool = False
    _counter: int = 0

    def collector(self, name: str, web: bool = False, extra_args: tuple[str, ...] = ()) -> CollectorProcess:
        """A started twistd collector on a fresh database of the private server."""
        self._counter += 1
        dsn = self.postgres.create_database()
        # Every simulated controller connects from 127.0.0.1: lift the per-address cap.
        collector = start_collector(self.work / f"{self._counter:02d}-{name}", dsn=dsn, web=web,
                                    extra_args=("--max-connections-per-address", "1000", *extra_args))
        wait_for_schema(dsn)
        return collector

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)


def start_collector(work_dir: Path, **options) -> CollectorProcess:
    """CollectorProcess(...).start(), tried again when a port is taken.

    tests.processes.free_port() probes each port separately, so two of its calls can
    return the same port: the collector then stops with "Address already in use".
    """
    for attempt in range(3):
        try:
            return CollectorProcess(work_dir, **options).start()
        except AssertionError as error:
            if "Address already in use" not in str(error) or attempt == 2:
                raise
            print("  a port was taken twice (tests.processes.free_port); starting the collector again",
                  flush=True)
    raise AssertionError("unreachable")


def connect(dsn: str):
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    return connection


def scalar(connection, sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def wait_rows(connection, sql: str, at_least: int, timeout: float, interval: float = 0.02) -> tuple[float, int]:
    """Poll ``sql`` (a count) until it reaches ``at_least``; returns (time.time(), count)."""
    deadline = time.monotonic() + timeout
    while True:
        value = scalar(connection, sql)
        if value >= at_least or time.monotonic() > deadline:
            return time.time(), value
        time.sleep(interval)


def wait_for_schema(dsn: str, timeout: float = 60) -> None:
    """/status says "connected" before the migrations are done: wait for timing_reads."""
    connection = connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while not scalar(connection, "SELECT to_regclass('timing_reads') IS NOT NULL"):
            if time.monotonic() > deadline:
                raise TimeoutError("the collector did not create timing_reads")
            time.sleep(0.05)
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat), nan when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_thread_schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of the process's main thread.

    From /proc/<pid>/task/<pid>/schedstat; the wait tells CPU starvation (a shared machine)
    from a process that is idle, waiting on I/O or on the database.
    """
    try:
        running, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return float("nan"), float("nan")
    return int(running) / 1e9, int(waiting) / 1e9


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MB (MiB), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


class RssSampler:
    """Samples a process's VmRSS in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except (OSError, ValueError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else float("nan")


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children, the collector too, inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
