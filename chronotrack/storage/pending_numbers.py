"""The sequence numbers of one (partner, stream, location) journaled but not yet stored, kept
as one run plus the few numbers outside it: pure logic, no I/O.

The store remembers them so a controller that reconnects while the database is behind is
resumed after its reads waiting here (see chronotrack.storage.watermarks). A plain set costs
more than 100 bytes per number (the int, and its slot in a table grown fourfold): 22 MB
for the 200,000 reads a database outage may leave waiting (8 locations, measured with
tracemalloc), all of it in memory while the reads themselves wait on disk. A controller numbers its
reads 1, 2, 3... and they are stored in the order they came, so nearly all of them fit one
run ``low..high`` of two integers; only numbers out of order (a replay, a gap, a client
that numbers oddly) go to a set beside it, so no order of numbers costs more than the set
did, and every operation stays O(1) but for the rare split of the run.
"""

from __future__ import annotations

from typing import Iterable, Iterator


class PendingNumbers:
    """A set of ints (``add``, ``discard``, ``in``, ``len``, iteration) cheap for runs."""

    __slots__ = ("_low", "_high", "_others")

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        self._low = 0
        self._high = -1  # the run low..high, empty when high < low
        self._others: set[int] | None = None  # numbers not in the run, never adjacent to it
        for number in numbers:
            self.add(number)

    def copy(self) -> PendingNumbers:
        copied = PendingNumbers()
        copied._low, copied._high = self._low, self._high
        copied._others = set(self._others) if self._others else None
        return copied

    def __contains__(self, number: object) -> bool:
        if self._low <= number <= self._high:  # type: ignore[operator]
            return True
        return bool(self._others) and number in self._others

    def __len__(self) -> int:
        return max(self._high - self._low + 1, 0) + (len(self._others) if self._others else 0)

    def __bool__(self) -> bool:
        return self._high >= self._low or bool(self._others)

    def __iter__(self) -> Iterator[int]:
        yield from range(self._low, self._high + 1)
        if self._others:
            yield from sorted(self._others)

    def __repr__(self) -> str:
        return f"PendingNumbers({sorted(self)!r})"

    def add(self, number: int) -> None:
        low, high = self._low, self._high
        if number == high + 1 and high >= low:
            self._high = number
            self._absorb()
        elif low <= number <= high:
            return
        elif high < low:
            if self._others and number in self._others:
                return
            self._low = self._high = number
            self._absorb()
        elif number == low - 1:
            self._low = number
            self._absorb()
        else:
            if self._others is None:
                self._others = set()
            self._others.add(number)

    def discard(self, number: int) -> None:
        low, high = self._low, self._high
        if number == low and low <= high:
            self._low = low + 1
        elif number == high and low <= high:
            self._high = high - 1
        elif low < number < high:
            # Split the run: the shorter side goes to the set (a read stored out of order).
            if self._others is None:
                self._others = set()
            if number - low <= high - number:
                self._others.update(range(low, number))
                self._low = number + 1
            else:
                self._others.update(range(number + 1, high + 1))
                self._high = number - 1
        elif self._others:
            self._others.discard(number)

    def _absorb(self) -> None:
        """Numbers of the set that now touch the run join it."""
        others = self._others
        if not others:
            return
        while self._high + 1 in others:
            self._high += 1
            others.remove(self._high)
        while self._low - 1 in others:
            self._low -= 1
            others.remove(self._low)
