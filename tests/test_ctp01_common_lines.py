"""The one-pass parse of the common tag line agrees with the field-by-field parse.

``parse_tag_line`` reads the line nearly every controller sends (tildes, a ``normal`` or
zone-less ``iso`` time) with one regular expression; every other line goes field by field.
A line in the common shape must give exactly the read the field-by-field path gives, and a
line just outside it (sequence 0, an impossible date, a year at the limit) must still get
the field-by-field path's verdict.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from chronotrack import ctp01
from chronotrack.ctp01 import MalformedLine, parse_tag_line

ZONE = ZoneInfo("Europe/Berlin")
DAY = date(2026, 3, 29)  # a DST change in Berlin: wall-clock arithmetic matters
RECEIVED = datetime(2026, 3, 29, 10, 0, tzinfo=timezone.utc)

COMMON_LINES = [
    "CT01_33~1~start~101~09:02:15.31~0~BE0001~1",
    "CT01_33~999999~finish line~guntime~02:30:00~12~ab12CD~99",
    "CT01_33~0042~Mat-2 (east)~   7~102:12:32.370001~999~000000~0",
    "CT01_33~7~start~1234567~2026-03-29T02:30:00.5~1~BE0001~1",
    "CT01_34~8~a+b:c!~X|Y,Z;~2026-11-24T23:59:59.999999~0~BE0001~2",
]


def full_path(line: str):
    """The field-by-field parse: a trailing CR keeps a line out of the one-pass form."""
    read = parse_tag_line(line + "\r", ZONE, DAY, RECEIVED)
    return replace(read, raw_data=line)


@pytest.mark.parametrize("line", COMMON_LINES)
def test_common_line_takes_the_one_pass_parse(line):
    assert ctp01.parse_common_tag_line(line, ZONE, DAY, RECEIVED) is not None


@pytest.mark.parametrize("line", COMMON_LINES)
def test_one_pass_parse_gives_the_field_by_field_read(line):
    quick = parse_tag_line(line, ZONE, DAY, RECEIVED)
    slow = full_path(line)
    for field in fields(quick):
        assert getattr(quick, field.name) == getattr(slow, field.name), field.name
    assert quick.read_timestamp.utcoffset() == slow.read_timestamp.utcoffset()


@pytest.mark.parametrize("line, kind", [
    ("CT01_33~0~start~101~09:02:15.31~0~BE0001~1", "bad_sequence"),
    ("CT01_33~1~start~101~2026-02-30T09:02:15~0~BE0001~1", "bad_time"),
    ("CT01_33~1~start~101~9999-12-31T23:59:59~0~BE0001~1", "bad_time"),
    ("CT01_33~1~start~101~09:61:15.31~0~BE0001~1", "bad_time"),
    ("CT01_33~1~start~101~09:02:15.31~1000~BE0001~1", "bad_lap"),
    ("CT01_33~1~start~101~09:02:15.31~0~BE001~1", "bad_reader"),
    ("CT01_33~1~start~123456789~09:02:15.31~0~BE0001~1", "bad_tag"),
    ("CT01_33~1~start~101~09:02:15.31~0~BE0001~1~extra", "field_count"),
    ("CT01_33~1~a;b~101~09:02:15.31~0~BE0001~1", "bad_location"),
])
def test_lines_just_outside_the_common_shape_are_still_refused(line, kind):
    assert ctp01.parse_common_tag_line(line, ZONE, DAY, RECEIVED) is None
    with pytest.raises(MalformedLine) as error:
        parse_tag_line(line, ZONE, DAY, RECEIVED)
    assert error.value.kind == kind


@pytest.mark.parametrize("line", [
    "CT01_33~1~start~101~1224165735.31~0~BE0001~1",  # unix
    "CT01_33~1~start~101~2026-03-29T09:02:15Z~0~BE0001~1",  # iso with a zone
    "CT01_13,1,start,101,09:02:15.31,0,BE0001,1",  # commas
    "CT01_33~1~Zürich~101~09:02:15.31~0~BE0001~1",  # a location beyond ASCII
])
def test_other_valid_lines_are_read_field_by_field(line):
    assert ctp01.parse_common_tag_line(line, ZONE, DAY, RECEIVED) is None
    assert parse_tag_line(line, ZONE, DAY, RECEIVED).raw_data == line
