"""How many events' results the web process keeps: as many as fit in its memory budget.

A region's Saturday morning runs dozens of races on one hub, each with phones on its results and
a finish screen whose feed asks for its event's results at every batch of reads. Kept by count
(four events), the fifth race's phones and screens pushed out a race still in use, which was
built again from all its reads at its next question, pushing out another: builds without end.
Kept by an estimate of their memory (``--results-memory-mb``), small races all stay, and a big
one costs what it weighs; the least recently asked goes first, and the event asked now always
stays, however big. The queries are answered from memory (tests/test_results_freshness.py).
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from tests.test_results_freshness import FakeEvent
from web.queries import Event
from web.results_cache import DEFAULT_CAPACITY, ResultsCache

EVENTS = [Event(number, 1, "Acme", f"race-{number}", f"Race {number}", f"slug{number}", False)
          for number in range(1, 13)]


@pytest.fixture
def fake_event(monkeypatch):
    return FakeEvent(monkeypatch)


@pytest_twisted.ensureDeferred
async def test_a_saturday_of_many_small_races_builds_each_race_once(fake_event):
    assert len(EVENTS) > 4 and DEFAULT_CAPACITY >= len(EVENTS)
    cache = ResultsCache(Clock())
    for _ in range(3):  # every race's phones and screen ask in turn
        for event in EVENTS:
            entry = await cache.results(None, event)
            assert entry.event is event and entry.finisher_count() == 5
    assert cache.full_builds == len(EVENTS)
    assert all(event.id in cache for event in EVENTS)


@pytest_twisted.ensureDeferred
async def test_past_the_memory_budget_the_least_recently_asked_race_goes_first(fake_event):
    cache = ResultsCache(Clock())
    one = (await cache.results(None, EVENTS[0])).approximate_bytes()
    assert one > 0
    cache.memory_budget = 3 * one  # three races fit
    for event in EVENTS[1:4]:
        await cache.results(None, event)
    assert [event.id in cache for event in EVENTS[:4]] == [False, True, True, True]
    await cache.results(None, EVENTS[1])  # asked again: the most recent now
    await cache.results(None, EVENTS[4])
    assert [event.id in cache for event in EVENTS[1:5]] == [True, False, True, True]
    assert cache.memory_used() <= cache.memory_budget and cache.full_builds == 5


@pytest_twisted.ensureDeferred
async def test_a_race_bigger_than_the_whole_budget_is_still_kept_alone(fake_event):
    cache = ResultsCache(Clock(), memory_budget=1)
    await cache.results(None, EVENTS[0])
    await cache.results(None, EVENTS[1])
    assert EVENTS[1].id in cache and EVENTS[0].id not in cache
    await cache.results(None, EVENTS[1])
    assert cache.full_builds == 2  # asked again: not built again


@pytest_twisted.ensureDeferred
async def test_a_race_grows_with_its_runners_and_reads(fake_event):
    cache = ResultsCache(Clock())
    small = (await cache.results(None, EVENTS[0])).approximate_bytes()
    fake_event.roster = fake_event.roster * 10  # ten times the runners (same bibs: the weight counts them)
    big = (await cache.results(None, EVENTS[1])).approximate_bytes()
    assert big > 5 * small
