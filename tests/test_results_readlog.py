"""The read log keeps each (location, tag)'s times sorted, however the reads arrive: one at a
time out of order (two controllers at one mat), or in sorted runs as the database hands them."""

from __future__ import annotations

from array import array

from hypothesis import given, strategies as st

from chronotrack.results.readlog import ReadLog

MOMENTS = st.integers(min_value=1_700_000_000_000_000, max_value=1_700_000_100_000_000)


@given(st.lists(MOMENTS, max_size=200))
def test_times_added_one_at_a_time_in_any_order_are_kept_sorted(moments):
    log = ReadLog()
    log.add_location("finish")
    for moment in moments:
        log.add_times("finish", "101", array("q", (moment,)))
    assert list(log.micros("finish", "101")) == sorted(moments)


@given(st.lists(st.lists(MOMENTS, min_size=1, max_size=20), max_size=20))
def test_sorted_runs_added_in_any_order_are_merged_sorted(runs):
    log = ReadLog()
    log.add_location("finish")
    for run in runs:
        log.add_times("finish", "101", array("q", sorted(run)))
    assert list(log.micros("finish", "101")) == sorted(moment for run in runs for moment in run)
