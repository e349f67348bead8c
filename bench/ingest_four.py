"""The 4-controller ingest run alone, then the COPY ceiling on its reads: one figure to
compare before and after a change, without the rest of the suite.

    .venv/bin/python -m bench.ingest_four [--reads 25000] [--profile] [--collector-args '...']

``--reads`` per location per controller (2 locations). Prints the rate, the CPU of the
collector, PostgreSQL and the simulator, and collector / COPY ceiling.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import baseline, ingest
from bench.context import FULL, Context
from bench.report import format_table
from bench.suite import private_postgres


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=25_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--collector-args", default="", help="extra twistd options, e.g. '--write-batch-size 10000'")
    args = parser.parse_args(argv)
    ingest.COLLECTOR_ARGS = tuple(args.collector_args.split())
    work = Path(tempfile.mkdtemp(prefix="ctbench-", dir="/tmp"))
    work.chmod(0o755)
    postgres = private_postgres()
    mode = replace(FULL, name="ingest-four", ingest=((4, args.reads),), baseline_reads=200)
    ctx = Context(mode=mode, work=work, postgres=postgres, profile=args.profile)
    try:
        ingest.run(ctx)
        baseline.run(ctx)
    finally:
        postgres.stop()
    print(format_table(ctx.rows))
    for note in ctx.notes:
        print(f"- {note}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
