"""The live results table: each read says what it changed, and the table always equals
the full recompute (a hypothesis property over random reads in random order)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG
from chronotrack.results import NO_START_MAT, EventSettings, PlaceBy, RaceResults, ReadKind, compute_results
from tests.test_results import GUN, after_gun, gun_read, read
from web.roster import Participant

ROSTER = [Participant("1", "Ann", "A", 31, "F"), Participant("2", "Bo", "B", 33, "M"),
          Participant("3", "Cas", "C", 30, "F"), Participant("4", "Dee", "D", 52, "F")]


def live_race(*reads, settings=EventSettings(), roster=ROSTER):
    live = RaceResults(settings, roster)
    for each in reads:
        live.add_read(each)
    return live


def test_a_new_finisher_reports_their_standing_and_only_the_places_that_moved():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21)),
                     read("finish", "3", after_gun(22)))
    change = live.add_read(read("finish", "4", after_gun(21, 30)))
    assert change.read_kind is ReadKind.FINISH and not change.rebuilt
    assert (change.runner.bib, change.runner.place, change.runner.gender_place) == ("4", 3, 2)
    # Bib 3 (F, slower) moves down overall and by gender; bibs 1 and 2 are ahead and keep theirs.
    assert [(row.bib, row.place, row.gender_place) for row in change.shifted] == [("3", 4, 3)]


def test_an_earlier_read_arriving_late_moves_the_runner_up_past_only_those_between():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21)),
                     read("finish", "3", after_gun(22)), read("finish", "4", after_gun(23)))
    change = live.add_read(read("finish", "4", after_gun(20, 30)))
    assert change.read_kind is ReadKind.FINISH
    assert change.runner.place == 2
    assert [(row.bib, row.place) for row in change.shifted] == [("2", 3), ("3", 4)]


def test_leaving_a_tie_moves_the_runner_it_was_tied_with():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21)),
                     read("finish", "3", after_gun(21)))
    assert [(row.bib, row.place) for row in live.rows()] == [("1", 1), ("2", 2), ("3", 2)]
    change = live.add_read(read("finish", "3", after_gun(20, 30)))
    assert (change.runner.bib, change.runner.place) == ("3", 2)
    assert [(row.bib, row.place) for row in change.shifted] == [("2", 3)]


def test_a_start_read_under_gun_placing_changes_the_runners_chip_time_and_nobody_elses_place():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21)))
    change = live.add_read(read("start", "1", after_gun(0, 10)))
    assert change.read_kind is ReadKind.START
    assert change.runner.chip_time == "0:19:50.00" and change.runner.place == 1
    assert change.shifted == ()


def test_a_duplicate_read_changes_nothing():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "2", after_gun(21)))
    before = live.rows()
    change = live.add_read(read("finish", "1", after_gun(20, 1)))
    assert change.read_kind is ReadKind.DUPLICATE and change.shifted == ()
    assert live.rows() == before


def test_fixing_an_unknown_tag_in_the_roster_gives_it_a_name_and_places():
    live = live_race(gun_read(), read("finish", "1", after_gun(20)), read("finish", "99", after_gun(19)))
    assert live.row("99").name == "Unknown" and live.row("1").gender_place == 1
    change = live.set_participant(Participant("99", "Zoe", "Z", 29, "F"))
    assert (change.runner.name, change.runner.gender_place, change.runner.division) == ("Zoe Z", 1, "F25-29")
    assert [(row.bib, row.gender_place) for row in change.shifted] == [("1", 2)]
    assert live.unknown_tags() == []


def test_a_later_gun_re_scores_the_race():
    live = live_race(read("finish", GUN_TIME_TAG, GUN - timedelta(minutes=5)), read("finish", "1", after_gun(20)))
    assert live.row("1").gun_time == "0:25:00.00"
    change = live.add_read(read("finish", GUN_TIME_TAG, GUN))
    assert change.rebuilt and change.read_kind is ReadKind.GUN_TIME
    assert live.row("1").gun_time == "0:20:00.00"


# --- property: live equals full recompute, and every change is reported -------------------

BIBS = ["1", "2", "3", "4", "5", "6", "10", "77", "A7"]
LOCATIONS = ["start", "finish", "5k"]

participants = st.builds(
    Participant,
    bib=st.sampled_from(BIBS),
    first_name=st.sampled_from(["Ann", "Bo"]),
    age=st.one_of(st.none(), st.integers(5, 90)),
    gender=st.sampled_from([None, "M", "F", "female", "X"]),
    division=st.sampled_from([None, None, None, "Elite"]),
)

read_times = st.builds(
    lambda seconds, hundredth, microseconds: after_gun(seconds=seconds, milliseconds=hundredth * 10,
                                                       microseconds=microseconds),
    st.integers(-1, 9), st.sampled_from([0, 41, 99]), st.sampled_from([0, 4_999, 5_000]))

tag_reads = st.builds(read, st.sampled_from(["finish", "finish", "finish", "start", "5k"]),
                      st.sampled_from(BIBS * 4 + [GUN_TIME_TAG, NEW_LOCATION_TAG]), read_times)

event_settings = st.builds(
    EventSettings,
    finish_location=st.sampled_from([None, None, "5k"]),
    start_location=st.sampled_from([None, None, NO_START_MAT, "5k"]),
    gun_time=st.sampled_from([None, None, None, GUN + timedelta(seconds=3)]),
    duplicate_window=st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(seconds=60)]),
    minimum_time=st.sampled_from([timedelta(0), timedelta(seconds=2)]),
    place_by=st.sampled_from(list(PlaceBy)),
    age_group_years=st.sampled_from([5, 10]),
    location_order=st.sampled_from([(), ("start", "5k", "finish"), ("finish", "5k")]),
)



@st.composite
def operations(draw):
    """Reads and roster fixes in random order, with the start gun somewhere among them."""
    steps = draw(st.lists(st.one_of(tag_reads, tag_reads, tag_reads, tag_reads, participants), min_size=8, max_size=45))
    gun = read(draw(st.sampled_from(LOCATIONS)), GUN_TIME_TAG, GUN)
    steps.insert(draw(st.integers(0, len(steps))), gun)
    return steps


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_settings, st.lists(participants, max_size=6), operations())
def test_live_results_equal_the_full_recompute_after_every_read(settings, roster, steps):
    live = RaceResults(settings, roster)
    quiet = RaceResults(settings, roster, report_moves=False)  # as the web's results cache keeps it
    current_roster = {participant.bib: participant for participant in roster}
    reads = []
    before = {}
    for step in steps:
        if isinstance(step, Participant):
            current_roster[step.bib] = step
            change = live.set_participant(step)
            quiet_change = quiet.set_participant(step)
        else:
            reads.append(step)
            change = live.add_read(step)
            quiet_change = quiet.add_read(step)
        rows = live.rows()
        assert rows == compute_results(reads, current_roster.values(), settings)
        assert quiet.rows() == rows and quiet_change.shifted == ()
        assert (quiet_change.read_kind, quiet_change.runner, quiet_change.rebuilt) == \
            (change.read_kind, change.runner, change.rebuilt)
        now = {row.bib: row for row in rows}
        if not change.rebuilt:
            assert before.keys() <= now.keys()
            changed = {bib for bib, row in now.items() if before.get(bib) != row}
            reported = {row.bib: row for row in change.shifted}
            if change.runner is not None:
                reported[change.runner.bib] = change.runner
            assert changed <= reported.keys(), "a row changed without being reported"
            assert all(now[bib] == row for bib, row in reported.items())
            assert all(row.bib in changed for row in change.shifted), "reported a place that did not move"
            assert [row.place for row in change.shifted] == sorted(row.place for row in change.shifted)
        before = now


@hypothesis_settings(max_examples=150, deadline=None)
@given(event_settings, st.lists(participants, max_size=6), st.lists(tag_reads, min_size=5, max_size=40),
       st.randoms(use_true_random=False))
def test_once_the_locations_are_declared_arrival_order_does_not_change_the_results(settings, roster, reads, random):
    declared = replace(settings, location_order=("start", "5k", "finish"))
    reads = [gun_read()] + reads
    shuffled = random.sample(reads, len(reads))
    live = RaceResults(declared, roster)
    for each in shuffled:
        live.add_read(each)
    assert live.rows() == compute_results(reads, roster, declared)
