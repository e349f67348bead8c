"""Ingest: simulators streaming as fast as they can into the real twistd collector, web layer on.

Rate = reads / (first byte -> last row committed). "First byte" is the earliest
``controller_connections.connected_at`` of the run (the collector records each connection
as it is accepted); "last row committed" is when polling the maintained per-location figures
(``read_figures``, updated in the inserting transaction) first sees every read; one
``count(*)`` at the end checks them. Polling ``count(*)`` itself, 20 times a second over a
growing table, took a fifth of a core from the run it measured. The 4-controller run's
database is kept for ``baseline`` (same reads). With ``--profile`` the 4-controller run is
sampled with py-spy and the top costs printed. A last 4-controller run has a phone ask for the
event's results as its first reads are stored: the web layer, in the collector's process, then
keeps them live through the burst (no target: what live results cost a one-process collector).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request
from pathlib import Path

from bench.context import Context, connect, cpu_seconds, main_thread_schedstat, scalar, wait_rows
from bench.profiling import start_profiler, summarize_profile
from bench.report import Row, Target
from tests.processes import start_simulator

INGEST_TARGET = Target(">=", 50_000, "reads/s")
COLLECTOR_ARGS: tuple[str, ...] = ()  # extra twistd options for every ingest collector (bench.ingest_four)
LOCATIONS = "start,finish"
STORED_SO_FAR = "SELECT coalesce(sum(reads), 0) FROM read_figures"  # a row per session and location


def run(ctx: Context) -> None:
    print("ingest: simulators at full speed into twistd", flush=True)
    for controllers, reads in ctx.mode.ingest:
        _measure(ctx, controllers, reads)
    _measure(ctx, 4, dict(ctx.mode.ingest)[4], live_results=True)


def _measure(ctx: Context, controllers: int, reads: int, live_results: bool = False) -> None:
    """One run; ``live_results``: a phone asks for the event's results as its first reads are
    stored, so the web layer (in the collector's process) keeps them live through the burst."""
    total = controllers * 2 * reads
    name = f"ingest-{controllers}" + ("-live-results" if live_results else "")
    collector = ctx.collector(name, web=True, extra_args=COLLECTOR_ARGS)  # the target counts the web layer on
    connection = connect(collector.dsn)
    profiler = None
    try:
        collector_cpu = cpu_seconds(collector.process.pid)
        database_cpu = postgres_cpu_seconds(ctx)
        sched_before = main_thread_schedstat(collector.process.pid)
        simulator = start_simulator(collector.ctp01_port, "--controllers", str(controllers),
                                    "--locations", LOCATIONS, "--reads", str(reads), "--rate", "0",
                                    "--linger", "1", "--quiet",
                                    log_path=collector.work_dir / "simulator.log")
        asker = None
        if live_results:
            asker = _ResultsAsker(collector)
            asker.start()
        if ctx.profile and controllers == 4 and not live_results:
            profiler = start_profiler(collector.process.pid, collector.work_dir / "py-spy.txt")
        finished, _ = wait_rows(connection, STORED_SO_FAR, total, timeout=300, interval=0.05)
        collector_cpu = cpu_seconds(collector.process.pid) - collector_cpu
        database_cpu = postgres_cpu_seconds(ctx) - database_cpu
        sched_after = main_thread_schedstat(collector.process.pid)
        reactor_wait = sched_after[1] - sched_before[1]
        simulator_cpu = cpu_seconds(simulator.pid)  # still lingering: its whole run
        first_byte = scalar(connection, "SELECT extract(epoch FROM min(connected_at)) FROM controller_connections")
        simulator.wait(60)
        stored = scalar(connection, "SELECT count(*) FROM timing_reads")
        if profiler is not None:
            profiler.wait(120)
        elapsed = finished - float(first_byte)
        rate = stored / elapsed
        failed = stored < total
        note = (f"{stored:,} reads in {elapsed:.2f} s; CPU: collector {collector_cpu / elapsed:.0%},"
                f" PostgreSQL {database_cpu / elapsed:.0%}, simulator {simulator_cpu / elapsed:.0%}; collector main thread waiting for a CPU"
                f" {reactor_wait / elapsed:.0%} of the time")
        note += writer_note(collector.status_port, elapsed)
        if asker is not None:
            asker.join(60)
            note += "; " + asker.outcome
            failed = failed or not asker.asked
        if failed and stored < total:
            note += f"; only {stored} of {total} stored"
        target = INGEST_TARGET if controllers == 4 and not live_results else None
        figure = f"{controllers} controller{'s' if controllers > 1 else ''}"
        if live_results:
            figure += ", the event's live results asked for"
        ctx.add(Row("ingest", figure, rate, "reads/s", target, note, failed))
        print(f"  {figure}: {rate:,.0f} reads/s ({note})", flush=True)
        if live_results:
            return
        ctx.figures[f"ingest_{controllers}"] = rate
        if controllers == 4:
            ctx.figures["ingest_4_dsn"] = collector.dsn  # type: ignore[assignment]
        if profiler is not None:
            for line in summarize_profile(collector.work_dir / "py-spy.txt", "4-controller ingest"):
                ctx.note(line)
    finally:
        connection.close()
        collector.stop()


class _ResultsAsker(threading.Thread):
    """Waits for the first stored read, then asks ``/api/results`` for its event once."""

    def __init__(self, collector) -> None:
        super().__init__(daemon=True)
        self.collector = collector
        self.asked = False  # the results were asked for and answered
        self.outcome = "results never asked"

    def run(self) -> None:
        connection = connect(self.collector.dsn)
        try:
            deadline = time.monotonic() + 60
            event = None
            while event is None and time.monotonic() < deadline:
                event = scalar(connection, "SELECT min(timing_event_id) FROM read_figures WHERE reads > 0")
                if event is None:
                    time.sleep(0.01)
            if event is None:
                self.outcome = "no read stored within 60 s: results never asked"
                return
            url = f"http://127.0.0.1:{self.collector.web_port}/api/results?event={event}"
            started = time.monotonic()
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()
            self.asked = True
            self.outcome = f"results asked once the first reads were stored, answered in {time.monotonic() - started:.2f} s"
        except OSError as error:
            self.outcome = f"the results request failed: {error}"
        finally:
            connection.close()


def postgres_cpu_seconds(ctx: Context) -> float:
    """CPU time of the run's own PostgreSQL server so far: the postmaster, its live processes,
    and the reaped ones (the postmaster's children's times); nan when it is not embedded."""
    embedded = ctx.postgres.embedded
    if embedded is None:
        return float("nan")
    try:
        postmaster = int((embedded.cluster / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return float("nan")
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == postmaster:
            ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def writer_note(status_port: int, elapsed: float) -> str:
    """From the collector's /metrics: how much of the run its one database writer spent
    between sending a statement and its commit, and how big the statements were."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError as error:
        return f"; writer figures unavailable ({error})"

    def figure(name: str) -> float:
        match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else float("nan")

    statements = figure("chronotrack_database_batch_reads_count")
    busy = figure("chronotrack_database_flush_seconds_sum")
    reads = figure("chronotrack_database_batch_reads_sum")
    if not statements:
        return "; no statement written"
    return (f"; writer: {statements:.0f} statements of {reads / statements:,.0f} reads on average,"
            f" {busy / statements * 1000:.0f} ms each from send to commit, busy {busy / elapsed:.0%} of the run")
