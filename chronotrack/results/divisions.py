"""Genders and divisions for placing: the roster's division if it has one, else an age group.

Age-group labels are the gender letter and a zero-padded range: ``M30-34``, ``F01-14`` (the
youngest group holds every age up to its top, age 0 included), ``M80+`` for an open oldest
group when the event sets one. Ten-year groups read ``F20-29`` with ``F01-19`` youngest.
A runner whose gender is unknown has no age group (the groups are per gender) and so no
division place, unless the roster names their division.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chronotrack.results.settings import EventSettings

if TYPE_CHECKING:
    from web.roster import Participant

_GENDER_WORDS = {
    "M": "M", "MALE": "M", "MAN": "M", "MEN": "M", "BOY": "M",
    "F": "F", "FEMALE": "F", "W": "F", "WOMAN": "F", "WOMEN": "F", "GIRL": "F",
}


def normalise_gender(text: str | None) -> str | None:
    """``M`` or ``F`` from the spellings rosters use; other genders (``X``, ``NB``) upper-cased."""
    if text is None or not text.strip():
        return None
    upper = text.strip().upper()
    return _GENDER_WORDS.get(upper, upper)


def age_group(age: int | None, gender: str | None, settings: EventSettings) -> str | None:
    """The standard age-group label, or None without an age or a gender."""
    if age is None or gender is None:
        return None
    width = settings.age_group_years
    youngest_top = settings.youngest_group_top_age
    oldest = settings.oldest_group_from
    if age <= youngest_top:
        return f"{gender}01-{youngest_top:02d}"
    if oldest is not None and age >= oldest:
        return f"{gender}{oldest:02d}+"
    low = age // width * width
    return f"{gender}{low:02d}-{low + width - 1:02d}"


def division_for(participant: Participant | None, settings: EventSettings) -> str | None:
    """The roster's division when present (the race's own categories win), else the age group."""
    if participant is None:
        return None
    if participant.division and participant.division.strip():
        return participant.division.strip()
    return age_group(participant.age, normalise_gender(participant.gender), settings)
