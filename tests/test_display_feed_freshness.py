"""A finish screen shows a new finisher's place and time at once, whatever the results pages'
freshness window (``--results-freshness``): inside the window the pages keep serving the answer
they made, while the screen's feed reads the race with every read taken in. Real PostgreSQL,
real LiveReads, the cache as the services make it (a window, here long enough to be open for
the whole test)."""

from __future__ import annotations

import pytest_twisted

from tests.postgres import query
from tests.test_display_feed_history import FINISHERS, GUN, caught_up, insert_race, make_event
from web.display_feed import EventFeed
from web.live import LiveReads
from web.results_cache import ResultsCache

WINDOW = 600.0  # seconds: open from the first answer to the end of the test


@pytest_twisted.ensureDeferred
async def test_a_finisher_read_inside_the_window_shows_on_the_screen_with_place_and_time(pg_dsn, database):
    event, sessions = make_event(pg_dsn)
    insert_race(pg_dsn, sessions)
    live = LiveReads(database)
    await live.start()
    await live.when_ready()
    cache = ResultsCache(reactor=None, freshness=WINDOW)
    cache.use_live(live)
    feed = EventFeed(database, live, event, cache.results)
    try:
        await feed.start()
        page = await cache.results(database, event)
        table = page.rows()  # a phone was answered: the window is open
        finisher = str(FINISHERS + 1)  # seen at the start and the split only, so far
        query(pg_dsn, """
            INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name,
                                      tag_code, read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
            SELECT id, timing_partner_id, 'connection:finish', 1, 'finish', %s, '',
                   %s::timestamptz + interval '50 minutes', 1, 'r', 1, 'raw'
            FROM timing_sessions WHERE id = %s""", (finisher, GUN, sessions["second"]))
        await caught_up(pg_dsn, feed)

        crossing = feed.recent[-1]
        assert (crossing.location, crossing.runners["gun"]["bib"]) == ("finish", finisher)
        runner = crossing.runners["gun"]
        assert runner["time_s"] == 50 * 60 and runner["place"] is not None and runner["gender_place"] is not None
        assert page.rows() is table  # the pages keep their answer until the window closes
        assert finisher not in {row.bib for row in table}
    finally:
        feed.stop()
        live.stop()
