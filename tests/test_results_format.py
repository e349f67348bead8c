"""Race time formatting and truncation: ``H:MM:SS.ss``, cut to the hundredth, never rounded."""

from datetime import timedelta

import pytest

from chronotrack.results import format_time, hundredths
from chronotrack.results.timing import seconds


def test_a_time_under_an_hour_has_a_zero_hour():
    assert format_time(17 * 6000 + 3 * 100 + 41) == "0:17:03.41"


def test_a_time_over_an_hour_pads_minutes_and_seconds_but_not_hours():
    assert format_time(1 * 360000 + 2 * 6000 + 3 * 100 + 40) == "1:02:03.40"
    assert format_time(10 * 360000 + 5) == "10:00:00.05"


def test_a_multi_day_time_keeps_counting_hours():
    assert format_time(hundredths(timedelta(days=1, hours=1, seconds=1))) == "25:00:01.00"


def test_a_time_exactly_on_the_second_shows_zero_hundredths():
    assert hundredths(timedelta(minutes=17, seconds=3)) == 102300
    assert format_time(102300) == "0:17:03.00"
    assert format_time(0) == "0:00:00.00"


def test_thousandths_are_truncated_not_rounded():
    assert hundredths(timedelta(seconds=1023, microseconds=419_999)) == 102341
    assert format_time(hundredths(timedelta(seconds=1023, microseconds=419_999))) == "0:17:03.41"
    assert hundredths(timedelta(seconds=59, microseconds=999_999)) == 5999
    assert format_time(5999) == "0:00:59.99"  # not 0:01:00.00
    assert hundredths(timedelta(microseconds=9_999)) == 0


def test_seconds_as_numbers_are_the_truncated_hundredths():
    assert seconds(hundredths(timedelta(hours=1, minutes=2, seconds=3, milliseconds=409))) == 3723.40
    assert seconds(102341) == 1023.41


def test_negative_times_are_refused():
    with pytest.raises(ValueError):
        hundredths(timedelta(milliseconds=-10))
    with pytest.raises(ValueError):
        format_time(-1)

