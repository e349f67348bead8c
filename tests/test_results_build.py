"""An event's first results build, page by page from a real PostgreSQL: the same results as its
reads taken one by one in id order, and one shared build that a request giving up does not stop.

The reads of random races (tests/test_results_cache.py's) are stored in two sessions of one
event, interleaved with another event of the same partner and another partner's event; the
build pages through them a few reads at a time (so a (location, tag) is split across pages and
its times arrive out of order); the reference is ``EventResults.build`` over every read of the
event fetched one row each (``results_queries.event_reads``).
"""

from __future__ import annotations

import random

import pytest
import pytest_twisted
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred

from tests import rows
from tests.postgres import query
from tests.test_results_cache import random_race
from tests.waiting import wait_until
from web import results_queries
from web.queries import _EVENT_SELECT, Event
from web.results_cache import SEEN_WINDOW, EventResults, ResultsCache
from web.results_queries import StoredSettings

SETTINGS = [StoredSettings(), StoredSettings(place_by="chip", age_group_years=10),
            StoredSettings(finish_location="split", start_location=""),
            StoredSettings(duplicate_window_seconds=5)]


def store(pg_dsn: str, seed: int, settings: StoredSettings) -> Event:
    """acme's event (two sessions) with random race ``seed``, among reads of two other events."""
    event_id, sessions = rows.event_among_others(pg_dsn)
    first, second = sessions["first"], sessions["second"]
    other_event, other_partner = sessions["other_event"], sessions["other_partner"]
    assert rows.event_of_session(pg_dsn, second) == event_id
    reads, roster = random_race(seed)
    others, _ = random_race(seed + 1000)
    rng = random.Random(seed)
    stream = [(rng.choice([first, second]), read) for _, read in reads]
    for _, read in others:  # the same bibs and mats elsewhere: must not count
        stream.insert(rng.randrange(len(stream) + 1), (rng.choice([other_event, other_partner]), read))
    for sequence, (session, read) in enumerate(stream, start=1):
        query(pg_dsn, """
            INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name,
                                      tag_code, read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
            SELECT id, timing_partner_id, 'connection:test', %s, %s, %s, '', %s, 1, 'r', 1, 'raw'
            FROM timing_sessions WHERE id = %s""",
              (sequence, read.location_name, read.tag_code, read.read_timestamp, session))
    for runner in roster:
        query(pg_dsn, """
            INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender,
                                      division)
            SELECT id, timing_partner_id, %s, %s, %s, %s, %s, %s FROM timing_events WHERE id = %s""",
              (runner.bib, runner.first_name, runner.last_name, runner.age, runner.gender, runner.division, event_id))
    query(pg_dsn, """
        INSERT INTO event_results_settings (timing_event_id, timing_partner_id, finish_location, start_location,
                                            duplicate_window_seconds, place_by, age_group_years)
        SELECT id, timing_partner_id, %s, %s, %s, %s, %s FROM timing_events WHERE id = %s""",
          (settings.finish_location, settings.start_location, settings.duplicate_window_seconds, settings.place_by,
           settings.age_group_years, event_id))
    return Event(*query(pg_dsn, f"{_EVENT_SELECT} WHERE e.id = %s", (event_id,))[0])


async def reference(database, event: Event) -> EventResults:
    """The event scored from its reads taken one by one in id order."""
    settings = await results_queries.stored_settings(database, event)
    roster = await results_queries.event_roster(database, event)
    reads = await results_queries.event_reads(database, event)
    assert reads
    one_by_one = EventResults(event, settings, roster, ())
    for read_id, read in reads:
        one_by_one.apply(read_id, read)
    return one_by_one


