"""A results row as pages and the JSON API show it, and the search and filters over rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from chronotrack.results.divisions import normalise_gender
from chronotrack.results.timing import RunnerTimes, format_time, seconds

if TYPE_CHECKING:
    from web.roster import Participant

UNKNOWN_NAME = "Unknown"

# Flags tell the timer which rows to look at.
NO_START_READ = "no_start_read"  # no start-mat read: chip time is the gun time
UNKNOWN_TAG = "unknown_tag"  # the tag is not in the roster: fix the roster
LATE_FINISH_READ = "late_finish_read"  # finish reads after the duplicate window, ignored


@dataclass(frozen=True, slots=True)  # tens of thousands per big race: no __dict__ each
class ResultRow:
    """One finisher. Times are seconds to the hundredth (truncated) plus their ``H:MM:SS.ss`` text.

    ``gender_place`` and ``division_place`` are None when the gender or division is unknown.
    """

    place: int
    bib: str
    name: str
    gender: str | None
    gender_place: int | None
    division: str | None
    division_place: int | None
    gun_time_s: float
    chip_time_s: float
    gun_time: str
    chip_time: str
    age: int | None = None
    team: str | None = None
    city: str | None = None
    state: str | None = None
    in_roster: bool = True
    flags: tuple[str, ...] = ()


def participant_name(participant: Participant | None) -> str:
    if participant is None:
        return UNKNOWN_NAME
    return f"{participant.first_name} {participant.last_name}".strip()


def build_row(
    bib: str,
    participant: Participant | None,
    times: RunnerTimes,
    place: int,
    gender: str | None,
    gender_place: int | None,
    division: str | None,
    division_place: int | None,
) -> ResultRow:
    """The row for one finisher, once their places are known."""
    flags = []
    if not times.started_on_mat:
        flags.append(NO_START_READ)
    if participant is None:
        flags.append(UNKNOWN_TAG)
    if times.late_reads:
        flags.append(LATE_FINISH_READ)
    return ResultRow(
        place=place, bib=bib, name=participant_name(participant),
        gender=gender, gender_place=gender_place, division=division, division_place=division_place,
        gun_time_s=seconds(times.gun_hundredths), chip_time_s=seconds(times.chip_hundredths),
        gun_time=format_time(times.gun_hundredths), chip_time=format_time(times.chip_hundredths),
        age=participant.age if participant else None,
        team=participant.team if participant else None,
        city=participant.city if participant else None,
        state=participant.state if participant else None,
        in_roster=participant is not None,
        flags=tuple(flags),
    )


def with_places(row: ResultRow, place: int, gender_place: int | None, division_place: int | None) -> ResultRow:
    """``row`` with new places: what a runner whose place shifted needs, and nothing more.

    Written out because ``dataclasses.replace`` costs twice as much, and a finish read
    arriving out of order can shift thousands of rows.
    """
    return ResultRow(
        place=place, bib=row.bib, name=row.name,
        gender=row.gender, gender_place=gender_place, division=row.division, division_place=division_place,
        gun_time_s=row.gun_time_s, chip_time_s=row.chip_time_s, gun_time=row.gun_time, chip_time=row.chip_time,
        age=row.age, team=row.team, city=row.city, state=row.state, in_roster=row.in_roster, flags=row.flags,
    )


def search(rows: Iterable[ResultRow], query: str) -> list[ResultRow]:
    """Rows whose bib is exactly ``query`` or whose name contains it, ignoring case; order kept."""
    text = query.strip()
    if not text:
        return []
    folded = text.casefold()
    return [row for row in rows if row.bib == text or folded in row.name.casefold()]


def filter_rows(
    rows: Iterable[ResultRow], gender: str | None = None, division: str | None = None
) -> list[ResultRow]:
    """Rows of one gender (any roster spelling: "f", "Female") and/or one division; order kept."""
    wanted_gender = normalise_gender(gender)
    return [row for row in rows
            if (wanted_gender is None or row.gender == wanted_gender)
            and (division is None or row.division == division)]


def divisions(rows: Iterable[ResultRow]) -> list[str]:
    """The division labels present, sorted, for a page's division picker."""
    return sorted({row.division for row in rows if row.division is not None})
