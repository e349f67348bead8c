"""PostgresReadStore against a real PostgreSQL and a real journal on disk."""

from datetime import datetime, timezone

import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from chronotrack.storage.database import Database
from chronotrack.storage.journal import ReadJournal
from chronotrack.storage.migrations import migrate
from chronotrack.storage.pgstore import PostgresReadStore
from chronotrack.reads import ReadSource, TagRead
from tests.postgres import query
from tests.waiting import wait_until


class DatabaseSource:
    """Stands in for DatabaseService: a started Database with its schema."""

    def __init__(self, database):
        self.database = database

    def when_schema_ready(self):
        return task.deferLater(reactor, 0, lambda: self.database)


def make_read(seq, location="finish", tag=None, reader="0F2A38", lap=2, gator=3):
    tag = tag or str(1000 + seq)
    time_text = f"2026-11-24T09:{seq // 60 % 60:02d}:{seq % 60:02d}.25"
    return TagRead("CT01_33", seq, location, tag, time_text,
                   datetime(2026, 11, 24, 9, seq // 60 % 60, seq % 60, 250000, tzinfo=timezone.utc),
                   lap, reader, gator, f"CT01_33~{seq}~{location}~{tag}~{time_text}~{lap}~{reader}~{gator}")


SOURCE = ReadSource(stream_id="connection:ctl-1", peer="127.0.0.1:5000")


async def started_store(dsn, tmp_path, **kwargs):
    database = Database(reactor, dsn)
    await database.start()
    await migrate(database)
    journal = ReadJournal(tmp_path / "journal", reactor)
    store = PostgresReadStore(reactor, DatabaseSource(database), journal, **kwargs)
    await store.start()
    return database, store


@pytest_twisted.async_yield_fixture
async def open_store(pg_dsn, tmp_path):
    """Returns ``open(**options) -> (database, store)``; everything opened is closed afterwards."""
    opened = []

    async def open_(**options):
        database, store = await started_store(pg_dsn, tmp_path, **options)
        opened.append((database, store))
        return database, store

    yield open_
    for database, store in opened:
        await store.stop()
        database.close()


@pytest_twisted.ensureDeferred
async def test_reads_are_written_in_batches_not_one_round_trip_each(pg_dsn, open_store):
    database, store = await open_store(batch_size=100, batch_delay=0.05)
    interactions = []
    original = database.run_interaction
    database.run_interaction = lambda *a, **k: interactions.append(a[0]) or original(*a, **k)
    await task.deferLater(reactor, 0.1, lambda: None)  # let the session query finish
    interactions.clear()
    for seq in range(1, 1001):
        store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.reads_stored == 1000)
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(1000,)]
    assert len(interactions) <= 12, f"{len(interactions)} database writes for 1000 reads"


@pytest_twisted.ensureDeferred
async def test_fields_are_stored_as_parsed_with_lap_and_gator_in_their_columns(pg_dsn, open_store):
    database, store = await open_store()
    await store.record_read(make_read(7, lap=5, gator=2), SOURCE)
    await wait_until(lambda: store.reads_stored == 1)
    rows = query(pg_dsn, "SELECT sequence_number, location_name, tag_code, read_time, lap_count,"
                         " reader_id, gator_number, raw_data, stream_id, location_id IS NOT NULL"
                         " FROM timing_reads")
    assert rows == [(7, "finish", "1007", "2026-11-24T09:00:07.25", 5, "0F2A38", 2,
                     "CT01_33~7~finish~1007~2026-11-24T09:00:07.25~5~0F2A38~2",
                     "connection:ctl-1", True)]


@pytest_twisted.ensureDeferred
async def test_a_resent_read_is_stored_once(pg_dsn, open_store):
    database, store = await open_store()
    for _ in range(3):
        for seq in range(1, 51):
            store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.reads_stored + store.duplicates_skipped == 150)
    assert query(pg_dsn, "SELECT count(*), count(DISTINCT sequence_number) FROM timing_reads") == [(50, 50)]
    assert store.reads_stored == 50


@pytest_twisted.ensureDeferred
async def test_same_sequence_from_two_controller_streams_is_two_reads(pg_dsn, open_store):
    database, store = await open_store()
    store.record_read(make_read(1), SOURCE)
    store.record_read(make_read(1), ReadSource("connection:ctl-2", "127.0.0.1:5001"))
    await wait_until(lambda: store.reads_stored == 2)


