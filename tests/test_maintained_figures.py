"""The figures kept by 0008's triggers (read_figures, read_minutes) equal what counting
timing_reads directly gives, whoever wrote or removed the reads: the collector's store, plain
SQL (one row, many rows across events and locations, UPDATE, DELETE, TRUNCATE, a deleted
session), retention's batched deletes, and two connections inserting at the same time.

Everything runs against a real PostgreSQL with the migrated schema.
"""

from __future__ import annotations

import threading

import psycopg2
import pytest_twisted
from twisted.internet import reactor

from chronotrack.storage import retention
from chronotrack.storage.migrations import available_migrations
from tests import rows
from tests.postgres import query
from tests.test_pgstore import SOURCE, make_read, started_store
from tests.waiting import wait_until
from chronotrack.reads import ReadSource
from web import queries
from web.queries import Scope

DIRECT_FIGURES = """
    SELECT r.session_id, r.location_name, r.timing_partner_id, s.timing_event_id, count(*),
           count(*) FILTER (WHERE r.tag_code = 'guntime'), min(r.read_timestamp), max(r.read_timestamp), max(r.id),
           count(DISTINCT r.tag_code) FILTER (WHERE r.tag_code NOT IN ('guntime', 'newlocation'))
    FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"""
KEPT_FIGURES = """
    SELECT session_id, location_name, timing_partner_id, timing_event_id, reads, gun_times, first_read, last_read,
           last_id, distinct_tags_estimate(tags_seen)
    FROM read_figures ORDER BY 1, 2"""
DIRECT_MINUTES = """
    SELECT r.timing_partner_id, s.timing_event_id, date_trunc('minute', r.received_at), count(*)
    FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
KEPT_MINUTES = "SELECT timing_partner_id, timing_event_id, minute, reads FROM read_minutes ORDER BY 1, 2, 3"


def close_to(estimate: int, exact: int) -> bool:
    """The distinct-tag estimate: exact below ~90 tags, then within 3% (linear counting)."""
    return abs(estimate - exact) <= max(1, exact * 0.03) if exact >= 90 else estimate == exact


def assert_figures_match(dsn: str, tags_deleted: bool = False) -> None:
    """Every kept figure equals the direct count; the tag estimate is close to count(DISTINCT).

    After part of a location's reads were deleted (``tags_deleted``) the estimate still counts
    the tags those reads had (a bitmap cannot forget a tag): it is then at least the direct figure.
    """
    kept, direct = query(dsn, KEPT_FIGURES), query(dsn, DIRECT_FIGURES)
    assert [row[:9] for row in kept] == [row[:9] for row in direct]
    for kept_row, direct_row in zip(kept, direct):
        if tags_deleted:
            assert kept_row[9] >= direct_row[9], (kept_row, direct_row)
        else:
            assert close_to(kept_row[9], direct_row[9]), (kept_row, direct_row)
    assert query(dsn, KEPT_MINUTES) == query(dsn, DIRECT_MINUTES)


def insert_sql_reads(dsn: str, session_id: int, location: str, tags: list[str], minutes_ago: int = 0,
                     first_sequence: int = 1, stream: str = "psql") -> None:
    """One INSERT statement of reads at one location, each a second later than the last."""
    query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data,
                                  received_at)
        SELECT s.id, s.timing_partner_id, %s, %s + t.n, %s, t.tag, '09:00:00',
               timestamptz '2026-11-24 09:00:00+00' + t.n * interval '1 second', 1, 'R1', 1, 'raw',
               now() - %s * interval '1 minute'
        FROM timing_sessions s, unnest(%s::text[]) WITH ORDINALITY AS t (tag, n) WHERE s.id = %s""",
          (stream, first_sequence, location, minutes_ago, tags, session_id))


def two_races(dsn: str) -> tuple[int, int, int]:
    """Two events of the default partner and one of another partner, a session each."""
    rows.insert_partner(dsn, "other")
    return (rows.insert_session(dsn, "A", "Trot"), rows.insert_session(dsn, "B", "Mile"),
            rows.insert_session(dsn, "C", "Relay", partner="other"))


