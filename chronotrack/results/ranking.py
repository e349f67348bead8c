"""Place order and tie rules, and the sorted lists that keep places live.

Places follow the time the event places by, to the hundredth. Equal times share a place
and the next place is skipped (1, 2, 2, 4: "competition ranking", as road-race results
print it); tied runners are listed in bib order, numeric bibs by number before other bibs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Iterator

# (hundredths, bib order...): tuples so that bisect compares them natively.
PlaceKey = tuple[int, int, int, str]


def bib_order(bib: str) -> tuple[int, int, str]:
    """Numeric bibs by number (9 before 10), then the rest as text."""
    if bib.isdigit():
        return (0, int(bib), bib)
    return (1, 0, bib)


def place_key(time_hundredths: int, bib: str) -> PlaceKey:
    return (time_hundredths, *bib_order(bib))


class RankedList:
    """One group's finishers (overall, a gender, a division) in place order.

    Finding a place or an insertion point is a binary search, O(log n); inserting shifts
    the list in memory, which costs what the places that move cost anyway.
    """

    def __init__(self) -> None:
        self._keys: list[PlaceKey] = []

    @classmethod
    def of(cls, keys: list[PlaceKey]) -> RankedList:
        """A list of many finishers at once: one sort, instead of one insertion each (``keys`` is kept)."""
        ranked = cls()
        keys.sort()
        ranked._keys = keys
        return ranked

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[PlaceKey]:
        return iter(self._keys)

    def add(self, key: PlaceKey) -> None:
        insort(self._keys, key)

    def remove(self, key: PlaceKey) -> None:
        index = bisect_left(self._keys, key)
        if index == len(self._keys) or self._keys[index] != key:
            raise KeyError(key)
        del self._keys[index]

    def place(self, time_hundredths: int) -> int:
        """1 + the number strictly faster: ties share a place, the next one is skipped."""
        return bisect_left(self._keys, (time_hundredths,)) + 1

    def bibs_timed(self, slower_than: int, up_to: int | None = None) -> list[str]:
        """Bibs with ``slower_than < time <= up_to``: whose place a move between them shifts."""
        begin = bisect_left(self._keys, (slower_than + 1,))
        end = len(self._keys) if up_to is None else bisect_left(self._keys, (up_to + 1,))
        return [key[-1] for key in self._keys[begin:end]]
