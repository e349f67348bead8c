"""The results cache's one-pass build scores an event exactly as its reads in id order would,
and a read that reaches the cache twice (build query and live feed) counts once. Pure: no
database, no reactor."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from chronotrack.reads import TagRead
from chronotrack.results import compute_results
from web.queries import Event
from web.results_cache import SEEN_WINDOW, EventResults
from web.results_queries import StoredSettings, scored_read
from web.roster import Participant

GUN = datetime(2024, 5, 4, 8, tzinfo=timezone.utc)
EVENT = Event(1, 1, "Acme", "10k", "Acme 10K", "slug", False)


def random_race(seed: int) -> tuple[list[tuple[int, TagRead]], list[Participant]]:
    """Reads as controllers send them: mats announced at any point, gun reads (a test fire, the
    real gun) anywhere in the stream, start, split and finish crossings with duplicates, out of
    time order across mats, some tags not in the roster."""
    rng = random.Random(seed)
    runners = [str(bib) for bib in range(1, rng.randint(5, 60))]
    roster = [Participant(bib, "First", f"Last{bib}", rng.randint(8, 85), rng.choice(["F", "M", "X", None]),
                          division=rng.choice([None, None, "Elite"]))
              for bib in runners if rng.random() < 0.85]
    reads: list[TagRead] = []
    for location in rng.sample(["start", "split", "finish", "Finish Line", "medals"], rng.randint(1, 5)):
        reads.append(scored_read(location, "newlocation", "", GUN, 0, "r", 0))
    for location in rng.sample(["start", "finish", "split"], rng.randint(1, 2)):
        reads.append(scored_read(location, "guntime", "", GUN + timedelta(seconds=rng.choice([-600, 0, 0, 5])),
                                 0, "r", 0))
    for bib in runners:
        start = GUN + timedelta(seconds=rng.uniform(-30, 90))
        finish = GUN + timedelta(seconds=rng.uniform(1200, 1400), microseconds=rng.randint(0, 999_999))
        for location, at in (("start", start), ("split", start + (finish - start) / 2), ("finish", finish),
                             ("finish", finish + timedelta(seconds=rng.choice([0.3, 20, 200])))):
            if rng.random() < 0.9:
                reads.append(scored_read(location, bib, "", at, 1, "r", 1))
    rng.shuffle(reads)
    return list(enumerate(reads, start=1)), roster


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("settings", [StoredSettings(), StoredSettings(place_by="chip", age_group_years=10),
                                      StoredSettings(finish_location="split", start_location=""),
                                      StoredSettings(gun_time=GUN + timedelta(seconds=2), duplicate_window_seconds=5)])
def test_the_one_pass_build_scores_like_the_reads_in_id_order(seed, settings):
    reads, roster = random_race(seed)
    built = EventResults(EVENT, settings, roster, ()).build(reads)
    expected = compute_results([read for _, read in reads], roster, settings.event_settings())
    assert built.rows() == expected
    one_by_one = EventResults(EVENT, settings, roster, ())
    for read_id, read in reads:
        one_by_one.apply(read_id, read)
    assert built.rows() == one_by_one.rows()
    assert built.unknown_tags() == one_by_one.unknown_tags()
    assert (built.race.finish_location, built.race.start_location, built.race.gun_time) == (
        one_by_one.race.finish_location, one_by_one.race.start_location, one_by_one.race.gun_time)
    assert built.high_id == len(reads) and built.read_count == len(reads)


def test_a_read_already_taken_in_is_not_taken_again():
    reads, roster = random_race(1)
    entry = EventResults(EVENT, StoredSettings(), roster, ()).build(reads)
    rows = entry.rows()
    late = scored_read("finish", "9999", "", GUN + timedelta(seconds=1100), 1, "r", 1)
    assert [entry.apply(read_id, read) for read_id, read in reads[-3:]] == [False, False, False]
    assert entry.apply(len(reads) + 1, late) is True
    assert entry.apply(len(reads) + 1, late) is False  # the same read from the feed and the catch-up
    assert entry.rows()[0].bib == "9999" and len(entry.rows()) == len(rows) + 1
    # A read committed late, below the highest id but not yet seen, still counts.
    entry.apply(len(reads) + 10, scored_read("finish", "9998", "", GUN + timedelta(seconds=1500), 1, "r", 1))
    assert entry.apply(len(reads) + 5, scored_read("finish", "9997", "", GUN + timedelta(seconds=1099), 1, "r", 1))
    assert entry.rows()[0].bib == "9997"
    assert entry.apply(len(reads) + 10 - SEEN_WINDOW, late) is False  # too far below: taken as seen