@pytest_twisted.ensureDeferred
async def test_active_session_is_reused_and_a_new_one_opened_when_none_is_active(pg_dsn, open_store):
    database, store = await open_store()
    trot = ReadSource("connection:ctl-1", "127.0.0.1:5000", event_id="42", event_name="Turkey Trot")
    await store.record_event_info("Turkey Trot", "42", "5k", trot)
    store.record_read(make_read(1), trot)
    await wait_until(lambda: store.reads_stored == 1)
    sessions = query(pg_dsn, "SELECT id, status, event_name, event_id FROM timing_sessions")
    assert len(sessions) == 1 and sessions[0][1:] == ("active", "Turkey Trot", "42")
    first = sessions[0][0]
    query(pg_dsn, "UPDATE timing_sessions SET status = 'closed'")
    store.record_read(make_read(2), trot)
    await wait_until(lambda: store.reads_stored == 2)
    rows = query(pg_dsn, "SELECT session_id FROM timing_reads ORDER BY sequence_number")
    assert rows[0] == (first,) and rows[1][0] != first
    assert query(pg_dsn, "SELECT count(*) FROM timing_sessions WHERE status = 'active'") == [(1,)]


@pytest_twisted.ensureDeferred
async def test_two_events_run_side_by_side_each_in_its_own_session(pg_dsn, open_store):
    """One batch holding reads of two races: each race gets its session; closing one leaves the other."""
    database, store = await open_store(batch_delay=0.05)
    trot = ReadSource("connection:a", "10.0.0.1:1", event_id="42", event_name="Turkey Trot")
    mile = ReadSource("connection:b", "10.0.0.2:1", event_id="", event_name="Kids Mile")
    for seq in range(1, 4):
        store.record_read(make_read(seq), trot)
        store.record_read(make_read(seq), mile)
    await wait_until(lambda: store.reads_stored == 6)
    sessions = dict(query(pg_dsn, "SELECT event_name, id FROM timing_sessions WHERE status = 'active'"))
    assert set(sessions) == {"Turkey Trot", "Kids Mile"}
    assert query(pg_dsn, "SELECT event_key, event_name FROM timing_events ORDER BY event_key") == [
        ("42", "Turkey Trot"), ("Kids Mile", "Kids Mile")]
    by_session = dict(query(pg_dsn, "SELECT session_id, count(*) FROM timing_reads GROUP BY 1"))
    assert by_session == {sessions["Turkey Trot"]: 3, sessions["Kids Mile"]: 3}
    query(pg_dsn, "UPDATE timing_sessions SET status = 'closed' WHERE id = %s", (sessions["Kids Mile"],))
    store.record_read(make_read(4), trot)
    await wait_until(lambda: store.reads_stored == 7)
    assert query(pg_dsn, "SELECT session_id FROM timing_reads WHERE sequence_number = 4") == [
        (sessions["Turkey Trot"],)]


@pytest_twisted.ensureDeferred
async def test_partners_keep_their_own_sessions_and_resume_points(pg_dsn, open_store):
    """The same event id and stream id from two partners never share a session or a resume point."""
    database, store = await open_store()
    other = query(pg_dsn, "INSERT INTO timing_partners (slug, name) VALUES ('acme', 'Acme') RETURNING id")[0][0]
    ours = ReadSource("connection:ctl-1", "10.0.0.1:1", event_id="42", event_name="Turkey Trot")
    theirs = ReadSource("connection:ctl-1", "10.0.0.2:1", partner_id=other, event_id="42", event_name="Trot")
    for seq in range(1, 6):
        store.record_read(make_read(seq), ours)
    for seq in range(1, 4):
        store.record_read(make_read(seq), theirs)
    await wait_until(lambda: store.reads_stored == 8)
    rows = query(pg_dsn, "SELECT p.slug, count(*), count(DISTINCT r.session_id) FROM timing_reads r"
                         " JOIN timing_partners p ON p.id = r.timing_partner_id GROUP BY 1 ORDER BY 1")
    assert rows == [("acme", 3, 1), ("default", 5, 1)]
    assert query(pg_dsn, "SELECT count(DISTINCT timing_partner_id) FROM timing_sessions") == [(2,)]
    assert await store.resume_points("connection:ctl-1") == {"finish": 5}
    assert await store.resume_points("connection:ctl-1", other) == {"finish": 3}


@pytest_twisted.ensureDeferred
async def test_locations_and_rejected_lines_and_connections_are_recorded(pg_dsn, open_store):
    database, store = await open_store()
    await task.deferLater(reactor, 0.1, lambda: None)
    row_id = await store.controller_connected("10.0.0.5:4000", "SimpleClient~0.5.0~CTP01")
    assert isinstance(row_id, int)
    await store.controller_identified(row_id, "connection:ctl-1", "Turkey Trot")
    await store.record_locations(["start", "finish"], SOURCE)
    await store.record_rejected_line("garbage~line", "wrong number of fields", SOURCE)
    await store.controller_disconnected(row_id, "connection closed")
    assert sorted(query(pg_dsn, "SELECT location_name FROM timing_locations")) == [("finish",), ("start",)]
    assert query(pg_dsn, "SELECT line, reason, peer FROM rejected_lines") == [
        ("garbage~line", "wrong number of fields", "127.0.0.1:5000")]
    assert query(pg_dsn, "SELECT stream_id, event_name, disconnect_reason IS NOT NULL"
                         " FROM controller_connections") == [("connection:ctl-1", "Turkey Trot", True)]


