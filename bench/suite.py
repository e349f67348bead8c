"""``make bench`` / ``make bench QUICK=1``: the whole benchmark suite, one table.

    .venv/bin/python -m bench.suite [--quick] [--only ingest,latency,...] [--profile] [--no-write]

Runs, against the real ``twistd chronotrack-collector`` and a real PostgreSQL (a private
embedded server for this run; the big web data set lives in ``bench/.data/`` or in
``CHRONOTRACK_BENCH_DSN``): ingest (1, 4, 10, 200 controllers) beside the old
one-insert-per-read writer and the COPY ceiling, latency at steady rates, memory, the web
endpoints at scale and the ``/stream`` fan-out. Prints the table and inserts it, with the
machine's description, as the newest section of bench/RESULTS.md. Targets are printed
beside the figures (pass / MISS; FAIL = an error such as a 503, a timeout or lost
events); nothing is asserted.

Durations on the 2-core development machine, shared: quick about 2 min (plus about 1 min
once to generate the 1M-row set), full about 25 min (plus about 7 min once for 10M rows).
Options for a run can be passed through make: ``make bench BENCH_ARGS="--only web"``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench import baseline, fanout, ingest, latency, memory, results_live, web_at_scale
from bench.context import FULL, QUICK, Context, connect, scalar
from bench.report import Row, add_section, format_table, machine_description, results_section
from tests.postgres import PostgresForTests

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PARTS = {"ingest": ingest.run, "baseline": baseline.run, "latency": latency.run, "memory": memory.run,
         "fanout": fanout.run, "web": web_at_scale.run, "results_live": results_live.run}


def private_postgres() -> PostgresForTests:
    """The run's own server, with commit timestamps on (latency reads them)."""
    postgres = PostgresForTests()
    connection = connect(postgres.admin_dsn)
    try:
        if scalar(connection, "SHOW track_commit_timestamp") != "on":
            connection.cursor().execute("ALTER SYSTEM SET track_commit_timestamp = on")
            if postgres.embedded is not None:
                connection.close()
                postgres.embedded.stop_blocking()
                postgres.embedded.start_blocking()
            else:
                print("warning: track_commit_timestamp is off on CHRONOTRACK_TEST_DSN's server (restart it):"
                      " socket -> commit latencies will be missing", flush=True)
    finally:
        connection.close()
    return postgres


def machine_load() -> str:
    """Load average and CPU pressure: how much else wanted the CPUs during the run."""
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
        text = f"load average {' '.join(load)}"
    except OSError:
        text = "load average unknown"
    try:
        pressure = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        text += f", CPU pressure {pressure[1].replace('avg10=', 'some avg10 ')}%"
    except (OSError, IndexError):
        pass
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, 1M rows instead of 10M (< 3 min)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)}")
    parser.add_argument("--profile", action="store_true", help="py-spy on the collector during 4-controller ingest and the fan-out")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--shared", default="", help="a note on what else ran on the machine")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    parts = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    stamp = datetime.now(timezone.utc)
    work = Path(tempfile.mkdtemp(prefix="ctbench-", dir="/tmp"))
    work.chmod(0o755)
    print(f"bench ({mode.name} mode), scratch folder {work}", flush=True)
    postgres = private_postgres()
    ctx = Context(mode=mode, work=work, postgres=postgres, profile=args.profile)
    connection = connect(postgres.admin_dsn)
    version = scalar(connection, "SHOW server_version")
    connection.close()
    failed_parts = []
    load_before = machine_load()
    try:
        for name in parts:
            try:
                PARTS[name](ctx)
            except Exception as error:  # one broken part must not hide the others' figures
                traceback.print_exc()
                failed_parts.append(name)
                ctx.add(Row(name, "part failed", None, note=f"{type(error).__name__}: {str(error)[:120]}",
                            failed=True))
    finally:
        postgres.stop()
    elapsed = time.monotonic() - started
    ctx.note(f"machine load at start: {load_before}; at end: {machine_load()} ({os.cpu_count()} cores)")
    table = format_table(ctx.rows)
    print()
    print(table)
    for note in ctx.notes:
        print(f"- {note}")
    print(f"\n{mode.name} run took {elapsed / 60:.1f} min", flush=True)

    if not args.no_write:
        notes = [f"{mode.name} mode, {elapsed / 60:.1f} min; parts: {', '.join(parts)}"]
        if args.shared:
            notes.append(args.shared)
        notes += ctx.notes
        machine = machine_description(f"PostgreSQL {version}")
        section = results_section(f"{stamp:%Y-%m-%d %H:%M} UTC, {mode.name} mode", machine, table, notes)
        existing = RESULTS.read_text() if RESULTS.exists() else ""
        RESULTS.write_text(add_section(existing, section))
        print(f"written to {RESULTS}")
    if not failed_parts:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
