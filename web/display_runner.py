"""The runner object a finish screen shows: built once per read on the server, never per screen.

Its shape is the contract between the display, the designer's layout renderer
(``ChronoLayout.render``) and anything else that draws a runner: every field always present,
``known`` false for a tag with no roster entry, race time in the screen's kind (gun or chip)
as seconds to the hundredth and as ``H:MM:SS.ss`` text. Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chronotrack.results import ResultRow
    from web.queries import DisplayRead
    from web.roster import Participant

TIME_KINDS = ("gun", "chip")


def runner_object(read: DisplayRead, participant: Participant | None, row: ResultRow | None,
                  time_kind: str, division: str | None = None) -> dict[str, Any]:
    """The contract's runner for one read; ``row`` is the runner's live result (None: no time yet).

    ``division`` is the runner's division or age group when there is no result row yet (a split
    read: the announcer shows the age group), else the row's own is used."""
    if time_kind not in TIME_KINDS:
        raise ValueError(f"time_kind must be gun or chip, not {time_kind!r}")
    first = (participant.first_name or "") if participant else ""
    last = (participant.last_name or "") if participant else ""
    time_s = None
    time_text = ""
    if row is not None:
        time_s = row.chip_time_s if time_kind == "chip" else row.gun_time_s
        time_text = row.chip_time if time_kind == "chip" else row.gun_time
    return {
        "read_id": read.id, "bib": read.bib, "name": f"{first} {last}".strip(),
        "first_name": first, "last_name": last, "known": participant is not None,
        "gender": participant.gender if participant else None,
        "age": participant.age if participant else None,
        "division": (row.division if row is not None and row.division else
                     division or (participant.division if participant else None)),
        "city": participant.city if participant else None,
        "team": participant.team if participant else None,
        "location": read.location,
        "place": row.place if row is not None else None,
        "gender_place": row.gender_place if row is not None else None,
        "division_place": row.division_place if row is not None else None,
        "time_kind": time_kind, "time_s": time_s, "time_text": time_text,
        "clock_time": read.clock_time,
    }


class FirstCrossings:
    """Which reads are a runner's first at a location, so one crossing shows once on a screen.

    Antennas read a chip many times as it crosses; reads of the same tag at the same location
    within ``window`` of the first are that crossing again. Later ones count anew (laps).
    """

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._first: dict[tuple[str, str], datetime] = {}

    def is_new(self, bib: str, location: str, when: datetime) -> bool:
        key = (bib, location)
        first = self._first.get(key)
        if first is not None and abs(when - first) <= self.window:
            return False
        self._first[key] = when
        return True
