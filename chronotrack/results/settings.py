"""Per-event results settings, and how they resolve against the reads seen so far."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

DEFAULT_FINISH_NAME = "finish"
DEFAULT_START_NAME = "start"
NO_START_MAT = ""  # start_location=NO_START_MAT: gun times only, even if a mat is named "start"


class PlaceBy(enum.Enum):
    """What places are decided on. USATF rules place road races by gun time."""

    GUN = "gun"
    CHIP = "chip"


@dataclass(frozen=True)
class EventSettings:
    """How one event is scored. Every field has the default a timer would expect.

    - ``finish_location``: None = a location named ``finish`` (any case), else the last
      location other than the start mat, in ``location_order`` followed by the others in
      the order reads showed them.
    - ``start_location``: None = a location named ``start`` (any case) if there is one;
      ``NO_START_MAT`` ("") = no start mat. A start equal to the finish means no start mat.
    - ``gun_time``: set by hand, it wins over the controllers' ``guntime`` reads. It must be
      timezone-aware, like read timestamps.
    - ``duplicate_window``: finish reads this long after a runner's first are duplicates;
      later ones are flagged "late" and ignored too (one-lap races only).
    - ``minimum_time``: finish reads sooner than this after the gun are not finishes.
    - ``age_group_years`` (5 or 10), ``youngest_group_top`` (default 14 for 5-year groups,
      19 for 10-year), ``oldest_group_from`` (e.g. 80 for an open ``M80+``; None = no cap).
    """

    finish_location: str | None = None
    start_location: str | None = None
    gun_time: datetime | None = None
    duplicate_window: timedelta = timedelta(seconds=60)
    minimum_time: timedelta = timedelta(0)
    place_by: PlaceBy = PlaceBy.GUN
    age_group_years: int = 5
    youngest_group_top: int | None = None
    oldest_group_from: int | None = None
    location_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.gun_time is not None and self.gun_time.utcoffset() is None:
            raise ValueError("gun_time must be timezone-aware, like the read timestamps")
        if self.duplicate_window < timedelta(0) or self.minimum_time < timedelta(0):
            raise ValueError("duplicate_window and minimum_time cannot be negative")
        if self.age_group_years not in (5, 10):
            raise ValueError("age groups are 5 or 10 years wide")
        if (self.youngest_group_top_age + 1) % self.age_group_years:
            raise ValueError("youngest_group_top + 1 must be a multiple of age_group_years")
        if self.oldest_group_from is not None and (
                self.oldest_group_from % self.age_group_years
                or self.oldest_group_from <= self.youngest_group_top_age):
            raise ValueError("oldest_group_from must be a group boundary above the youngest group")

    @property
    def youngest_group_top_age(self) -> int:
        if self.youngest_group_top is not None:
            return self.youngest_group_top
        return 14 if self.age_group_years == 5 else 19


def location_order(settings: EventSettings, seen: Sequence[str]) -> list[str]:
    """The declared order first, then any other location in the order reads showed it."""
    declared = list(settings.location_order)
    return declared + [name for name in seen if name not in declared]


def resolve_locations(settings: EventSettings, seen: Sequence[str]) -> tuple[str | None, str | None]:
    """(finish, start) for this event now; either may be None (nothing seen, no start mat)."""
    order = location_order(settings, seen)
    start = settings.start_location
    if start is None:
        start = named(order, DEFAULT_START_NAME)
    finish = settings.finish_location
    if finish is None:
        # Never the start mat: its controller often connects first, and its crossings
        # seconds after the gun are not finishes.
        finish = named(order, DEFAULT_FINISH_NAME) or next(
            (location for location in reversed(order) if location != start), None)
    if not start or start == finish:
        start = None
    return finish, start


def resolve_gun_time(
    settings: EventSettings,
    gun_reads_at: Callable[[str], Sequence[datetime]],
    locations: Sequence[str],
    finish: str | None,
    start: str | None,
) -> datetime | None:
    """The gun: by hand if set, else the latest ``guntime`` read at the start mat, else at
    the finish, else at any location (a gun fired on a mat that is neither is still the gun).

    The latest, because a timer who test-fires the gun before the race fires it again at
    the start; a later gun replaces an earlier one. ``gun_reads_at`` returns sorted times.
    """
    if settings.gun_time is not None:
        return settings.gun_time
    for location in (start, finish):
        if location is not None:
            guns = gun_reads_at(location)
            if guns:
                return guns[-1]
    elsewhere = [guns[-1] for guns in map(gun_reads_at, locations) if guns]
    return max(elsewhere, default=None)


def named(order: Sequence[str], name: str) -> str | None:
    """The first location in ``order`` called ``name`` (any case): it stays the first as locations are added."""
    return next((location for location in order if location.lower() == name), None)
