"""What one finish read costs the live results table (chronotrack.results.RaceResults), in the
process that keeps it: reads in finishing order, and reads arriving mid-field (a controller's
backlog after a reconnect, a backup mat's reads after the main one's), with and without the
table reporting whose places moved.

    .venv/bin/python -m bench.results_costs [--runners 20000] [--late 1000]

Pure CPU on this process, no database: wall-clock milliseconds per read, best of three.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

from chronotrack.reads import GUN_TIME_TAG, TagRead
from chronotrack.results import EventSettings, RaceResults
from web.roster import Participant

GUN = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


def finish_read(bib: str, when: datetime) -> TagRead:
    text = when.strftime("%H:%M:%S.%f")[:11]
    return TagRead("CT01_33", 1, "finish", bib, text, when, 1, "r", 1, f"CT01_33~1~finish~{bib}~{text}~1~r~1", when)


def per_read_ms(runners: int, late: int, report_moves: bool) -> tuple[float, float]:
    """(in order, mid-field): milliseconds per finish read."""
    roster = [Participant(str(bib), "First", "Last", 20 + bib % 50, "F" if bib % 2 else "M") for bib in range(runners)]
    table = RaceResults(EventSettings(), roster, report_moves=report_moves)
    table.add_read(TagRead("CT01_33", 1, "finish", GUN_TIME_TAG, "08:00:00.00", GUN, 0, "r", 0, "gun", GUN))
    in_order = [finish_read(str(bib), GUN + timedelta(minutes=15, milliseconds=100 * bib))
                for bib in range(runners - late)]
    shuffle = random.Random(1)
    mid_field = [finish_read(str(bib), GUN + timedelta(minutes=15, milliseconds=100 * shuffle.randrange(runners)))
                 for bib in range(runners - late, runners)]
    started = time.perf_counter()
    for read in in_order:
        table.add_read(read)
    ordered = (time.perf_counter() - started) / len(in_order) * 1000
    started = time.perf_counter()
    for read in mid_field:
        table.add_read(read)
    return ordered, (time.perf_counter() - started) / max(1, len(mid_field)) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=int, default=20_000)
    parser.add_argument("--late", type=int, default=1000, help="finish reads arriving mid-field, after the others")
    args = parser.parse_args(argv)
    for report_moves in (True, False):
        best = min((per_read_ms(args.runners, args.late, report_moves) for _ in range(3)), key=lambda pair: pair[1])
        print(f"{args.runners:,} runners, moves {'reported' if report_moves else 'not reported'}:"
              f" {best[0]:.3f} ms a finish read in order, {best[1]:.3f} ms a finish read mid-field", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
