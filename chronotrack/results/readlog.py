"""Every read of an event, kept by location and tag, so any setting can be re-applied."""

from __future__ import annotations

from bisect import insort
from datetime import datetime
from typing import Iterable, Sequence

from chronotrack.reads import TagRead


class ReadLog:
    """Reads sorted by time per (location, tag), gun reads per location, locations in order seen.

    Kept whole (not just finish reads) because which location is the finish can change as
    locations appear, and a changed gun time or finish re-scores the race from here.
    """

    def __init__(self) -> None:
        self._locations: list[str] = []
        self._times: dict[str, dict[str, list[datetime]]] = {}
        self._guns: dict[str, list[datetime]] = {}

    def add(self, read: TagRead) -> None:
        location = read.location_name
        if location not in self._times:
            self._locations.append(location)
            self._times[location] = {}
        if read.is_new_location:
            return
        if read.is_gun_time:
            insort(self._guns.setdefault(location, []), read.read_timestamp)
            return
        insort(self._times[location].setdefault(read.tag_code, []), read.read_timestamp)

    @property
    def locations(self) -> Sequence[str]:
        return tuple(self._locations)

    def times(self, location: str | None, tag: str) -> Sequence[datetime]:
        if location is None:
            return ()
        return self._times.get(location, {}).get(tag, ())

    def tags_at(self, location: str | None) -> Iterable[str]:
        if location is None:
            return ()
        return self._times.get(location, {}).keys()

    def all_tags(self) -> set[str]:
        return {tag for tags in self._times.values() for tag in tags}

    def gun_times(self, location: str) -> Sequence[datetime]:
        return self._guns.get(location, ())
