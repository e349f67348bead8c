"""The one-pass parse reads a zone-less ``iso`` time with ``datetime.fromisoformat``: for every
time in the shape it accepts, it must agree with the field-by-field parse, impossible dates
and the edges of the day included (pure, no I/O)."""

from __future__ import annotations

import random
from dataclasses import fields, replace
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from chronotrack.ctp01 import MalformedLine, parse_common_tag_line, parse_tag_line

ZONE = ZoneInfo("America/New_York")
DAY = date(2026, 11, 1)  # a DST change in New York
RECEIVED = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def iso_times(count: int, seed: int) -> list[str]:
    """Times in the one-pass shape, each part sometimes just past its range."""
    rng = random.Random(seed)
    times = []
    for _ in range(count):
        year = rng.choice([1969, 1970, 1971, 2024, 2026, 2100, 9997, 9998, 9999, 0])
        month, day = rng.randint(0, 13), rng.randint(0, 32)
        hour, minute, second = rng.randint(0, 25), rng.randint(0, 60), rng.randint(0, 60)
        fraction = rng.choice(["", "." + str(rng.randint(0, 999_999)).zfill(rng.randint(1, 6))[:6]])
        times.append(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}")
    return times


def full_path(line: str):
    """The field-by-field parse (a trailing CR keeps a line out of the one-pass form)."""
    try:
        return replace(parse_tag_line(line + "\r", ZONE, DAY, RECEIVED), raw_data=line)
    except MalformedLine as error:
        return error.kind


@pytest.mark.parametrize("seed", range(4))
def test_every_iso_time_of_the_one_pass_shape_gets_the_field_by_field_verdict(seed):
    for time_text in iso_times(500, seed) + ["2024-02-29T23:59:59.999999", "2026-11-01T01:30:00.5"]:
        line = f"CT01_33~17~finish~4711~{time_text}~0~BE0001~1"
        quick = parse_common_tag_line(line, ZONE, DAY, RECEIVED)
        slow = full_path(line)
        if quick is None:
            # Left to the full path: refused there, or (near the year limits) read there.
            assert slow == "bad_time" or time_text[:4] in ("1970", "9998"), (time_text, slow)
            continue
        assert not isinstance(slow, str), (time_text, slow)
        for field in fields(quick):
            assert getattr(quick, field.name) == getattr(slow, field.name), (time_text, field.name)
        assert quick.read_timestamp.tzinfo is ZONE
        assert quick.read_timestamp.utcoffset() == slow.read_timestamp.utcoffset()
