"""The store's resume watermark and clock flag against a real PostgreSQL (findings 1 and 8).

A stream resumes from its first missing sequence number: neither a gap nor a client that
claims a real controller's connection id and jumps to 999999 may hide unstored reads.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import pytest_twisted

from chronotrack.reads import ReadSource
from chronotrack.storage.watermarks import contiguous_through, resume_points
from tests.postgres import query
from tests.test_pgstore import SOURCE, make_read, open_store  # noqa: F401
from tests.waiting import wait_until


@pytest_twisted.ensureDeferred
async def test_a_spoofed_sequence_jump_does_not_move_the_resume_point(pg_dsn, open_store):
    database, store = await open_store()
    for seq in range(1, 6):
        store.record_read(make_read(seq), SOURCE)
    spoofer = ReadSource("connection:ctl-1", "192.0.2.66:4000")  # claims the real controller's id
    store.record_read(make_read(999999), spoofer)
    await wait_until(lambda: store.reads_stored == 6)
    assert await store.resume_points("connection:ctl-1") == {"finish": 5}
    assert query(pg_dsn, "SELECT contiguous_through FROM stream_watermarks") == [(5,)]


@pytest_twisted.ensureDeferred
async def test_a_gap_holds_the_resume_point_until_it_is_filled(pg_dsn, open_store):
    database, store = await open_store(batch_size=3)
    for seq in [1, 2, 3, 4, 5, *range(7, 2600)]:
        store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.reads_stored == 2598)
    assert await store.resume_points("connection:ctl-1") == {"finish": 5}
    store.record_read(make_read(6), SOURCE)
    await wait_until(lambda: store.reads_stored == 2599)
    assert await store.resume_points("connection:ctl-1") == {"finish": 2599}


@pytest_twisted.ensureDeferred
async def test_a_stream_without_read_1_is_resumed_from_the_start(pg_dsn, open_store):
    database, store = await open_store()
    for seq in range(2, 10):
        store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.reads_stored == 8)
    assert await store.resume_points("connection:ctl-1") == {}


@pytest_twisted.ensureDeferred
async def test_reads_far_from_the_server_clock_are_stored_and_flagged(pg_dsn, open_store):
    database, store = await open_store()
    now = datetime.now(timezone.utc)
    on_time = replace(make_read(1), read_timestamp=now - timedelta(minutes=5))
    wrong_clock = replace(make_read(2), read_timestamp=now - timedelta(days=3))
    store.record_read(on_time, SOURCE)
    store.record_read(wrong_clock, SOURCE)
    await wait_until(lambda: store.reads_stored == 2)
    assert query(pg_dsn, "SELECT sequence_number, clock_suspect FROM timing_reads ORDER BY 1") == [
        (1, False), (2, True)]


def test_contiguous_through_extends_a_stored_run_with_pending_numbers():
    assert contiguous_through(5, {6, 7, 9}) == 7
    assert contiguous_through(0, {2, 3}) == 0


@pytest.mark.parametrize("stored, pending, prefix, expected", [
    ([("s", "finish", 5)], {("s", "finish"): {6, 8}}, None, {"finish": 6}),
    ([], {("s", "start"): {1, 2}}, None, {"start": 2}),
    ([("event:1/reader:A", "finish", 4), ("event:1/reader:B", "finish", 2),
      ("event:1/reader:A", "start", 3)], {}, "event:1/reader:", {"start": 3}),
    ([("s", "finish", 0)], {}, None, {}),
])
def test_resume_points_merge_stored_and_pending(stored, pending, prefix, expected):
    assert resume_points(stored, pending, prefix) == expected


@pytest_twisted.ensureDeferred
async def test_upgrading_computes_the_watermarks_of_reads_already_stored(pg_dsn):
    """0003 on a database with reads: each stream resumes after its unbroken run, not its highest read."""
    from twisted.internet import reactor

    from chronotrack.storage.database import Database
    from chronotrack.storage.migrations import migrate
    from tests.test_migrations import create_schema_version_1, fill_like_a_race_weekend

    create_schema_version_1(pg_dsn)
    fill_like_a_race_weekend(pg_dsn)  # connection:c1, finish, 1..25 in four sessions
    session = query(pg_dsn, "SELECT max(id) FROM timing_sessions")[0][0]
    query(pg_dsn, """
        INSERT INTO timing_reads (session_id, stream_id, sequence_number, location_name, tag_code, read_time,
                                  read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT %s, 'connection:c2', n, 'start', '7', '09:00:00.00', now(), 0, '0F2A38', 1, 'x'
        FROM unnest(ARRAY[1, 2, 3, 5, 999999]) AS n""", (session,))
    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        await migrate(database)
    finally:
        database.close()
    assert sorted(query(pg_dsn, "SELECT stream_id, location_name, contiguous_through FROM stream_watermarks")) == [
        ("connection:c1", "finish", 25), ("connection:c2", "start", 3)]
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads WHERE clock_suspect") == [(0,)]
