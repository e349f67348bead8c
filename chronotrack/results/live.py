"""Live results: reads arrive one at a time and each says what it changed.

One finish read costs a few binary searches plus one row per runner whose place it moves
(none when the table does not report moves);
the race is re-scored from the kept reads only when what every time is measured from
changes (the gun time, or which location is the start or the finish).
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from chronotrack.reads import TagRead
from chronotrack.results.divisions import division_for, normalise_gender
from chronotrack.results.ranking import PlaceKey, RankedList, place_key
from chronotrack.results.readlog import ONE_MICROSECOND, ReadLog
from chronotrack.results.rows import ResultRow, build_row, with_places
from chronotrack.results.settings import (
    DEFAULT_FINISH_NAME,
    DEFAULT_START_NAME,
    EventSettings,
    PlaceBy,
    location_order,
    named,
    resolve_gun_time,
    resolve_locations,
)
from chronotrack.results.timing import RunnerTimes, counts_as_finish, runner_times_micros

if TYPE_CHECKING:
    from datetime import datetime

    from web.roster import Participant

_OVERALL = ("overall",)


class ReadKind(enum.Enum):
    """How a read counted, as of when it arrived."""

    FINISH = "finish"  # the runner's finish (their first finish read that counts)
    DUPLICATE = "duplicate"  # within the duplicate window after the finish: ignored
    LATE_FINISH = "late_finish"  # after the window: ignored, the row is flagged
    EARLY_FINISH = "early_finish"  # before the gun (or the minimum time): not a finish
    NO_GUN_TIME = "no_gun_time"  # a finish read while no gun time is known: kept for later
    START = "start"  # a start-mat crossing
    GUN_TIME = "gun_time"  # a controller's gun read
    NEW_LOCATION = "new_location"  # a controller announced a location
    OTHER_LOCATION = "other_location"  # neither start nor finish (splits are not scored)


@dataclass(frozen=True)
class ResultsChange:
    """What one read (or roster change) did to the results.

    ``runner`` is the reading runner's row now (None if not a finisher); ``shifted`` are the
    other rows whose places moved, in place order (always empty from a table made with
    ``report_moves=False``). When ``rebuilt`` is true every row may have changed (new gun
    time, new start or finish location): reload ``rows()``.
    """

    read_kind: ReadKind | None  # None for a roster change
    runner: ResultRow | None = None
    shifted: tuple[ResultRow, ...] = ()
    rebuilt: bool = False


@dataclass(frozen=True, slots=True)  # tens of thousands per big race: no __dict__ each
class _Standing:
    key: PlaceKey
    times: RunnerTimes
    gender_group: tuple[str, str] | None  # ("gender", "F")
    division_group: tuple[str, str] | None  # ("division", "F30-34")
    unplaced: ResultRow  # the row with places 0, built once: a shifted runner only needs new places

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        """Every list the runner is placed in, overall first."""
        return (_OVERALL,) + tuple(group for group in (self.gender_group, self.division_group) if group)


def _scored_for_good(settings: EventSettings, seen: Sequence[str]) -> frozenset[str] | None:
    """The start and finish, once no location that may still appear can change them (both
    set in the settings or named so; the settings never change for one table): the only
    locations whose reads are ever scored. None while they can still change."""
    order = location_order(settings, seen)
    if settings.finish_location is None and named(order, DEFAULT_FINISH_NAME) is None:
        return None
    if settings.start_location is None and named(order, DEFAULT_START_NAME) is None:
        return None
    return frozenset(location for location in resolve_locations(settings, seen) if location)


class RaceResults:
    """An event's results kept up to date read by read; ``rows()`` equals ``compute_results``.

    ``report_moves=False`` for a table read only through ``rows()`` and ``row()`` (the web's
    results cache): a finisher placed mid-field moves everyone slower, and making their rows
    for ``ResultsChange.shifted`` costs one row per runner moved, tens of milliseconds a read
    in a big race when a controller's backlog arrives after the others' reads.
    """

    def __init__(self, settings: EventSettings = EventSettings(), roster: Iterable[Participant] = (),
                 report_moves: bool = True) -> None:
        self._report_moves = report_moves
        self._settings = settings
        self._roster: dict[str, Participant] = {participant.bib: participant for participant in roster}
        self._log = ReadLog(partial(_scored_for_good, settings))  # not a bound method: no cycle to collect
        self._duplicate_window_us = settings.duplicate_window // ONE_MICROSECOND
        self._minimum_time_us = settings.minimum_time // ONE_MICROSECOND
        self._finish: str | None = None
        self._start: str | None = None
        self._gun: datetime | None = None
        self._lists: dict[tuple[str, ...], RankedList] = {}
        self._standings: dict[str, _Standing] = {}
        self._unknown: set[str] = set()  # tags read that the roster does not know, kept as reads come

    @property
    def settings(self) -> EventSettings:
        return self._settings

    @property
    def gun_time(self) -> datetime | None:
        return self._gun

    @property
    def finish_location(self) -> str | None:
        return self._finish

    @property
    def start_location(self) -> str | None:
        return self._start

    def add_read(self, read: TagRead) -> ResultsChange:
        """Take one read in; say how it counted and whose places it moved."""
        self._log.add(read)
        if read.tag_code not in self._roster and not (read.is_gun_time or read.is_new_location):
            self._unknown.add(read.tag_code)
        context = self._context()
        if context != (self._finish, self._start, self._gun):
            self._finish, self._start, self._gun = context
            self._rebuild()
            return ResultsChange(self._kind(read), self._row_or_none(read.tag_code), rebuilt=True)
        scored = read.location_name in (self._finish, self._start)
        if read.is_gun_time or read.is_new_location or not scored or self._gun is None:
            return ResultsChange(self._kind(read))
        runner, shifted = self._reposition(read.tag_code)
        return ResultsChange(self._kind(read), runner, shifted)

    @property
    def read_log(self) -> ReadLog:
        """The kept reads, for loading a whole event at once (``ReadLog.add_location``,
        ``add_times``, ``add_gun_times``) instead of read by read; then call ``rescore()``."""
        return self._log

    def rescore(self) -> None:
        """Score the race afresh from the kept reads (after loading them through ``read_log``):
        the same rows as adding each read with ``add_read``, at the cost of one re-score."""
        self._unknown = self._log.all_tags() - self._roster.keys()
        self._finish, self._start, self._gun = self._context()
        self._rebuild()

    def set_participant(self, participant: Participant) -> ResultsChange:
        """Add or correct one roster entry (an unknown tag fixed, a gender or age corrected)."""
        self._roster[participant.bib] = participant
        self._unknown.discard(participant.bib)
        if participant.bib not in self._standings:
            return ResultsChange(None)
        runner, shifted = self._reposition(participant.bib)
        return ResultsChange(None, runner, shifted)

    def rows(self, limit: int | None = None) -> list[ResultRow]:
        """Every finisher's row in place order (the first ``limit`` only, when given: a big race's
        first page costs its own rows, not the whole table)."""
        overall = self._lists.get(_OVERALL)
        return [self._row(key[-1]) for key in islice(overall, limit)] if overall else []

    def iter_rows(self) -> Iterator[ResultRow]:
        """``rows()`` one at a time, for making a big table a slice at a time (the race must not
        take reads in until the iterator is done)."""
        overall = self._lists.get(_OVERALL)
        return (self._row(key[-1]) for key in overall) if overall else iter(())

    def finisher_count(self) -> int:
        overall = self._lists.get(_OVERALL)
        return len(overall) if overall else 0

    def group_names(self, kind: str) -> list[str]:
        """The genders (``kind="gender"``) or divisions (``"division"``) some finisher has, sorted:
        ``sorted({row.division for row in rows()} - {None})`` without making the rows."""
        return sorted(group[1] for group in self._lists if group[0] == kind)

    def row(self, bib: str) -> ResultRow | None:
        return self._row_or_none(bib)

    def unknown_tags(self) -> list[str]:
        """Tags read anywhere that the roster does not know, for the timer to fix."""
        return sorted(self._unknown, key=lambda tag: place_key(0, tag))

    # --- inside -------------------------------------------------------------------

    def _context(self) -> tuple[str | None, str | None, datetime | None]:
        finish, start = resolve_locations(self._settings, self._log.locations)
        return finish, start, resolve_gun_time(self._settings, self._log.gun_times, self._log.locations, finish, start)

    def _kind(self, read: TagRead) -> ReadKind:
        if read.is_gun_time:
            return ReadKind.GUN_TIME
        if read.is_new_location:
            return ReadKind.NEW_LOCATION
        if read.location_name == self._start:
            return ReadKind.START
        if read.location_name != self._finish:
            return ReadKind.OTHER_LOCATION
        if self._gun is None:
            return ReadKind.NO_GUN_TIME
        if not counts_as_finish(read.read_timestamp, self._gun, self._settings.minimum_time):
            return ReadKind.EARLY_FINISH
        finish = self._standings[read.tag_code].times.finish
        when = read.read_timestamp
        if when == finish:
            reads = self._log.times(self._finish, read.tag_code)
            same_time = bisect_right(reads, when) - bisect_left(reads, when)
            return ReadKind.FINISH if same_time == 1 else ReadKind.DUPLICATE
        return ReadKind.DUPLICATE if when - finish <= self._settings.duplicate_window else ReadKind.LATE_FINISH

    def _standing(self, bib: str) -> _Standing | None:
        if self._gun is None:
            return None
        log = self._log
        times = runner_times_micros(log.micros(self._finish, bib), log.micros(self._start, bib),
                                    log.as_micros(self._gun), self._duplicate_window_us, self._minimum_time_us,
                                    log.as_datetime)
        if times is None:
            return None
        participant = self._roster.get(bib)
        gender = normalise_gender(participant.gender) if participant else None
        division = division_for(participant, self._settings)
        time = times.chip_hundredths if self._settings.place_by is PlaceBy.CHIP else times.gun_hundredths
        return _Standing(place_key(time, bib), times,
                         None if gender is None else ("gender", gender),
                         None if division is None else ("division", division),
                         build_row(bib, participant, times, 0, gender, None, division, None))

    def _reposition(self, bib: str) -> tuple[ResultRow | None, tuple[ResultRow, ...]]:
        """Re-score one runner; return their row and the rows of everyone whose place moved."""
        old = self._standings.pop(bib, None)
        new = self._standing(bib)
        if old is not None:
            for group in old.groups:
                ranked = self._lists[group]
                ranked.remove(old.key)
                if not ranked:
                    del self._lists[group]
        if new is not None:
            self._standings[bib] = new
            for group in new.groups:
                self._lists.setdefault(group, RankedList()).add(new.key)
        if not self._report_moves:
            return self._row_or_none(bib), ()
        moved = self._moved(old, new)
        moved.discard(bib)
        shifted = sorted((self._standings[other].key for other in moved))
        return self._row_or_none(bib), tuple(self._row(key[-1]) for key in shifted)

    def _moved(self, old: _Standing | None, new: _Standing | None) -> set[str]:
        """Runners whose place in some group changed when ``old`` became ``new``.

        A place is 1 + the number strictly faster, so leaving time a shifts those slower
        than a, arriving at time b shifts those slower than b, and moving within one group
        shifts only those timed in (min(a, b), max(a, b)].
        """
        old_times = {group: old.key[0] for group in old.groups} if old else {}
        new_times = {group: new.key[0] for group in new.groups} if new else {}
        moved: set[str] = set()
        for group in old_times.keys() | new_times.keys():
            ranked = self._lists.get(group)
            if ranked is None:
                continue
            before, after = old_times.get(group), new_times.get(group)
            if before is not None and after is not None:
                if before != after:
                    moved.update(ranked.bibs_timed(min(before, after), max(before, after)))
            else:
                moved.update(ranked.bibs_timed(before if after is None else after))
        return moved

    def _rebuild(self) -> None:
        self._standings = {}
        keys: dict[tuple[str, ...], list[PlaceKey]] = {}
        for bib in self._log.tags_at(self._finish):
            standing = self._standing(bib)
            if standing is not None:
                self._standings[bib] = standing
                for group in standing.groups:
                    keys.setdefault(group, []).append(standing.key)
        self._lists = {group: RankedList.of(group_keys) for group, group_keys in keys.items()}

    def _row_or_none(self, bib: str) -> ResultRow | None:
        return self._row(bib) if bib in self._standings else None

    def _row(self, bib: str) -> ResultRow:
        standing = self._standings[bib]
        time = standing.key[0]
        lists = self._lists
        gender_group, division_group = standing.gender_group, standing.division_group
        return with_places(standing.unplaced, lists[_OVERALL].place(time),
                           None if gender_group is None else lists[gender_group].place(time),
                           None if division_group is None else lists[division_group].place(time))
