"""Race times and placings as pure functions over stored tag reads: no I/O, no reactor.

Public API (everything a results page or JSON API needs is imported from here):

- ``EventSettings(finish_location=None, start_location=None, gun_time=None,
  duplicate_window=60 s, minimum_time=0, place_by=PlaceBy.GUN, age_group_years=5,
  youngest_group_top=None, oldest_group_from=None, location_order=())``: how one event is
  scored; ``PlaceBy.GUN`` (USATF, the default) or ``PlaceBy.CHIP``; ``NO_START_MAT``.
- ``RaceResults(settings, roster)``: the live table. ``add_read(read) -> ResultsChange``
  takes one ``TagRead``; ``set_participant(participant) -> ResultsChange`` fixes the roster;
  ``rows()``, ``row(bib)``, ``unknown_tags()``, ``gun_time``, ``finish_location``,
  ``start_location``.
- ``ResultsChange(read_kind, runner, shifted, rebuilt)``: the reading runner's row, the rows
  whose places moved, or ``rebuilt`` (reload ``rows()``); ``ReadKind`` says how a read counted.
- ``compute_results(reads, roster, settings) -> list[ResultRow]``: the same rows from scratch
  (reads in arrival order), the reference the live table is tested against.

Cost: a read costs a few binary searches plus one row per runner whose place it moves (none
when finishes arrive in time order); a new gun time or a new start or finish location
re-scores the race from the kept reads, once.
- ``ResultRow``: place, bib, name, gender, gender_place, division, division_place,
  gun_time_s, chip_time_s (numbers), gun_time, chip_time (``H:MM:SS.ss``), age, team, city,
  state, in_roster, flags (``NO_START_READ``, ``UNKNOWN_TAG``, ``LATE_FINISH_READ``).
- ``search(rows, query)`` (exact bib or name substring, any case), ``filter_rows(rows,
  gender=None, division=None)``, ``divisions(rows)``; ``format_time(hundredths)``,
  ``hundredths(timedelta)``, ``age_group(age, gender, settings)``.

The rules, as road-race scoring software applies them:

- Finish: a location named ``finish`` (any case), else the last location in order (the
  settings' ``location_order``, then others as reads showed them) that is not the start
  mat. Start mat: a location named ``start``, if any. Gun: set by hand, else the latest
  ``guntime`` read at the start mat, else at the finish, else anywhere (a re-fired gun
  replaces a test fire). No gun time yet means no results yet (the reads are kept and
  scored when it arrives).
- Gun time = first finish read - gun; chip time = first finish read - the runner's last
  start-mat read before it (start reads before the gun are warm-ups). Without a start read,
  chip time = gun time and the row is flagged. Finish reads before the gun, or sooner than
  ``minimum_time`` after it, do not count.
- Duplicates: finish reads up to ``duplicate_window`` after a runner's first are
  duplicates; later ones are flagged ``late_finish_read`` and ignored (one-lap races).
- Times are truncated to the hundredth, never rounded: 17:03.418 is ``0:17:03.41``.
- Ties: equal times to the hundredth share a place and the next is skipped (1, 2, 2, 4);
  tied runners are listed by bib (numeric bibs by number first).
- Places overall, by gender and by division. Division: the roster's own when it has one,
  else the age group from age and gender (``M30-34``, youngest ``F01-14``, ten-year groups
  ``M20-29``/``F01-19``, an optional open ``M80+``). Unknown gender: no gender place and no
  age group.
- Tags not in the roster are listed and placed overall, named ``Unknown``, flagged
  ``unknown_tag``, so the timer can fix the roster; they have no gender or division.
"""

from chronotrack.results.divisions import age_group, division_for, normalise_gender
from chronotrack.results.full import compute_results
from chronotrack.results.live import RaceResults, ReadKind, ResultsChange
from chronotrack.results.rows import (
    LATE_FINISH_READ,
    NO_START_READ,
    UNKNOWN_NAME,
    UNKNOWN_TAG,
    ResultRow,
    divisions,
    filter_rows,
    search,
)
from chronotrack.results.settings import NO_START_MAT, EventSettings, PlaceBy
from chronotrack.results.timing import format_time, hundredths

__all__ = [
    "EventSettings", "PlaceBy", "NO_START_MAT",
    "RaceResults", "ResultsChange", "ReadKind", "compute_results",
    "ResultRow", "NO_START_READ", "UNKNOWN_TAG", "LATE_FINISH_READ", "UNKNOWN_NAME",
    "search", "filter_rows", "divisions",
    "format_time", "hundredths", "age_group", "division_for", "normalise_gender",
]
