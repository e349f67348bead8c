"""Every read of an event, kept by location and tag, so any setting can be re-applied.

Compact because a big race keeps millions of reads here: each (location, tag) holds its read
times as one ``array('q')`` of microseconds since the epoch (8 bytes a read) instead of a
list of ``datetime`` objects (about 60 bytes a read, plus the list), and every tag string is
shared by all locations. ``times()`` still answers a sorted sequence of ``datetime``, made
one at a time as the scoring's binary searches touch them. Reads can come one by one
(``add``) or many at once, already sorted per (location, tag), as the database hands them
over (``add_location``, ``add_times``, ``add_gun_times``).
"""

from __future__ import annotations

from array import array
from bisect import insort
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, Sequence, overload

from chronotrack.reads import TagRead

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NAIVE_EPOCH = datetime(1970, 1, 1)
ONE_MICROSECOND = timedelta(microseconds=1)


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since the epoch (naive times count as UTC), exactly."""
    return (moment - (NAIVE_EPOCH if moment.tzinfo is None else EPOCH)) // ONE_MICROSECOND


class Times(Sequence[datetime]):
    """A sorted run of read times seen as ``datetime`` (UTC, or naive when the reads were)."""

    __slots__ = ("_micros", "_epoch")

    def __init__(self, micros: array, aware: bool = True) -> None:
        self._micros = micros
        self._epoch = EPOCH if aware else NAIVE_EPOCH

    def __len__(self) -> int:
        return len(self._micros)

    @overload
    def __getitem__(self, index: int) -> datetime: ...

    @overload
    def __getitem__(self, index: slice) -> list[datetime]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._epoch + timedelta(microseconds=value) for value in self._micros[index]]
        return self._epoch + timedelta(microseconds=self._micros[index])

    def __iter__(self) -> Iterator[datetime]:
        epoch = self._epoch
        return (epoch + timedelta(microseconds=value) for value in self._micros)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return f"Times({list(self)!r})"


NO_TIMES = Times(array("q"))


class ReadLog:
    """Reads sorted by time per (location, tag), gun reads per location, locations in order seen.

    Kept whole (not just finish reads) because which location is the finish can change as
    locations appear, and a changed gun time or finish re-scores the race from here.
    """

    def __init__(self, needed: Callable[[Sequence[str]], frozenset[str] | None] | None = None) -> None:
        """``needed(locations)``: the only locations whose times can ever be scored, given the
        locations seen so far, once that can no longer change (None until then, and without
        ``needed``: every location's). Other locations keep only which tags they read: in a race
        with a start and a finish mat, the splits' reads are half of all reads."""
        self._locations: list[str] = []
        self._times: dict[str, dict[str, array]] = {}
        self._guns: dict[str, list[datetime]] = {}
        self._tags: dict[str, str] = {}  # one string per tag, shared by every location
        self._aware = True  # whether the times were given with a time zone (naive ones come back naive)
        self._needed = needed
        self._only: frozenset[str] | None = None  # the locations whose times are kept, once known
        self._tags_only: dict[str, set[str]] = {}  # the other locations: their tags

    def add(self, read: TagRead) -> None:
        location = read.location_name
        self.add_location(location)
        if read.is_new_location:
            return
        if read.is_gun_time:
            insort(self._guns.setdefault(location, []), read.read_timestamp)
            return
        self._aware = read.read_timestamp.tzinfo is not None
        self.add_times(location, read.tag_code, array("q", (microseconds(read.read_timestamp),)))

    def add_location(self, location: str) -> None:
        """A location seen (announced, or read at): the order of these calls is the locations' order."""
        if location not in self._times:
            self._locations.append(location)
            self._times[location] = {}
            if self._needed is not None and self._only is None:
                self._only = self._needed(self._locations)
                if self._only is not None:
                    for other in self._locations:
                        if other not in self._only:  # never scored from now on: forget its times
                            self._tags_only[other] = set(self._times[other])
                            self._times[other] = {}
            elif self._only is not None:
                self._tags_only[location] = set()

    def add_times(self, location: str, tag: str, micros: array) -> None:
        """Many reads of one tag at one (already added) location at once: ``micros`` sorted, UTC.

        The log keeps ``micros`` itself when the tag is new there (do not change it afterwards)."""
        if self._only is not None and location not in self._only:
            self._tags_only[location].add(self._tags.setdefault(tag, tag))
            return
        tags = self._times[location]
        times = tags.get(tag)
        if times is None:
            tags[self._tags.setdefault(tag, tag)] = micros
        elif not micros:
            return
        elif not times or times[-1] <= micros[0]:  # the usual case: later reads after earlier ones
            times.extend(micros)
        elif len(micros) == 1:  # one read older than the last (two controllers at a mat): into its place
            insort(times, micros[0])
        else:
            tags[tag] = array("q", sorted(times + micros))

    def add_gun_times(self, location: str, moments: Iterable[datetime]) -> None:
        guns = self._guns.setdefault(location, [])
        guns.extend(moments)
        guns.sort()

    @property
    def locations(self) -> Sequence[str]:
        return tuple(self._locations)

    def times(self, location: str | None, tag: str) -> Sequence[datetime]:
        if location is None:
            return ()
        micros = self._times.get(location, {}).get(tag)
        return NO_TIMES if micros is None else Times(micros, self._aware)

    def micros(self, location: str | None, tag: str) -> Sequence[int]:
        """``times`` as the log keeps them: sorted microseconds since the epoch (see ``as_datetime``)."""
        if location is None:
            return ()
        return self._times.get(location, {}).get(tag, ())

    def as_datetime(self, micros: int) -> datetime:
        """One of ``micros``'s values as ``times`` gives it."""
        return (EPOCH if self._aware else NAIVE_EPOCH) + timedelta(microseconds=micros)

    def as_micros(self, moment: datetime) -> int:
        return microseconds(moment)

    def tags_at(self, location: str | None) -> Iterable[str]:
        if location is None:
            return ()
        return self._times.get(location, {}).keys()

    def all_tags(self) -> set[str]:
        seen = {tag for tags in self._times.values() for tag in tags}
        for tags in self._tags_only.values():
            seen |= tags
        return seen

    def gun_times(self, location: str) -> Sequence[datetime]:
        return self._guns.get(location, ())
