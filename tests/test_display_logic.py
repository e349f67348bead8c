"""Pure logic of the finish screens: the runner object handed to screens and layouts, first
crossings, and the announcer's projected arrivals. Expected values are worked out here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chronotrack.results import ResultRow
from web.display_projection import ArrivalProjection, elapsed_text, median
from web.display_runner import FirstCrossings, runner_object
from web.queries import DisplayRead
from web.roster import Participant

T0 = datetime(2024, 5, 4, 8, 0, tzinfo=timezone.utc)
CONTRACT_KEYS = {"read_id", "bib", "name", "first_name", "last_name", "known", "gender", "age", "division", "city",
                 "team", "location", "place", "gender_place", "division_place", "time_kind", "time_s", "time_text",
                 "clock_time"}


def read(bib: str, location: str = "finish", seconds: float = 1800.0, read_id: int = 7) -> DisplayRead:
    when = T0 + timedelta(seconds=seconds)
    return DisplayRead(read_id, 1, bib, location, when.isoformat(), when, 1, "r", 1, None, None)


ROW = ResultRow(place=3, bib="101", name="Ada Lovelace", gender="F", gender_place=1, division="F35-39",
                division_place=1, gun_time_s=1867.42, chip_time_s=1862.3, gun_time="0:31:07.42",
                chip_time="0:31:02.30", age=36, city="London")
ADA = Participant("101", "Ada", "Lovelace", 36, "F", "London", None, None, "Engines")


@pytest.mark.parametrize("kind, seconds, text", [("gun", 1867.42, "0:31:07.42"), ("chip", 1862.3, "0:31:02.30")])
def test_runner_object_has_every_contract_field_and_the_screens_time_kind(kind, seconds, text):
    runner = runner_object(read("101", read_id=42), ADA, ROW, kind)
    assert set(runner) == CONTRACT_KEYS
    assert (runner["read_id"], runner["name"], runner["first_name"], runner["last_name"]) == (
        42, "Ada Lovelace", "Ada", "Lovelace")
    assert runner["known"] is True and runner["city"] == "London" and runner["team"] == "Engines"
    assert (runner["place"], runner["gender_place"], runner["division"], runner["division_place"]) == (
        3, 1, "F35-39", 1)
    assert (runner["time_kind"], runner["time_s"], runner["time_text"]) == (kind, seconds, text)
    assert runner["clock_time"] == "08:30:00+00:00"


def test_runner_object_of_a_tag_not_in_the_roster_says_so_and_has_no_time_without_a_result():
    runner = runner_object(read("4711"), None, None, "gun")
    assert set(runner) == CONTRACT_KEYS
    assert runner["known"] is False and runner["name"] == "" and runner["bib"] == "4711"
    assert runner["time_s"] is None and runner["time_text"] == "" and runner["place"] is None


def test_runner_object_refuses_an_unknown_time_kind():
    with pytest.raises(ValueError):
        runner_object(read("101"), ADA, ROW, "net")


def test_first_crossings_ignore_repeat_reads_within_the_window_and_count_a_later_lap():
    first = FirstCrossings(timedelta(seconds=60))
    assert first.is_new("101", "finish", T0)
    assert not first.is_new("101", "finish", T0 + timedelta(seconds=59))
    assert first.is_new("101", "split", T0 + timedelta(seconds=5))  # another mat is another crossing
    assert first.is_new("102", "finish", T0)
    assert first.is_new("101", "finish", T0 + timedelta(seconds=600))


def test_median_of_odd_and_even_lists():
    assert median([]) is None
    assert median([1.0, 2.0, 9.0]) == 2.0
    assert median([1.0, 2.0, 4.0, 9.0]) == 3.0


def test_projection_without_finishers_shows_split_times_only_sorted_by_split():
    projection = ArrivalProjection()
    projection.split("201", "5k", 1500.0, {"bib": "201"})
    projection.split("202", "5k", 1400.0, {"bib": "202"})
    runners = projection.approaching()
    assert [runner["bib"] for runner in runners] == ["202", "201"]
    assert runners[0]["projected_s"] is None and runners[0]["projected_text"] == ""
    assert runners[0]["split_text"] == "0:23:20" and runners[0]["split_location"] == "5k"


def test_projection_scales_the_split_by_the_median_finish_over_split_ratio_of_finishers():
    projection = ArrivalProjection()
    # Finishers: ratios 2.0, 2.1 and 2.4 at 5k: the median is 2.1.
    for bib, split, finish in (("1", 1000.0, 2000.0), ("2", 1000.0, 2100.0), ("3", 1000.0, 2400.0)):
        projection.split(bib, "5k", split, {"bib": bib})
        projection.finish(bib, finish)
    projection.split("10", "5k", 1200.0, {"bib": "10"})
    projection.split("11", "5k", 1100.0, {"bib": "11"})
    runners = projection.approaching()
    assert [runner["bib"] for runner in runners] == ["11", "10"]  # finished runners are gone
    assert runners[0]["projected_s"] == pytest.approx(1100.0 * 2.1)
    assert runners[1]["projected_s"] == pytest.approx(1200.0 * 2.1)
    assert runners[1]["projected_text"] == elapsed_text(2520.0) == "0:42:00"


def test_a_runner_drops_off_the_announcer_once_finished_and_a_late_split_does_not_bring_them_back():
    projection = ArrivalProjection()
    projection.split("7", "5k", 900.0, {"bib": "7"})
    version = projection.version
    projection.finish("7", 1900.0)
    assert projection.approaching() == [] and projection.version > version
    projection.split("7", "5k", 905.0, {"bib": "7"})
    assert projection.approaching() == []


def test_runner_object_without_a_result_yet_takes_the_age_group_it_is_given():
    runner = runner_object(read("101", location="5k"), ADA, None, "gun", division="F35-39")
    assert runner["division"] == "F35-39" and runner["place"] is None
