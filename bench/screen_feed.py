"""What a finish-screen feed costs on the web process, without a database: the runner objects
(gun and chip) and SSE bytes built once per crossing, the announcer's list, and the first build
of a big event (100 000 reads: 50 000 runners at 5k and at the finish), which runs in a worker
thread, and the re-learning after a new gun time or finish mat (a worker thread too).

Run: ``.venv/bin/python -m bench.screen_feed`` (timings depend on the machine and its load).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from chronotrack.results import ResultRow
from web.display_feed import Crossing, EventFeed
from web.display_projection import ArrivalProjection
from web.display_runner import runner_object
from web.queries import DisplayRead
from web.roster import Participant

GUN = datetime(2024, 5, 4, 8, tzinfo=timezone.utc)
ROW = ResultRow(3, "101", "Ada Lovelace", "F", 1, "F35-39", 1, 1867.42, 1862.3, "0:31:07.42", "0:31:02.30")
ADA = Participant("101", "Ada", "Lovelace", 36, "F", "London", None, None, "Engines")


def crossings(count: int = 20_000) -> float:
    reads = [DisplayRead(i, 1, "101", "finish", "08:31:07.42", GUN + timedelta(seconds=i), 1, "r", 1, None, None)
             for i in range(count)]
    start = time.perf_counter()
    for read in reads:
        Crossing(read.id, read.location, {kind: runner_object(read, ADA, ROW, kind) for kind in ("gun", "chip")})
    return (time.perf_counter() - start) / count


def announcer_list(approaching: int = 2500) -> float:
    projection = ArrivalProjection()
    for number in range(2 * approaching):
        projection.split(str(number), "5k", 1000 + number, {"bib": str(number)})
    for number in range(approaching):
        projection.finish(str(number), 2000 + 2 * number)
    start = time.perf_counter()
    for _ in range(50):
        projection.approaching(30)
    return (time.perf_counter() - start) / 50


def big_event(runners: int = 50_000) -> tuple[float, float]:
    race = SimpleNamespace(finish_location="finish", start_location=None, gun_time=GUN, row=lambda bib: None)
    entry = SimpleNamespace(race=race)
    feed = EventFeed(None, SimpleNamespace(subscribe=lambda callback: (lambda: None)), None, None)
    history = []
    for location, factor in (("5k", 1.0), ("finish", 2.1)):
        for number in range(runners):
            history.append((len(history) + 1, str(number), location,
                            GUN + timedelta(seconds=factor * (900 + number / 10)), "x"))
    history.sort(key=lambda item: item[3])
    start = time.perf_counter()
    for read_id, bib, location, when, text in history:
        feed._learn(read_id, bib, location, when, text, entry, history_only=True)
    built = time.perf_counter() - start
    start = time.perf_counter()
    feed._context = None
    feed._relearn(entry)
    return built, time.perf_counter() - start


def main() -> None:
    print(f"runner objects (gun + chip) and SSE bytes: {crossings() * 1e6:.1f} us per crossing, for every screen")
    print(f"announcer list with 2500 runners approaching: {announcer_list() * 1e3:.1f} ms per change")
    built, relearnt = big_event()
    print(f"first build of a 100 000-read event: {built:.2f} s (worker thread); "
          f"re-learning it after a new gun time or finish mat: {relearnt:.2f} s (worker thread)")


if __name__ == "__main__":
    main()