@pytest_twisted.ensureDeferred
async def test_resume_points_come_from_stored_and_pending_reads(pg_dsn, open_store):
    database, store = await open_store()
    for seq in range(1, 11):
        store.record_read(make_read(seq, "finish"), SOURCE)
    for seq in range(1, 4):
        store.record_read(make_read(seq, "start"), SOURCE)
    await wait_until(lambda: store.reads_stored == 13)
    assert await store.resume_points("connection:ctl-1") == {"finish": 10, "start": 3}
    assert await store.resume_points("connection:other") == {}


@pytest_twisted.ensureDeferred
async def test_fallback_stream_resumes_only_unambiguous_locations(pg_dsn, open_store):
    database, store = await open_store()
    box_a = ReadSource("event:42/reader:0F2A38", "10.0.0.1:1")
    box_b = ReadSource("event:42/reader:AAAAAA", "10.0.0.2:1")
    for seq in range(1, 6):
        store.record_read(make_read(seq, "finish", reader="0F2A38"), box_a)
        store.record_read(make_read(seq, "start", reader="0F2A38"), box_a)
    for seq in range(1, 3):
        store.record_read(make_read(seq, "finish", reader="AAAAAA"), box_b)
    await wait_until(lambda: store.reads_stored == 12)
    # "finish" has two boxes' numbers: neither says where this one stopped.
    assert await store.resume_points("event:42/reader:*") == {"start": 5}


@pytest_twisted.ensureDeferred
async def test_reads_received_while_database_is_unreachable_are_written_after_restart(pg_dsn, tmp_path,
                                                                                       open_store):
    # Phase 1: the database is unreachable; reads go only to the journal.
    dead = Database(reactor, "host=/nonexistent-socket-dir dbname=x user=x")
    await dead.start()
    journal = ReadJournal(tmp_path / "journal", reactor)
    store = PostgresReadStore(reactor, DatabaseSource(dead), journal)
    await store.start()
    for seq in range(1, 101):
        await store.record_read(make_read(seq), SOURCE)
    assert store.figures()["reads_waiting"] == 100
    await store.stop()
    dead.close()
    # Phase 2: a new process (store) with a working database recovers them.
    database, store = await open_store()
    await wait_until(lambda: store.reads_stored == 100)
    assert query(pg_dsn, "SELECT count(DISTINCT sequence_number) FROM timing_reads") == [(100,)]
    await wait_until(lambda: journal_is_empty(tmp_path))


def journal_is_empty(tmp_path):
    return not any(path.stat().st_size for path in (tmp_path / "journal").glob("*.jsonl"))


@pytest_twisted.ensureDeferred
async def test_backlog_limit_pauses_and_resumes_controllers(pg_dsn, tmp_path):
    dead = Database(reactor, "host=/nonexistent-socket-dir dbname=x user=x")
    await dead.start()
    events = []
    store = PostgresReadStore(reactor, DatabaseSource(dead), ReadJournal(tmp_path / "j", reactor),
                              backlog_limit=50, on_backlog_full=lambda: events.append("pause"),
                              on_backlog_drained=lambda: events.append("resume"))
    await store.start()
    for seq in range(1, 61):
        store.record_read(make_read(seq), SOURCE)
    assert events == ["pause"]
    await store.stop()
    dead.close()


class LateDatabaseSource(DatabaseSource):
    """A database whose schema becomes ready only when the test says so (a collector starting up)."""

    def __init__(self, database):
        super().__init__(database)
        self.ready = Deferred()

    def when_schema_ready(self):
        return self.ready


@pytest_twisted.ensureDeferred
async def test_a_resume_asked_while_the_database_starts_waits_for_it_instead_of_a_whole_replay(
        pg_dsn, tmp_path, open_store):
    """A collector whose port opened before its database would answer from memory: ``start~loc`` from 1."""
    database, store = await open_store()
    for seq in range(1, 11):
        store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.reads_stored == 10)
    late = LateDatabaseSource(database)
    starting = PostgresReadStore(reactor, late, ReadJournal(tmp_path / "journal-2", reactor), resume_wait=60)
    await starting.start()
    try:
        asked = starting.resume_points("connection:ctl-1")
        await task.deferLater(reactor, 0.1, lambda: None)
        assert not asked.called, "answered before the database was there"
        late.ready.callback(database)
        assert await asked == {"finish": 10}
    finally:
        await starting.stop()


@pytest_twisted.ensureDeferred
async def test_without_a_database_a_resume_answers_from_memory_once_the_wait_is_over(pg_dsn, tmp_path):
    database = Database(reactor, pg_dsn)
    await database.start()
    store = PostgresReadStore(reactor, LateDatabaseSource(database), ReadJournal(tmp_path / "journal", reactor),
                              resume_wait=0.1)
    await store.start()
    try:
        assert await store.resume_points("connection:ctl-1") == {}
    finally:
        await store.stop()
        database.close()