def test_plain_sql_inserts_one_row_and_many_rows_across_events_and_locations(pg_dsn, database):
    trot, mile, relay = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "start", ["guntime"])
    assert_figures_match(pg_dsn)
    # One statement spanning three sessions (two partners) and two locations each, with a gun time.
    query(pg_dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT s.id, s.timing_partner_id, 'multi', n, loc, (100 + mod(n, 7))::text, 't',
               timestamptz '2026-11-24 10:00:00+00' - n * interval '1 second', 1, 'R', 1, 'raw'
        FROM timing_sessions s, generate_series(1, 50) AS n, unnest(ARRAY['finish', 'split']) AS loc
        WHERE s.id = ANY(%s)""", ([trot, mile, relay],))
    insert_sql_reads(pg_dsn, mile, "finish", ["guntime", "newlocation", "7"], first_sequence=500)
    figures = query(pg_dsn, KEPT_FIGURES)
    assert len(figures) == 7
    assert {row[9] for row in figures if row[1] in ("finish", "split")} >= {7}
    assert_figures_match(pg_dsn)


@pytest_twisted.ensureDeferred
async def test_reads_stored_by_the_collector_store_are_counted(pg_dsn, tmp_path):
    database, store = await started_store(pg_dsn, tmp_path, batch_size=100, batch_delay=0.02)
    try:
        trot = ReadSource("connection:a", "10.0.0.1:1", event_id="42", event_name="Turkey Trot")
        for seq in range(1, 301):
            store.record_read(make_read(seq, location="finish" if seq % 3 else "split", tag=str(seq % 40)), SOURCE)
            store.record_read(make_read(seq), trot)
        store.record_read(make_read(1), SOURCE)  # resent: stored once, counted once
        await wait_until(lambda: store.reads_stored == 600)
        assert query(pg_dsn, "SELECT sum(reads) FROM read_figures") == [(600,)]
        assert_figures_match(pg_dsn)
    finally:
        await store.stop()
        database.close()


def test_plain_sql_deletes_of_oldest_newest_and_middle_reads(pg_dsn, database):
    trot, mile, _ = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 41)])
    insert_sql_reads(pg_dsn, mile, "finish", [str(n) for n in range(1, 11)], first_sequence=100)
    insert_sql_reads(pg_dsn, trot, "split", ["1", "2"], first_sequence=200, minutes_ago=3)
    # The first and the last read of the trot's finish, and a middle one.
    query(pg_dsn, """DELETE FROM timing_reads WHERE id IN (
        (SELECT min(id) FROM timing_reads WHERE session_id = %s AND location_name = 'finish'),
        (SELECT max(id) FROM timing_reads WHERE session_id = %s AND location_name = 'finish'),
        (SELECT min(id) + 10 FROM timing_reads WHERE session_id = %s AND location_name = 'finish'))""",
          (trot, trot, trot))
    kept = query(pg_dsn, "SELECT reads FROM read_figures WHERE session_id = %s AND location_name = 'finish'",
                 (trot,))
    assert kept == [(37,)]
    first_last = query(pg_dsn, "SELECT first_read, last_read FROM read_figures WHERE session_id = %s"
                               " AND location_name = 'finish'", (trot,))
    direct = query(pg_dsn, "SELECT min(read_timestamp), max(read_timestamp) FROM timing_reads"
                           " WHERE session_id = %s AND location_name = 'finish'", (trot,))
    assert first_last == direct
    # A whole location goes: its row goes, and its minute.
    query(pg_dsn, "DELETE FROM timing_reads WHERE location_name = 'split'")
    assert query(pg_dsn, "SELECT count(*) FROM read_figures WHERE location_name = 'split'") == [(0,)]
    assert_figures_match(pg_dsn, tags_deleted=True)


def test_updates_truncate_and_deleted_sessions_keep_the_figures_right(pg_dsn, database):
    trot, mile, relay = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 21)])
    insert_sql_reads(pg_dsn, mile, "finish", [str(n) for n in range(1, 11)], first_sequence=100)
    insert_sql_reads(pg_dsn, relay, "finish", ["5", "6"], first_sequence=200)
    query(pg_dsn, "UPDATE timing_reads SET location_name = 'split' WHERE session_id = %s AND sequence_number <= 5",
          (trot,))
    assert_figures_match(pg_dsn, tags_deleted=True)
    query(pg_dsn, "DELETE FROM timing_sessions WHERE id = %s", (mile,))  # its reads go by cascade
    assert query(pg_dsn, "SELECT count(*) FROM read_figures WHERE session_id = %s", (mile,)) == [(0,)]
    assert_figures_match(pg_dsn, tags_deleted=True)
    query(pg_dsn, "TRUNCATE timing_reads")
    assert query(pg_dsn, "SELECT (SELECT count(*) FROM read_figures), (SELECT count(*) FROM read_minutes)") == [
        (0, 0)]


@pytest_twisted.ensureDeferred
async def test_retention_batched_deletes_keep_the_figures_right(pg_dsn, database):
    trot, mile, _ = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 61)], minutes_ago=60 * 24 * 40)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 6)], first_sequence=100)
    insert_sql_reads(pg_dsn, mile, "split", [str(n) for n in range(1, 26)], minutes_ago=60 * 24 * 40,
                     first_sequence=200)
    report = await retention.delete_expired(database, 30, reactor, batch_size=7, pause=0)
    assert report.reads == 85 and report.batches > 10
    kept = query(pg_dsn, KEPT_FIGURES)
    assert [(row[1], row[4]) for row in kept] == [("finish", 5)]
    assert_figures_match(pg_dsn, tags_deleted=True)


def test_two_connections_inserting_the_same_locations_at_once_neither_deadlock_nor_miscount(pg_dsn, database):
    trot, mile, relay = two_races(pg_dsn)
    sessions = [trot, mile, relay]
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str, order: list[int]) -> None:
        connection = psycopg2.connect(pg_dsn)
        try:
            start.wait()
            for round_ in range(40):
                with connection, connection.cursor() as cursor:
                    # One statement over every session and two locations, in this writer's order;
                    # a second statement in the same transaction, holding the first one's locks.
                    for location in ("finish", "split"):
                        cursor.execute("""
                            INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number,
                                location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,
                                gator_number, raw_data)
                            SELECT s.id, s.timing_partner_id, %s, %s * 10 + n, %s, (n * 13 + %s)::text, 't',
                                   now() - n * interval '1 second', 1, 'R', 1, 'raw'
                            FROM unnest(%s::bigint[]) WITH ORDINALITY AS o (sid, k)
                            JOIN timing_sessions s ON s.id = o.sid, generate_series(1, 5) AS n
                            ORDER BY o.k""", (name, round_, location, round_, order))
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=("w1", sessions)),
               threading.Thread(target=writer, args=("w2", sessions[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert query(pg_dsn, "SELECT sum(reads) FROM read_figures") == [(2 * 40 * 2 * 3 * 5,)]
    assert_figures_match(pg_dsn)


def test_distinct_tag_estimate_is_close_for_thousands_of_runners(pg_dsn, database):
    trot, mile, _ = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 6001)])
    insert_sql_reads(pg_dsn, mile, "finish", [str(n) for n in range(3001, 9001)], first_sequence=10_000)
    estimate = query(pg_dsn, "SELECT distinct_tags_estimate(bit_or(tags_seen)) FROM read_figures")[0][0]
    assert close_to(estimate, 9000), estimate


@pytest_twisted.ensureDeferred
async def test_web_figures_read_from_the_kept_figures_equal_direct_counts(pg_dsn, database):
    """stats, sessions, the location list and the per-minute chart, per partner, after inserts and deletes."""
    trot, mile, relay = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 31)] + ["guntime"], minutes_ago=2)
    insert_sql_reads(pg_dsn, mile, "split", [str(n) for n in range(1, 11)], first_sequence=100, minutes_ago=90)
    insert_sql_reads(pg_dsn, relay, "finish", ["1", "2"], first_sequence=200)
    query(pg_dsn, "DELETE FROM timing_reads WHERE id = (SELECT max(id) FROM timing_reads WHERE session_id = %s)",
          (mile,))
    default = Scope.of_partners([query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'default'")[0][0]])

    figures = await queries.stats(database, default)
    direct = query(pg_dsn, """
        SELECT count(*), count(*) FILTER (WHERE tag_code = 'guntime'), count(DISTINCT session_id), max(read_timestamp),
               max(id), count(DISTINCT tag_code) FILTER (WHERE tag_code <> 'guntime')
        FROM timing_reads WHERE timing_partner_id = %s""", (min(default.partners),))[0]
    assert (figures["total_reads"], figures["gun_times"], figures["sessions"], figures["latest_read"],
            figures["latest_read_id"], figures["unique_tags"]) == (*direct[:3], direct[3].isoformat(), *direct[4:])
    assert [(row["location"], row["reads"], row["latest_read"]["id"]) for row in figures["locations"]] == query(
        pg_dsn, """SELECT location_name, count(*), max(id) FROM timing_reads WHERE timing_partner_id = %s
                   GROUP BY 1 ORDER BY 1""", (min(default.partners),))
    in_last_hour = query(pg_dsn, """SELECT count(*) FROM timing_reads WHERE timing_partner_id = %s
        AND received_at >= date_trunc('minute', now()) - interval '59 minutes'""", (min(default.partners),))[0][0]
    assert sum(minute["reads"] for minute in figures["reads_per_minute"]) == in_last_hour == 31
    assert len(figures["reads_per_minute"]) == 60

    listed = {row["id"]: row for row in await queries.sessions(database, default)}
    assert set(listed) == {trot, mile}
    for session in (trot, mile):
        count, locations, first, last = query(pg_dsn, """
            SELECT count(*), count(DISTINCT location_name), min(read_timestamp), max(read_timestamp)
            FROM timing_reads WHERE session_id = %s""", (session,))[0]
        assert (listed[session]["read_count"], listed[session]["location_count"], listed[session]["first_read"],
                listed[session]["last_read"]) == (count, locations, first.isoformat(), last.isoformat())
    assert await queries.location_names(database, default) == ["finish", "split"]
    other_event = Scope(default.partners, rows.event_of_session(pg_dsn, relay))
    assert await queries.location_names(database, other_event) == []  # the relay is another partner's


@pytest_twisted.ensureDeferred
async def test_newest_reads_of_one_partner_or_one_event_come_newest_first_whatever_others_stored_since(
        pg_dsn, database):
    """recent_reads / missed_reads walk the partner's index from the event's newest read (kept in
    read_figures); what they return is the same as filtering and ordering every read."""
    trot, mile, relay = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 21)])
    insert_sql_reads(pg_dsn, mile, "finish", [str(n) for n in range(1, 31)], first_sequence=100)
    insert_sql_reads(pg_dsn, relay, "finish", [str(n) for n in range(1, 11)], first_sequence=200)
    insert_sql_reads(pg_dsn, trot, "split", ["1", "2", "3"], first_sequence=300)
    default = query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'default'")[0][0]
    trot_event = rows.event_of_session(pg_dsn, trot)

    def direct(condition: str, params: tuple) -> list[int]:
        return [row[0] for row in query(pg_dsn, f"""SELECT r.id FROM timing_reads r
            JOIN timing_sessions s ON s.id = r.session_id WHERE {condition} ORDER BY r.id DESC""", params)]

    partner_reads = await queries.recent_reads(database, Scope.of_partners([default]), 10)
    assert [read.id for read in partner_reads] == direct("r.timing_partner_id = %s", (default,))[:10]
    event_scope = Scope(frozenset([default]), trot_event)
    event_reads = await queries.recent_reads(database, event_scope, 15, location="finish")
    assert [read.id for read in event_reads] == direct(
        "s.timing_event_id = %s AND r.location_name = 'finish'", (trot_event,))[:15]
    older = await queries.recent_reads(database, event_scope, 100, before_id=event_reads[-1].id)
    assert [read.id for read in older] == direct(
        "s.timing_event_id = %s AND r.id < %s", (trot_event, event_reads[-1].id))
    after = direct("s.timing_event_id = %s", (trot_event,))[10]
    missed = await queries.missed_reads(database, event_scope, after, 5)
    assert [read.id for read in missed] == sorted(direct("s.timing_event_id = %s AND r.id > %s",
                                                         (trot_event, after))[:5])
    both = Scope.of_partners([default, query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'other'")[0][0]])
    assert [read.id for read in await queries.recent_reads(database, both, 200)] == direct("true", ())


def test_the_migration_fills_the_figures_from_reads_stored_before_it(pg_dsn):
    """0008 applied to a database that already holds reads (of several events, with gun times)."""
    before, figures_migration = [], None
    for migration in available_migrations():
        if migration.version < 8:
            before.append(migration)
        elif migration.version == 8:
            figures_migration = migration
    for migration in before:
        query(pg_dsn, migration.sql)
    trot, mile, relay = two_races(pg_dsn)
    insert_sql_reads(pg_dsn, trot, "finish", [str(n) for n in range(1, 41)] + ["guntime"], minutes_ago=5)
    insert_sql_reads(pg_dsn, mile, "split", [str(n) for n in range(1, 11)], first_sequence=100)
    insert_sql_reads(pg_dsn, relay, "finish", ["1", "newlocation"], first_sequence=200, minutes_ago=70)
    query(pg_dsn, figures_migration.sql)
    assert len(query(pg_dsn, KEPT_FIGURES)) == 3
    assert_figures_match(pg_dsn)
    insert_sql_reads(pg_dsn, mile, "split", ["11"], first_sequence=300)  # and the triggers carry on from there
    assert_figures_match(pg_dsn)
