"""What an event's results keep between requests is bounded, whoever asks and whatever they ask.

A finished race takes no new reads, so nothing ever dropped its answers: each different question
(``/api/results?limit=1``, ``limit=2``, ... or any ``division=``) was made once and kept for good,
and a public display's link is enough to ask. Now at most ``MAX_KEPT_ANSWERS`` answers (and about
``MAX_KEPT_ANSWER_BYTES``) are kept per event, the least recently asked going first; one asked
again is made again, the same. Every row stays: the other answers are made from it.
"""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet.task import Clock

from tests.test_results_freshness import new_entry
from tests.test_web_results import FINISHES, api, display, race, stub  # noqa: F401 (fixtures)
from web import results_cache
from web.results_cache import MAX_KEPT_ANSWERS


def test_different_questions_keep_at_most_the_bound_and_the_answers_stay_right():
    entry = new_entry(Clock())
    finishers = len(entry.rows())
    for limit in range(1, 3 * MAX_KEPT_ANSWERS):
        shown = entry.first_rows(limit)
        assert len(shown) == min(limit, finishers)
        entry.memo(("api body", None, None, limit), lambda: json.dumps([row.bib for row in shown]).encode())
        kept, _ = entry.answers_kept
        assert kept <= MAX_KEPT_ANSWERS
    assert entry.has("rows")  # every other answer is made from it: never let go
    assert entry.has(("api body", None, None, 3 * MAX_KEPT_ANSWERS - 1))  # the newest stays
    assert not entry.has(("first rows", 1))  # the least recently asked went first


def test_the_least_recently_asked_goes_first_and_one_asked_again_is_made_the_same():
    entry = new_entry(Clock())
    first = entry.memo("often asked", lambda: b"answer")
    for number in range(MAX_KEPT_ANSWERS - 1):
        entry.memo(("once", number), lambda: b"x")
        assert entry.memo("often asked", lambda: b"made again") is first  # asked between the others
    entry.memo(("once", "more"), lambda: b"x")
    assert entry.has("often asked") and not entry.has(("once", 0))
    made = entry.answers_made
    assert entry.memo(("once", 0), lambda: b"x") == b"x" and entry.answers_made == made + 1


def test_big_answers_are_bounded_by_their_bytes(monkeypatch):
    monkeypatch.setattr(results_cache, "MAX_KEPT_ANSWER_BYTES", 10_000)
    entry = new_entry(Clock())
    rows = entry.rows()
    assert len(rows) * results_cache.ROW_BYTES == entry.answers_kept[1] < 10_000
    for number in range(20):
        entry.memo(("body", number), lambda: (b"j" * 3_000, b"z" * 300))  # the JSON and its gzip
        assert entry.answers_kept[1] <= 10_000
    # Beside every row, two answers of 3,300 bytes fit: the two asked last.
    assert entry.has("rows") and entry.has(("body", 19)) and entry.has(("body", 18))
    assert not entry.has(("body", 17)) and entry.answers_kept[0] == 3


@pytest_twisted.ensureDeferred
async def test_a_client_asking_every_limit_of_a_finished_race_leaves_a_bounded_cache(race, display, stub):  # noqa: F811
    finishers = len(FINISHES)
    for limit in range(1, MAX_KEPT_ANSWERS + 20):
        body = await api(stub, f"/api/results?limit={limit}", race.acme)
        assert len(body["results"]) == min(limit, finishers)
    for division in range(20):
        body = await api(stub, f"/api/results?division=Made-up{division}", race.acme)
        assert body["count"] == 0
    entry = display.results_cache._entries[race.event]
    kept, size = entry.answers_kept
    assert kept <= MAX_KEPT_ANSWERS and size <= results_cache.MAX_KEPT_ANSWER_BYTES
