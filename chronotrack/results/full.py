"""Results computed from scratch: the reference the live table is checked against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from chronotrack.reads import TagRead
from chronotrack.results.divisions import division_for, normalise_gender
from chronotrack.results.ranking import place_key
from chronotrack.results.readlog import ReadLog
from chronotrack.results.rows import ResultRow, build_row
from chronotrack.results.settings import EventSettings, PlaceBy, resolve_gun_time, resolve_locations
from chronotrack.results.timing import RunnerTimes, runner_times

if TYPE_CHECKING:
    from web.roster import Participant


@dataclass(frozen=True)
class _Finisher:
    bib: str
    participant: Participant | None
    times: RunnerTimes
    time: int  # the hundredths the event places by
    gender: str | None
    division: str | None


def compute_results(
    reads: Iterable[TagRead],
    roster: Iterable[Participant] = (),
    settings: EventSettings = EventSettings(),
) -> list[ResultRow]:
    """Every finisher's row, in place order, from all the reads in arrival order.

    Arrival order matters only where the settings leave the finish to "the last location
    seen". No gun time yet (none set, none read) means no results yet.
    """
    log = ReadLog()
    for read in reads:
        log.add(read)
    finish, start = resolve_locations(settings, log.locations)
    gun = resolve_gun_time(settings, log.gun_times, log.locations, finish, start)
    if finish is None or gun is None:
        return []
    participants = {participant.bib: participant for participant in roster}
    finishers = []
    for bib in log.tags_at(finish):
        times = runner_times(log.times(finish, bib), log.times(start, bib), gun,
                             settings.duplicate_window, settings.minimum_time)
        if times is None:
            continue
        participant = participants.get(bib)
        gender = normalise_gender(participant.gender) if participant else None
        time = times.chip_hundredths if settings.place_by is PlaceBy.CHIP else times.gun_hundredths
        finishers.append(_Finisher(bib, participant, times, time, gender, division_for(participant, settings)))
    finishers.sort(key=lambda finisher: place_key(finisher.time, finisher.bib))
    overall = _Ranker()
    by_gender: dict[str, _Ranker] = {}
    by_division: dict[str, _Ranker] = {}
    rows = []
    for finisher in finishers:
        gender_place = None
        if finisher.gender is not None:
            gender_place = by_gender.setdefault(finisher.gender, _Ranker()).next_place(finisher.time)
        division_place = None
        if finisher.division is not None:
            division_place = by_division.setdefault(finisher.division, _Ranker()).next_place(finisher.time)
        rows.append(build_row(finisher.bib, finisher.participant, finisher.times,
                              overall.next_place(finisher.time), finisher.gender, gender_place,
                              finisher.division, division_place))
    return rows


class _Ranker:
    """Competition ranking over times given fastest first: 1, 2, 2, 4."""

    def __init__(self) -> None:
        self._count = 0
        self._last_time: int | None = None
        self._last_place = 0

    def next_place(self, time: int) -> int:
        self._count += 1
        if time != self._last_time:
            self._last_time, self._last_place = time, self._count
        return self._last_place
