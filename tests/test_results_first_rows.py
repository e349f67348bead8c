"""A short page of a big race makes only its own rows: the first rows, the finisher count and
the division and gender pickers equal what the whole table gives. Pure: no database."""

from __future__ import annotations

import pytest

from chronotrack.results import divisions
from tests.test_results_cache import EVENT, GUN, random_race
from web.results_cache import EventResults
from web.results_queries import StoredSettings, scored_read


@pytest.mark.parametrize("seed", range(20))
def test_the_first_rows_and_pickers_equal_the_whole_tables(seed):
    reads, roster = random_race(seed)
    entry = EventResults(EVENT, StoredSettings(age_group_years=10), roster, ()).build(reads)
    whole = entry.race.rows()
    assert whole
    for limit in (1, 2, len(whole) // 2 or 1, len(whole), len(whole) + 5, None):
        fresh = EventResults(EVENT, StoredSettings(age_group_years=10), roster, ()).build(reads)
        assert fresh.first_rows(limit) == whole[:limit]
    assert entry.finisher_count() == len(whole)
    assert entry.divisions() == divisions(whole)
    assert entry.genders() == sorted({row.gender for row in whole if row.gender})


def test_a_new_finisher_shows_in_the_first_rows_at_once():
    reads, roster = random_race(3)
    entry = EventResults(EVENT, StoredSettings(), roster, ()).build(reads)
    before = entry.first_rows(3)
    entry.apply(len(reads) + 1, scored_read("finish", "9999", "", GUN.replace(minute=5), 1, "r", 1))
    after = entry.first_rows(3)
    assert [row.bib for row in after] == ["9999", before[0].bib, before[1].bib]
    assert [row.place for row in after] == [1, before[0].place + 1, before[1].place + 1]
    assert entry.finisher_count() == len(entry.rows())