@pytest.mark.parametrize("seed", range(6))
@pytest_twisted.ensureDeferred
async def test_a_build_in_small_pages_scores_like_the_reads_one_by_one(pg_dsn, database, seed, monkeypatch):
    event = store(pg_dsn, seed, SETTINGS[seed % len(SETTINGS)])
    pages = []
    every_page = results_queries.event_read_page

    async def counted(*args):
        page = await every_page(*args)
        pages.append(page.reads)
        return page

    monkeypatch.setattr(results_queries, "event_read_page", counted)
    cache = ResultsCache(reactor=None)
    cache.page_reads = 7
    built = await cache.results(database, event)
    expected = await reference(database, event)
    assert len(pages) > 3 and sum(pages) == expected.read_count  # paged, and every read came once
    assert built.rows() == expected.rows() and built.rows()
    assert built.unknown_tags() == expected.unknown_tags()
    assert (built.race.finish_location, built.race.start_location, built.race.gun_time) == (
        expected.race.finish_location, expected.race.start_location, expected.race.gun_time)
    assert (built.read_count, built.high_id) == (expected.read_count, expected.high_id)
    assert cache.full_builds == 1


@pytest_twisted.ensureDeferred
async def test_reads_the_build_took_in_are_not_taken_again_and_new_ones_are(pg_dsn, database):
    event = store(pg_dsn, 3, StoredSettings())
    cache = ResultsCache(reactor=None)
    cache.page_reads = 5
    built = await cache.results(database, event)
    reads = await results_queries.event_reads(database, event)
    assert [built.apply(read_id, read) for read_id, read in reads[-3:]] == [False, False, False]
    assert SEEN_WINDOW > len(reads)
    fast = results_queries.scored_read("finish", "9999", "", built.race.gun_time.replace(minute=10), 1, "r", 1)
    assert built.apply(built.high_id + 1, fast) is True
    assert built.rows()[0].bib == "9999"


@pytest_twisted.ensureDeferred
async def test_a_request_that_gives_up_does_not_stop_the_build_for_the_others(pg_dsn, database, monkeypatch):
    event = store(pg_dsn, 2, StoredSettings())
    gate: Deferred = Deferred()
    asked = []
    every_page = results_queries.event_read_page

    async def held(database, event, sessions, after_id, size=0):
        asked.append(after_id)
        if after_id == 0:
            await gate
        return await every_page(database, event, sessions, after_id, size)

    monkeypatch.setattr(results_queries, "event_read_page", held)
    cache = ResultsCache(reactor=None)
    cache.page_reads = 10
    gone = ensureDeferred(cache.results(database, event))  # its client goes away mid-build
    await wait_until(lambda: asked == [0])
    waiting = ensureDeferred(cache.results(database, event))  # another phone asks meanwhile
    await wait_until(lambda: len(cache._building.get(event.id, [])) == 1)
    gone.cancel()
    with pytest.raises(CancelledError):
        await gone
    gate.callback(None)
    built = await waiting
    assert event.id in cache and cache.full_builds == 1
    expected = await reference(database, event)
    assert built.rows() == expected.rows()
    assert await cache.results(database, event) is built and cache.full_builds == 1  # the next one reuses it


@pytest_twisted.ensureDeferred
async def test_at_start_up_the_events_racing_now_are_built_before_anyone_asks(pg_dsn, database):
    from types import SimpleNamespace

    from twisted.internet import reactor

    from web.app import DisplayApp

    event = store(pg_dsn, 4, StoredSettings())  # its second wave's session is active
    query(pg_dsn, "UPDATE timing_sessions SET status = 'closed' WHERE timing_event_id <> %s", (event.id,))
    finished = rows.insert_session(pg_dsn, "last year", "Acme 10K 2023", status="closed", partner="acme")
    rows.insert_read(pg_dsn, finished, "101")
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    try:
        await display.database_ready(database)
        cache = display.results_cache
        await wait_until(lambda: event.id in cache)
        assert cache.full_builds == 1  # only the event racing now, not the ones that are over
        expected = await reference(database, event)
        assert (await display._event_results(database, event)).rows() == expected.rows()
        assert cache.full_builds == 1
    finally:
        display.close_streams()
