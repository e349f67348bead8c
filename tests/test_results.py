"""Race times and placings from tag reads: each expected time is worked out here with
datetime arithmetic from the read times, never by calling the code under test.

Every scenario is scored twice, by the live ``RaceResults`` fed read by read and by the
full ``compute_results``, and both must give the expected rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from chronotrack.ctp01 import parse_tag_line
from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG, TagRead
from chronotrack.results import (
    LATE_FINISH_READ,
    NO_START_MAT,
    NO_START_READ,
    UNKNOWN_NAME,
    UNKNOWN_TAG,
    EventSettings,
    PlaceBy,
    RaceResults,
    ReadKind,
    compute_results,
    divisions,
    filter_rows,
    search,
)
from web.roster import Participant

GUN = datetime(2026, 5, 3, 8, 0, 0, tzinfo=timezone.utc)


def after_gun(minutes: int = 0, seconds: int = 0, milliseconds: int = 0, microseconds: int = 0) -> datetime:
    return GUN + timedelta(minutes=minutes, seconds=seconds, milliseconds=milliseconds, microseconds=microseconds)


def read(location: str, tag: str, when: datetime, sequence: int = 1) -> TagRead:
    text = when.strftime("%H:%M:%S.%f")[:-4]
    return TagRead("CT01_33", sequence, location, tag, text, when, 0, "0F2A38", 0 if tag == GUN_TIME_TAG else 1,
                   f"CT01_33~{sequence}~{location}~{tag}~{text}~0~0F2A38~1")


def gun_read(location: str = "start", when: datetime = GUN) -> TagRead:
    return read(location, GUN_TIME_TAG, when)


def truncated_seconds(elapsed: timedelta) -> float:
    """Whole hundredths of ``elapsed``, cut not rounded, as seconds: worked out independently."""
    whole_seconds = elapsed.days * 86400 + elapsed.seconds
    return (whole_seconds * 100 + elapsed.microseconds // 10_000) / 100


def score(reads, roster=(), settings=EventSettings()):
    """Rows from the full recompute, after checking the live table agrees read by read."""
    live = RaceResults(settings, roster)
    for each in reads:
        live.add_read(each)
    rows = compute_results(reads, roster, settings)
    assert live.rows() == rows
    return rows


def by_bib(rows):
    return {row.bib: row for row in rows}


def test_gun_time_is_the_first_finish_read_minus_the_controllers_gun():
    finish = after_gun(17, 3, 418)
    rows = score([gun_read(), read("start", "7", after_gun(0, 2)), read("finish", "7", finish)],
                 [Participant("7", "Ann", "Ito", 34, "F")])
    assert truncated_seconds(finish - GUN) == 1023.41
    assert rows[0].gun_time_s == 1023.41
    assert rows[0].gun_time == "0:17:03.41"
    assert (rows[0].place, rows[0].bib, rows[0].name) == (1, "7", "Ann Ito")


def test_chip_time_runs_from_the_runners_last_start_read_before_their_finish():
    first_start, last_start = after_gun(0, 38, 120), after_gun(0, 41, 275)
    finish = after_gun(25, 10, 999)
    walked_back_over_the_start = after_gun(40)
    rows = score([gun_read(), read("start", "12", first_start), read("start", "12", last_start),
                  read("finish", "12", finish), read("start", "12", walked_back_over_the_start)])
    expected_chip = truncated_seconds(finish - last_start)
    assert expected_chip == 1469.72
    assert rows[0].chip_time_s == expected_chip
    assert rows[0].chip_time == "0:24:29.72"
    assert rows[0].gun_time_s == truncated_seconds(finish - GUN) == 1510.99
    assert NO_START_READ not in rows[0].flags


def test_a_start_read_before_the_gun_is_a_warm_up_not_a_start():
    finish = after_gun(20)
    rows = score([gun_read(), read("start", "3", GUN - timedelta(seconds=30)), read("finish", "3", finish)])
    assert rows[0].chip_time_s == rows[0].gun_time_s == truncated_seconds(finish - GUN)
    assert NO_START_READ in rows[0].flags


def test_duplicate_finish_reads_inside_the_window_are_ignored():
    first = after_gun(18, 0, 250)
    reads = [gun_read(), read("finish", "5", first), read("finish", "5", first + timedelta(seconds=2)),
             read("finish", "5", first + timedelta(seconds=60))]
    rows = score(reads)
    assert len(rows) == 1
    assert rows[0].gun_time_s == truncated_seconds(first - GUN) == 1080.25
    assert LATE_FINISH_READ not in rows[0].flags
    live = RaceResults()
    kinds = [live.add_read(each).read_kind for each in reads]
    assert kinds == [ReadKind.GUN_TIME, ReadKind.FINISH, ReadKind.DUPLICATE, ReadKind.DUPLICATE]


def test_finish_reads_after_the_window_are_flagged_not_a_new_finish():
    first = after_gun(18)
    late = first + timedelta(seconds=61)
    settings = EventSettings(duplicate_window=timedelta(seconds=60))
    rows = score([gun_read(), read("finish", "5", first), read("finish", "5", late)], settings=settings)
    assert rows[0].gun_time_s == truncated_seconds(first - GUN)
    assert LATE_FINISH_READ in rows[0].flags
    live = RaceResults(settings)
    live.add_read(gun_read())
    live.add_read(read("finish", "5", first))
    assert live.add_read(read("finish", "5", late)).read_kind is ReadKind.LATE_FINISH


def test_an_earlier_finish_read_arriving_late_becomes_the_finish():
    earlier, later = after_gun(18, 0, 10), after_gun(18, 1, 500)
    rows = score([gun_read(), read("finish", "5", later), read("finish", "5", earlier)])
    assert rows[0].gun_time_s == truncated_seconds(earlier - GUN) == 1080.01


def test_finish_reads_before_the_gun_or_the_minimum_time_do_not_count():
    crossing_at_the_start = after_gun(0, 5)
    finish = after_gun(31, 7, 70)
    reads = [gun_read(), read("finish", "9", GUN - timedelta(minutes=5)), read("finish", "9", crossing_at_the_start),
             read("finish", "9", finish)]
    rows = score(reads, settings=EventSettings(minimum_time=timedelta(minutes=10)))
    assert rows[0].gun_time_s == truncated_seconds(finish - GUN) == 1867.07
    assert score(reads[:2]) == []


def test_runners_without_a_start_read_get_chip_time_equal_to_gun_time_and_a_flag():
    start_of_2 = after_gun(0, 12, 340)
    finish_of_1, finish_of_2 = after_gun(21, 30, 5), after_gun(21, 40, 119)
    rows = by_bib(score([gun_read(), read("start", "2", start_of_2),
                         read("finish", "1", finish_of_1), read("finish", "2", finish_of_2)]))
    assert rows["1"].chip_time_s == rows["1"].gun_time_s == truncated_seconds(finish_of_1 - GUN) == 1290.0
    assert NO_START_READ in rows["1"].flags
    assert rows["2"].chip_time_s == truncated_seconds(finish_of_2 - start_of_2) == 1287.77
    assert NO_START_READ not in rows["2"].flags


def test_equal_times_to_the_hundredth_share_a_place_the_next_is_skipped_and_ties_list_by_bib():
    reads = [gun_read(),
             read("finish", "4", after_gun(16, 0, 0)),
             read("finish", "10", after_gun(16, 30, 418)),  # 0:16:30.41
             read("finish", "9", after_gun(16, 30, 412)),  # 0:16:30.41 too: truncated, not rounded
             read("finish", "1", after_gun(16, 30, 420))]  # 0:16:30.42
    rows = score(reads)
    assert [(row.place, row.bib, row.gun_time) for row in rows] == [
        (1, "4", "0:16:00.00"), (2, "9", "0:16:30.41"), (2, "10", "0:16:30.41"), (4, "1", "0:16:30.42")]


def test_placings_by_gender_and_by_roster_division():
    roster = [Participant("1", "Al", "A", 40, "M", division="Masters"),
              Participant("2", "Bea", "B", 25, "F", division="Open"),
              Participant("3", "Cy", "C", 28, "M", division="Open"),
              Participant("4", "Di", "D", 45, "female", division="Masters"),
              Participant("5", "Ed", "E", 33, "M", division="Open")]
    finishes = {"3": after_gun(15), "2": after_gun(16), "1": after_gun(17), "4": after_gun(18), "5": after_gun(19)}
    rows = score([gun_read()] + [read("finish", bib, when) for bib, when in finishes.items()], roster)
    assert [(r.place, r.bib, r.gender, r.gender_place, r.division, r.division_place) for r in rows] == [
        (1, "3", "M", 1, "Open", 1),
        (2, "2", "F", 1, "Open", 2),
        (3, "1", "M", 2, "Masters", 1),
        (4, "4", "F", 2, "Masters", 2),
        (5, "5", "M", 3, "Open", 3)]
    assert [r.bib for r in filter_rows(rows, gender="f")] == ["2", "4"]
    assert [r.bib for r in filter_rows(rows, gender="M", division="Open")] == ["3", "5"]
    assert divisions(rows) == ["Masters", "Open"]


def test_age_group_divisions_are_computed_from_age_when_the_roster_has_no_division():
    roster = [Participant("1", age=14, gender="F"), Participant("2", age=15, gender="F"),
              Participant("3", age=34, gender="M"), Participant("4", age=35, gender="Male"),
              Participant("5", age=83, gender="M"), Participant("6", age=30, gender="M", division="Elite"),
              Participant("7", age=30), Participant("8", gender="M"), Participant("9", age=31, gender="M")]
    reads = [gun_read()] + [read("finish", str(bib), after_gun(20, bib)) for bib in range(1, 10)]

    rows = by_bib(score(reads, roster))
    assert {bib: row.division for bib, row in rows.items()} == {
        "1": "F01-14", "2": "F15-19", "3": "M30-34", "4": "M35-39", "5": "M80-84", "6": "Elite",
        "7": None, "8": None, "9": "M30-34"}
    assert (rows["3"].division_place, rows["9"].division_place, rows["7"].division_place) == (1, 2, None)

    ten_years = EventSettings(age_group_years=10, oldest_group_from=70)
    rows = by_bib(score(reads, roster, ten_years))
    assert {bib: rows[bib].division for bib in "12345"} == {
        "1": "F01-19", "2": "F01-19", "3": "M30-39", "4": "M30-39", "5": "M70+"}
    assert (rows["1"].division_place, rows["2"].division_place) == (1, 2)


def test_tags_missing_from_the_roster_are_listed_and_placed_not_dropped():
    finish_known, finish_unknown = after_gun(19, 1), after_gun(18, 59, 990)
    reads = [gun_read(), read("finish", "100", finish_known), read("finish", "777", finish_unknown),
             read("start", "555", after_gun(0, 3))]
    roster = [Participant("100", "Kim", "Lee", 30, "F")]
    rows = score(reads, roster)
    assert [(r.place, r.bib, r.name, r.in_roster, r.gender, r.gender_place, r.division) for r in rows] == [
        (1, "777", UNKNOWN_NAME, False, None, None, None), (2, "100", "Kim Lee", True, "F", 1, "F30-34")]
    assert UNKNOWN_TAG in rows[0].flags
    assert rows[0].gun_time_s == truncated_seconds(finish_unknown - GUN) == 1139.99
    live = RaceResults(EventSettings(), roster)
    for each in reads:
        live.add_read(each)
    assert live.unknown_tags() == ["555", "777"]


def test_chip_time_placing_when_the_event_asks_for_it():
    # Bib 1 crossed the start mat late: faster on the chip, slower on the gun.
    start_1, finish_1 = after_gun(1, 30), after_gun(20, 30)
    start_2, finish_2 = after_gun(0, 5), after_gun(20, 0)
    reads = [gun_read(), read("start", "1", start_1), read("start", "2", start_2),
             read("finish", "1", finish_1), read("finish", "2", finish_2)]
    assert truncated_seconds(finish_1 - start_1) < truncated_seconds(finish_2 - start_2)
    assert truncated_seconds(finish_1 - GUN) > truncated_seconds(finish_2 - GUN)

    assert [row.bib for row in score(reads)] == ["2", "1"]  # gun time places by default (USATF)
    by_chip = score(reads, settings=EventSettings(place_by=PlaceBy.CHIP))
    assert [(row.place, row.bib, row.chip_time_s) for row in by_chip] == [
        (1, "1", truncated_seconds(finish_1 - start_1)), (2, "2", truncated_seconds(finish_2 - start_2))]


def test_a_manual_gun_time_overrides_the_controllers():
    manual = GUN + timedelta(seconds=4, milliseconds=500)
    finish = after_gun(30)
    rows = score([gun_read(), read("finish", "8", finish)], settings=EventSettings(gun_time=manual))
    assert rows[0].gun_time_s == truncated_seconds(finish - manual) == 1795.5
    assert rows[0].gun_time == "0:29:55.50"


def test_the_gun_comes_from_the_start_mat_else_the_finish_and_a_re_fired_gun_replaces_a_test_fire():
    finish = after_gun(25)
    finish_gun = GUN - timedelta(seconds=3)
    test_fire = GUN - timedelta(minutes=10)
    with_start_mat = [read("finish", GUN_TIME_TAG, finish_gun), gun_read("start", test_fire), gun_read("start"),
                      read("start", "6", after_gun(0, 1)), read("finish", "6", finish)]
    assert score(with_start_mat)[0].gun_time_s == truncated_seconds(finish - GUN) == 1500.0
    no_start_mat = [read("finish", GUN_TIME_TAG, finish_gun), read("finish", "6", finish)]
    assert score(no_start_mat)[0].gun_time_s == truncated_seconds(finish - finish_gun) == 1503.0
    ignoring_the_start_mat = EventSettings(start_location=NO_START_MAT)
    row = score(with_start_mat, settings=ignoring_the_start_mat)[0]
    assert row.gun_time_s == row.chip_time_s == 1503.0
    assert NO_START_READ in row.flags


def test_tag_lines_as_a_controller_sends_them_are_scored_in_the_events_time_zone():
    zone, day = ZoneInfo("America/Chicago"), date(2026, 5, 3)
    lines = ["CT01_33~1~start~guntime~07:30:00.00~0~DF239A~0",
             "CT01_33~2~start~1042~07:30:04.58~0~DF239A~2",
             "CT01_33~1~finish~1042~08:11:02.07~0~0F2A38~1",
             "CT01_33~2~finish~1042~08:11:02.91~0~0F2A38~3"]
    rows = score([parse_tag_line(line, zone, day) for line in lines], [Participant("1042", "Eli", "Ng", 44, "M")])
    gun = datetime(2026, 5, 3, 7, 30, tzinfo=zone)
    finish = datetime(2026, 5, 3, 8, 11, 2, 70_000, tzinfo=zone)
    start = datetime(2026, 5, 3, 7, 30, 4, 580_000, tzinfo=zone)
    assert rows[0].gun_time_s == truncated_seconds(finish - gun)
    assert rows[0].chip_time_s == truncated_seconds(finish - start)
    assert (rows[0].gun_time, rows[0].chip_time, rows[0].division) == ("0:41:02.07", "0:40:57.49", "M40-44")


def test_the_finish_is_the_location_named_finish_else_the_last_location_seen():
    reads = [read("start", NEW_LOCATION_TAG, GUN), read("Finish", NEW_LOCATION_TAG, GUN),
             read("5k", NEW_LOCATION_TAG, GUN), gun_read("start"),
             read("5k", "1", after_gun(10)), read("Finish", "1", after_gun(21))]
    assert score(reads)[0].gun_time_s == truncated_seconds(after_gun(21) - GUN)
    renamed = [read("mat-a", NEW_LOCATION_TAG, GUN), read("mat-b", NEW_LOCATION_TAG, GUN),
               read("mat-a", GUN_TIME_TAG, GUN), read("mat-a", "1", after_gun(10)), read("mat-b", "1", after_gun(21))]
    assert score(renamed)[0].gun_time_s == 1260.0
    chosen = EventSettings(finish_location="mat-a")
    assert score(renamed, settings=chosen)[0].gun_time_s == 600.0


def test_the_start_mat_alone_is_never_taken_for_the_finish():
    only_the_start_so_far = [gun_read("start"), read("start", "1", after_gun(0, 4))]
    assert score(only_the_start_so_far) == []
    then_a_mat_appears = only_the_start_so_far + [read("mat-b", "1", after_gun(22))]
    row = score(then_a_mat_appears)[0]
    assert (row.gun_time_s, row.chip_time_s) == (1320.0, truncated_seconds(after_gun(22) - after_gun(0, 4)))


def test_no_gun_time_means_no_results_until_one_arrives():
    reads = [read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21))]
    assert score(reads) == []
    live = RaceResults()
    assert [live.add_read(each).read_kind for each in reads] == [ReadKind.NO_GUN_TIME] * 2
    change = live.add_read(read("finish", GUN_TIME_TAG, GUN))
    assert change.rebuilt and live.gun_time == GUN
    assert [(row.bib, row.gun_time_s) for row in live.rows()] == [("1", 1200.0), ("2", 1260.0)]


def test_search_matches_an_exact_bib_or_a_name_substring_in_any_case():
    roster = [Participant("12", "Maria", "Lopez"), Participant("120", "Tom", "Marsh"), Participant("3", "Ana", "Sim")]
    finishes = [read("finish", bib, after_gun(20, index)) for index, bib in enumerate(["12", "120", "3"])]
    rows = score([gun_read()] + finishes, roster)
    assert [row.bib for row in search(rows, "12")] == ["12"]
    assert [row.bib for row in search(rows, "MAR")] == ["12", "120"]
    assert [row.bib for row in search(rows, " lopez ")] == ["12"]
    assert search(rows, "") == []


def test_event_settings_refuse_what_cannot_be_scored():
    with pytest.raises(ValueError, match="timezone-aware"):
        EventSettings(gun_time=datetime(2026, 5, 3, 8, 0))
    with pytest.raises(ValueError, match="5 or 10"):
        EventSettings(age_group_years=3)
    with pytest.raises(ValueError, match="multiple"):
        EventSettings(youngest_group_top=12)
    with pytest.raises(ValueError, match="negative"):
        EventSettings(duplicate_window=timedelta(seconds=-1))
