"""A finish screen's feed built from an event's stored reads (real PostgreSQL, real LiveReads):
the same crossings and the same announcer projection as a feed that took every read one by one
through the live path, without fetching the event's reads one row each.

The event: a gun read, a few hundred runners crossing a start, a split and a finish mat, several
reads per crossing (duplicates within the event's 30 s window, and for some runners reads whose
id order is not their time order, where the window's answer depends on the order), second
finish crossings beyond the window, runners seen only at the split (approaching), a tag with no
runner, spread over two sessions of the event; and the same bibs read at the finish in another
event of the partner and in another partner's event, just before their finish, which must not
count. Generated in PostgreSQL with ``generate_series``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted

from tests import rows
from tests.postgres import query
from tests.waiting import wait_until
from web import display_feed
from web.display_feed import CrossingLog, EventFeed
from web.live import LiveReads
from web.queries import _EVENT_SELECT, Event
from web.results_cache import ResultsCache

RUNNERS = 400
FINISHERS = 340  # the others are seen only at the start and the split
GUN = "2024-05-04 08:00:00+00"
RECENT = 60  # RECENT_CROSSINGS for these tests: fewer than the event's crossings

# One row per read: each crossing (bib, location, base time) read once per offset in ``offs``,
# in order of the crossing's base time and then of the offsets (ids follow that order; for
# every 7th runner the split's offsets are 25, 0, 50 s: in id order the first read is the
# crossing, the other two are within 30 s of it, while in time order the third would count anew).
_CROSSINGS = """
    SELECT x.bib::text AS bib, x.location, x.base, k AS copy,
           x.base + x.offs[k] * interval '1 second' AS at
    FROM (SELECT b AS bib, 'start' AS location, %(gun)s::timestamptz + (b %% 60) * interval '1 second' AS base,
                 ARRAY[0, 1] AS offs
          FROM generate_series(1, %(runners)s) b
          UNION ALL
          SELECT b, 'split5k', %(gun)s::timestamptz + (1200 + b * 5) * interval '1 second',
                 CASE WHEN b %% 7 = 0 THEN ARRAY[25, 0, 50] ELSE ARRAY[0, 2, 4] END
          FROM generate_series(1, %(runners)s) b
          UNION ALL
          SELECT b, 'finish', %(gun)s::timestamptz + (2400 + b * 11) * interval '1 second', ARRAY[0, 3, 6]
          FROM generate_series(1, %(finishers)s) b
          UNION ALL  -- a second crossing of the finish, beyond the window
          SELECT b, 'finish', %(gun)s::timestamptz + (2700 + b * 11) * interval '1 second', ARRAY[0, 3]
          FROM generate_series(50, %(finishers)s, 50) b
          UNION ALL  -- a tag nobody wears in the roster
          SELECT 9999, 'finish', %(gun)s::timestamptz + 3000 * interval '1 second', ARRAY[0, 1]) AS x,
         generate_subscripts(x.offs, 1) AS k
