"""When will a runner seen at a split reach the finish? For the announcer's "about to arrive".

The projection scales the runner's elapsed time at the split by the median finish/split
ratio of the runners who already finished and crossed the same split (a runner who is 2 %
slower than the field at 5 km is about 2 % slower at the line). With no finisher yet there
is nothing to scale by, and the announcer shows the split time alone. Pure logic: the feed
hands it elapsed times, it keeps sorted ratios (insertion by bisection), no I/O.
"""

from __future__ import annotations

import heapq
from bisect import insort
from dataclasses import dataclass
from typing import Any, Callable


def median(sorted_values: list[float]) -> float | None:
    if not sorted_values:
        return None
    middle = len(sorted_values) // 2
    if len(sorted_values) % 2:
        return sorted_values[middle]
    return (sorted_values[middle - 1] + sorted_values[middle]) / 2


@dataclass
class Approaching:
    """A runner's latest split read, not yet finished."""

    bib: str
    location: str
    split_elapsed_s: float  # since the gun
    runner: dict[str, Any] | Callable[[], dict[str, Any]]  # the split read's runner object, or how to build it
    order: int  # arrival order of the split read, for ties


class ArrivalProjection:
    """Runners between a split and the finish, sorted by when they should arrive."""

    def __init__(self, version: int = 0) -> None:
        self._splits: dict[str, dict[str, float]] = {}  # bib -> location -> elapsed at that split
        self._ratios: dict[str, list[float]] = {}  # location -> sorted finish/split ratios
        self._approaching: dict[str, Approaching] = {}
        self._finished: set[str] = set()
        self._count = 0
        self.version = version  # moves on every change: pages compare it to cache what they derived

    def split(self, bib: str, location: str, elapsed_s: float,
              runner: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """A split read ``elapsed_s`` after the gun; a finished runner is not approaching any more.

        ``runner`` may be a function that builds it: only the few runners listed are ever built."""
        if elapsed_s <= 0 or bib in self._finished:
            return
        self._splits.setdefault(bib, {})[location] = elapsed_s
        self._count += 1
        self._approaching[bib] = Approaching(bib, location, elapsed_s, runner, self._count)
        self.version += 1

    def finish(self, bib: str, elapsed_s: float) -> None:
        """A runner's finish: drop them and learn the ratio of each split they crossed."""
        if bib in self._finished:
            return
        self._finished.add(bib)
        self._approaching.pop(bib, None)
        if elapsed_s > 0:
            for location, split_elapsed in self._splits.pop(bib, {}).items():
                insort(self._ratios.setdefault(location, []), elapsed_s / split_elapsed)
        self.version += 1

    def projected_elapsed(self, location: str, split_elapsed_s: float) -> float | None:
        ratio = median(self._ratios.get(location, []))
        return None if ratio is None else split_elapsed_s * ratio

    def approaching(self, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` runners, soonest projected arrival first (by split time without a projection)."""
        entries = []
        for runner in self._approaching.values():
            projected = self.projected_elapsed(runner.location, runner.split_elapsed_s)
            entries.append((projected if projected is not None else runner.split_elapsed_s, runner.order,
                            runner, projected))
        soonest = heapq.nsmallest(limit, entries, key=lambda entry: (entry[0], entry[1]))
        return [self._listed(runner, projected) for _, _, runner, projected in soonest]

    @staticmethod
    def _listed(runner: Approaching, projected: float | None) -> dict[str, Any]:
        details = runner.runner() if callable(runner.runner) else runner.runner
        return {**details, "split_location": runner.location, "split_s": round(runner.split_elapsed_s, 2),
                "split_text": elapsed_text(runner.split_elapsed_s),
                "projected_s": None if projected is None else round(projected, 2),
                "projected_text": "" if projected is None else elapsed_text(projected)}


def elapsed_text(seconds: float) -> str:
    """``H:MM:SS`` (whole seconds: a projection is no more precise than that)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, second = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{second:02d}"
