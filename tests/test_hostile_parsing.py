"""The parser against hostile input: any bytes are a valid read or a MalformedLine with a reason.

Pins findings 5, 6 and 7 of the hostile-port probe at the level of the pure core
(``chronotrack.ctp01``); the protocol and end-to-end tests pin the same over a connection.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronotrack.ctp01 import (
    MalformedLine,
    decode_line,
    detect_time_format,
    parse_read_time,
    parse_tag_bytes,
    parse_tag_line,
    visible_text,
)
from chronotrack.reads import TagRead

DENVER = ZoneInfo("America/Denver")
DAY = date(2024, 7, 20)
READ = "CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- finding 6: whole-second unix times ------------------------------------------------------


def test_whole_second_unix_time_is_unix_seconds_not_milliseconds_since_midnight():
    assert parse_read_time("1795503600", DENVER, DAY) == utc(2026, 11, 24, 7, 0, 0)
    assert detect_time_format("1795503600") == "unix"


def test_small_integers_stay_milliseconds_since_midnight_and_large_ones_epoch_milliseconds():
    assert parse_read_time("50535310", DENVER, DAY) == utc(2024, 7, 20, 20, 2, 15, 310000)
    assert parse_read_time("1224165735310", DENVER, DAY) == utc(2008, 10, 16, 14, 2, 15, 310000)


@pytest.mark.parametrize("text", [
    "12241657353",          # 11 digits: neither epoch seconds (year 2357) nor epoch milliseconds (1970)
    "999999999999999",      # epoch milliseconds past year 9999
    "99999999999.5",        # unix seconds past year 2286
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:00",
])
def test_impossible_times_are_rejected_with_a_reason_never_an_overflow(text):
    line = f"CT01_33~1~start~9478~{text}~0~0F2A38~1"
    with pytest.raises(MalformedLine) as caught:
        parse_tag_line(line, DENVER, DAY)
    assert "time" in caught.value.reason and caught.value.kind == "bad_time"


@pytest.mark.parametrize("sequence", ["-1", "4294967296", "99999999999999999999", "0", "+5", " 5"])
def test_impossible_sequence_numbers_are_rejected(sequence):
    with pytest.raises(MalformedLine) as caught:
        parse_tag_line(f"CT01_33~{sequence}~start~9478~14:02:15.31~0~0F2A38~1", DENVER, DAY)
    assert caught.value.kind == "bad_sequence"


# --- findings 5 and 7: bytes, NUL, separators -----------------------------------------------


def test_a_read_line_is_kept_exactly_as_sent():
    read = parse_tag_bytes(READ.encode() + b"\r", DENVER, DAY)
    assert read.raw_data == READ


def test_non_utf8_bytes_in_a_tag_line_are_rejected_not_replaced():
    data = b"CT01_33~1~start~94\xff8~14:02:15.31~0~0F2A38~1"
    with pytest.raises(MalformedLine) as caught:
        parse_tag_bytes(data, DENVER, DAY)
    assert caught.value.kind == "not_utf8" and "UTF-8" in caught.value.reason


def test_nul_bytes_are_rejected():
    with pytest.raises(MalformedLine) as caught:
        decode_line(b"CT01_33~1~start~94\x008~14:02:15.31~0~0F2A38~1")
    assert caught.value.kind == "nul_byte"


@pytest.mark.parametrize("line", ["~~~~~~~", "CT01_33~~~~~~~", "CT01_13,,,,,,,", ",,,,", "\t\t"])
def test_lines_of_only_separators_are_rejected(line):
    with pytest.raises(MalformedLine):
        parse_tag_line(line, DENVER, DAY)


def test_control_characters_in_a_location_are_rejected():
    with pytest.raises(MalformedLine) as caught:
        parse_tag_line("CT01_33~1~st\x1bart~9478~14:02:15.31~0~0F2A38~1", DENVER, DAY)
    assert caught.value.kind == "bad_location"


def test_visible_text_escapes_invalid_bytes_and_controls_and_keeps_the_rest():
    assert visible_text(b"ok \xff\x00 \xe2\x82\xac\tend") == "ok \\xff\\x00 \u20ac\tend"
    assert visible_text("a\x00b") == "a\\x00b"
    assert visible_text(READ) == READ
    assert "\x00" not in visible_text(bytes(range(256)))


# --- property: any bytes parse or are rejected with a reason --------------------------------

VALID_FIELDS = [b"CT01_33", b"17", b"finish", b"1234", b"14:02:15.31", b"0", b"0F2A38", b"1"]


def mutated_valid_lines():
    """A valid line with one field replaced by arbitrary bytes, or bytes spliced in."""
    def mutate(index, replacement, splice_at, spliced):
        fields = list(VALID_FIELDS)
        fields[index] = replacement
        line = b"~".join(fields)
        at = splice_at % (len(line) + 1)
        return line[:at] + spliced + line[at:]

    return st.builds(mutate, st.integers(0, 7), st.binary(max_size=24), st.integers(0, 200),
                     st.binary(max_size=3))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), mutated_valid_lines(),
                 st.text(max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass"))))
def test_any_bytes_parse_into_a_valid_read_or_are_rejected_with_a_reason(data):
    try:
        read = parse_tag_bytes(data, DENVER, DAY)
    except MalformedLine as error:
        assert error.reason and error.kind
        assert "\x00" not in visible_text(data)
        return
    assert isinstance(read, TagRead)
    assert read.raw_data.encode("utf-8") == data.rstrip(b"\r")
    assert 1 <= read.sequence_number <= 999_999
    assert read.read_timestamp.tzinfo is not None
    assert 1970 <= read.read_timestamp.astimezone(timezone.utc).year <= 9998
    assert "\x00" not in read.raw_data