"""

# The event's reads into its two sessions; unix-second read times for every third runner (the
# screen's clock then comes from the timestamp), the time of day for the others.
_INSERT_EVENT_READS = f"""
    INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                              read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
    SELECT s.id, s.timing_partner_id, 'connection:test', 1000 + row_number() OVER (ORDER BY c.base, c.bib, c.copy),
           c.location, c.bib,
           CASE WHEN c.bib::int %% 3 = 0 THEN round(date_part('epoch', c.at))::text
                ELSE to_char(c.at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') END,
           c.at, 1, 'r', 1, 'raw'
    FROM ({_CROSSINGS}) AS c
    JOIN timing_sessions s ON s.id = CASE WHEN (c.bib::int + c.copy) %% 2 = 0 THEN %(first)s ELSE %(second)s END
    ORDER BY c.base, c.bib, c.copy
"""

# The same bibs at the finish of other events, 20 s before they finish this one: counted, each
# would be the runner's finish crossing and the event's own reads its duplicates.
_INSERT_OTHER_READS = """
    INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                              read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
    SELECT s.id, s.timing_partner_id, 'connection:other', %(sequence)s + b, 'finish', b::text, '',
           %(gun)s::timestamptz + (2400 + b * 11 - 20) * interval '1 second', 1, 'r', 1, 'raw'
    FROM generate_series(1, %(runners)s) b, timing_sessions s WHERE s.id = ANY(%(sessions)s)
"""


def make_event(pg_dsn: str) -> tuple[Event, dict]:
    """acme's event (two sessions, a roster, a 30 s window), and the sessions of two other events."""
    event_id, sessions = rows.event_among_others(pg_dsn)
    query(pg_dsn, """
        INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender)
        SELECT e.id, e.timing_partner_id, b::text, 'Runner', 'No ' || b, 20 + b %% 40,
               CASE WHEN b %% 2 = 0 THEN 'F' ELSE 'M' END
        FROM timing_events e, generate_series(1, %s) b WHERE e.id = %s""", (RUNNERS, event_id))
    query(pg_dsn, """
        INSERT INTO event_results_settings (timing_event_id, timing_partner_id, finish_location, start_location,
                                            duplicate_window_seconds)
        SELECT id, timing_partner_id, 'finish', 'start', 30 FROM timing_events WHERE id = %s""", (event_id,))
    event = Event(*query(pg_dsn, f"{_EVENT_SELECT} WHERE e.id = %s", (event_id,))[0])
    return event, {**sessions, "others": [sessions["other_event"], sessions["other_partner"]]}


def insert_race(pg_dsn: str, sessions: dict) -> None:
    """The gun, the other events' reads, then the event's reads (one statement each)."""
    rows.insert_read(pg_dsn, sessions["first"], "guntime", "start")
    query(pg_dsn, "UPDATE timing_reads SET read_timestamp = %s, read_time = '08:00:00.000' WHERE tag_code = 'guntime'",
          (GUN,))
    query(pg_dsn, _INSERT_OTHER_READS, {"sequence": 0, "gun": GUN, "runners": RUNNERS, "sessions": sessions["others"]})
    query(pg_dsn, _INSERT_EVENT_READS, {"gun": GUN, "runners": RUNNERS, "finishers": FINISHERS,
                                        "first": sessions["first"], "second": sessions["second"]})
    query(pg_dsn, _INSERT_OTHER_READS, {"sequence": 5000, "gun": GUN, "runners": RUNNERS,
                                        "sessions": sessions["others"]})


def insert_more(pg_dsn: str, sessions: dict) -> None:
    """Reads after the build: duplicates within the window of crossings already learnt (bib 7's
    split 30 s before its first crossing in id order, 55 s before its latest read), finish
    crossings anew (bib 1 and bib 5, beyond the window), and a runner who was only approaching
    finishing."""
    query(pg_dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT s.id, s.timing_partner_id, 'connection:late', n, location, bib, '',
               %s::timestamptz + seconds * interval '1 second', 1, 'r', 1, 'raw'
        FROM (VALUES (1, 'split5k', '7', 1200 + 35 - 5), (2, 'finish', '5', 2400 + 55 + 10),
                     (3, 'finish', '1', 2400 + 11 + 1000), (4, 'finish', %s, 2400 + %s * 11 + 60),
                     (5, 'finish', '5', 2400 + 55 + 45)) AS late (n, location, bib, seconds),
             timing_sessions s WHERE s.id = %s""", (GUN, str(FINISHERS + 1), FINISHERS + 1, sessions["second"]))


def event_read_count(pg_dsn: str, event: Event) -> int:
    return query(pg_dsn, """
        SELECT count(*) FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id
        WHERE s.timing_event_id = %s""", (event.id,))[0][0]


def top_id(pg_dsn: str, event: Event) -> int:
    return query(pg_dsn, """
        SELECT max(r.id) FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id
        WHERE s.timing_event_id = %s""", (event.id,))[0][0]


def shown(feed: EventFeed) -> list[tuple]:
    return [(crossing.id, crossing.runners["gun"]["bib"], crossing.location) for crossing in feed.recent]


async def caught_up(pg_dsn: str, *feeds: EventFeed) -> None:
    """Until every read of the feeds' event has been taken in by each."""
    top = top_id(pg_dsn, feeds[0].event)
    await wait_until(lambda: all(feed.last_read_id >= top and not feed._working and not feed._queue
                                 for feed in feeds))


def assert_same(built: EventFeed, reference: EventFeed) -> None:
    assert built._crossing_log == reference._crossing_log  # the same first crossings, times and read times
    assert shown(built) == shown(reference) and len(built.recent) == RECENT
    assert built.approaching(1000) == reference.approaching(1000)


@pytest.fixture
def few_recent(monkeypatch):
    monkeypatch.setattr(display_feed, "RECENT_CROSSINGS", RECENT)


@pytest.mark.parametrize("page_reads", [97, 0])  # 0: the product's page size (the event in one page)
@pytest_twisted.ensureDeferred
async def test_a_feed_built_from_the_stored_reads_equals_one_that_took_them_one_by_one_live(
        pg_dsn, database, few_recent, page_reads):
    event, sessions = make_event(pg_dsn)
    live = LiveReads(database)
    await live.start()
    await live.when_ready()
    cache = ResultsCache(reactor=None)
    cache.use_live(live)
    reference = EventFeed(database, live, event, cache.results)  # open before the race: learns every read live
    built = EventFeed(database, live, event, cache.results)
    if page_reads:
        built.page_reads = page_reads
    try:
        await reference.start()
        insert_race(pg_dsn, sessions)
        await caught_up(pg_dsn, reference)
        await built.start()  # opened after the race: learns it from the stored reads

        assert built._crossing_log and len(built._crossing_log) < event_read_count(pg_dsn, event) / 2
        assert built.crossings_built == RECENT  # runner objects only for the recent crossings
        assert_same(built, reference)
        approaching = built.approaching(1000)
        assert {runner["bib"] for runner in approaching} == {str(bib) for bib in range(FINISHERS + 1, RUNNERS + 1)}
        assert all(runner["projected_s"] is not None and runner["projected_s"] > runner["split_s"]
                   for runner in approaching)
        assert built.last_read_id == reference.last_read_id

        insert_more(pg_dsn, sessions)  # both go on live from the same window and projection
        await caught_up(pg_dsn, built, reference)
        assert_same(built, reference)
        newest = [(bib, location) for _, bib, location in shown(built)[-3:]]
        assert newest == [("1", "finish"), (str(FINISHERS + 1), "finish"), ("5", "finish")]
        assert str(FINISHERS + 1) not in {runner["bib"] for runner in built.approaching(1000)}

        before = {runner["bib"]: runner["split_s"] for runner in built.approaching(1000)}
        query(pg_dsn, """UPDATE event_results_settings SET gun_time = %s::timestamptz + interval '5 minutes',
                         updated_at = clock_timestamp() WHERE timing_event_id = %s""", (GUN, event.id))
        rows.insert_read(pg_dsn, sessions["second"], "9998", "start")  # the next batch relearns from the log
        await caught_up(pg_dsn, built, reference)
        assert_same(built, reference)
        after = {runner["bib"]: runner["split_s"] for runner in built.approaching(1000)}
        assert after.keys() == before.keys() and all(after[bib] == before[bib] - 300 for bib in after)
    finally:
        built.stop()
        reference.stop()
        live.stop()


@pytest_twisted.ensureDeferred
async def test_the_build_fetches_about_one_row_per_crossing_not_one_per_read(pg_dsn, database, few_recent,
                                                                              monkeypatch):
    event, sessions = make_event(pg_dsn)
    insert_race(pg_dsn, sessions)
    live = LiveReads(database)
    live.stop()  # no live reads: this is about the build alone
    cache = ResultsCache(reactor=None)
    await cache.results(database, event)  # the results are built already (their own paged build)
    answers: list[int] = []
    run_query = database.run_query

    async def counted(sql, params=None):
        result = await run_query(sql, params)
        answers.append(len(result))
        return result

    monkeypatch.setattr(database, "run_query", counted)
    feed = EventFeed(database, live, event, cache.results)
    try:
        await feed.start()
    finally:
        feed.stop()
    reads = event_read_count(pg_dsn, event)
    crossings = len(feed._crossing_log)
    assert crossings and reads > 2 * crossings
    assert max(answers) <= crossings  # no answer of one row per read
    assert sum(answers) < reads


def test_the_crossing_log_gives_back_each_crossing_as_it_was_logged():
    """Unit (pure logic): ids, bibs, locations, read times, and timestamps with their own zone
    (or none), in the order logged; ``newest`` the last ones; a copy logged alike is equal."""
    paris_summer = timezone(timedelta(hours=2))
    crossings = [(5, "101", "split5k", datetime(2024, 5, 4, 8, 20, 35, 123456, tzinfo=timezone.utc), "08:20:35.123"),
                 (3, "102", "finish", datetime(2024, 5, 4, 10, 1, 2, 7, tzinfo=paris_summer), "1714809662"),
                 (9, "101", "finish", datetime(2024, 5, 4, 8, 1, 2), "2024-05-04T08:01:02"),
                 (12, "103", "split5k", datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), "")]
    log, again = CrossingLog(), CrossingLog()
    for crossing in crossings:
        log.append(*crossing)
        again.append(*crossing)
    assert list(log) == crossings and len(log) == 4 and log == again
    assert [moment.utcoffset() for _, _, _, moment, _ in log] == [timedelta(0), timedelta(hours=2), None, timedelta(0)]
    assert list(log.newest(2)) == crossings[2:] and list(log.newest(10)) == crossings
    again.append(13, "104", "finish", crossings[0][3], "")
    assert log != again
