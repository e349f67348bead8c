"""The store sends its next statement of reads while PostgreSQL still writes the one before.

The statement sent ahead waits in PostgreSQL for the store's lock (0020) and starts the moment
the one before commits; it is sent only once that one holds the lock, so statements are written
in the order they were sent and ids follow arrival order. Answers are handled in that order
too: a statement that commits after the one before it failed is counted once, as stored.
Real PostgreSQL and journal.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest_twisted

from chronotrack.reads import ReadSource
from tests.postgres import query
from tests.test_pgstore import SOURCE, make_read, open_store  # noqa: F401 - fixture
from tests.test_store_timing_reads import STREAM
from tests.waiting import wait_until

WRITER = 4242

# One read of STREAM at the finish, through the function a statement sent ahead calls.
_IN_TURN = ("SELECT inserted FROM store_timing_reads_in_turn(%s, NULL, '42', 'Turkey Trot', 60,"
            " '{finish}', '{0F2A38}', %s::text[], '{1}', '{finish}', '{1001}', '{09:00:01.00}',"
            " '{1795683601000000}', '{0}', '{0F2A38}', '{1}', '{CT01_33~1~finish~1001~09:00:01.00~0~0F2A38~1}',"
            " '{1795683601000000}', '{NULL}', %s::text[], '{finish}')")


def test_a_statement_in_turn_waits_for_the_writers_lock_then_is_written(database, pg_dsn):
    holder = psycopg2.connect(pg_dsn)
    waiter = psycopg2.connect(pg_dsn)
    outcome: list = []
    try:
        holder.cursor().execute("SELECT pg_advisory_xact_lock(20, %s)", (WRITER,))  # a statement being written
        waiter_pid = waiter.get_backend_pid()

        def write() -> None:
            try:
                with waiter.cursor() as cursor:
                    cursor.execute(_IN_TURN, (WRITER, [STREAM], [STREAM]))
                    outcome.append(cursor.fetchone()[0])
                waiter.commit()
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                outcome.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [(wait,)] = query(pg_dsn, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (waiter_pid,))
            if wait == "Lock":
                break
            time.sleep(0.01)
        assert wait == "Lock", "the statement did not wait for the writer's lock"
        assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(0,)]
        holder.commit()  # the statement before it is committed: its turn
        thread.join(10)
        assert outcome == [1]
        assert query(pg_dsn, "SELECT sequence_number FROM timing_reads") == [(1,)]
    finally:
        holder.close()
        waiter.close()


def test_another_writers_lock_does_not_hold_a_statement_back(database, pg_dsn):
    holder = psycopg2.connect(pg_dsn)
    try:
        holder.cursor().execute("SELECT pg_advisory_xact_lock(20, %s)", (WRITER + 1,))  # another collector's
        assert query(pg_dsn, _IN_TURN, (WRITER, [STREAM], [STREAM])) == [(1,)]
    finally:
        holder.close()


@pytest_twisted.ensureDeferred
async def test_statements_sent_ahead_are_written_in_the_order_they_were_sent(pg_dsn, open_store):
    database, store = await open_store(batch_size=500, batch_delay=0.001, write_batch_size=2000)
    other = ReadSource(stream_id="connection:ctl-2", peer="127.0.0.1:5001")
    for seq in range(1, 12_001):
        store.record_read(make_read(seq), SOURCE)
        store.record_read(make_read(seq), other)
    await wait_until(lambda: store.reads_stored == 24_000, timeout=60)
    assert store.statements_sent_ahead > 0, "no statement went out ahead: the test tested nothing"
    for stream in (SOURCE.stream_id, other.stream_id):
        numbers = [seq for (seq,) in query(pg_dsn, "SELECT sequence_number FROM timing_reads"
                                                   " WHERE stream_id = %s ORDER BY id", (stream,))]
        assert numbers == list(range(1, 12_001))
    assert store.duplicates_skipped == 0
    assert store.figures()["statements_sent_ahead"] == store.statements_sent_ahead


@pytest_twisted.ensureDeferred
async def test_reads_committed_ahead_of_a_refused_statement_are_counted_once(pg_dsn, open_store):
    database, store = await open_store(batch_size=500, batch_delay=0.001, write_batch_size=2000)
    refused = ReadSource(stream_id=SOURCE.stream_id, peer=SOURCE.peer, connection_row_id=10**9)
    for seq in range(1, 8_001):
        # Read 1,500 names a controller connection that does not exist: its statement is refused
        # at its end, while the statement after it waits with reads PostgreSQL accepts.
        store.record_read(make_read(seq), refused if seq == 1_500 else SOURCE)
    await wait_until(lambda: store.reads_stored + store.reads_set_aside == 8_000, timeout=60)
    await wait_until(lambda: not store.figures()["reads_waiting"], timeout=60)
    assert store.statements_sent_ahead > 0, "no statement went out ahead: the test tested nothing"
    assert store.reads_set_aside == 1
    assert store.reads_stored == 7_999
    assert store.duplicates_skipped == 0  # the reads committed ahead were found stored when re-sent
    assert query(pg_dsn, "SELECT count(*), count(DISTINCT sequence_number) FROM timing_reads") == [(7_999, 7_999)]


@pytest_twisted.ensureDeferred
async def test_connections_cut_while_statements_are_sent_ahead_lose_and_double_no_read(pg_dsn, open_store):
    database, store = await open_store(batch_size=500, batch_delay=0.001, write_batch_size=2000)
    for seq in range(1, 30_001):
        store.record_read(make_read(seq), SOURCE)
    await wait_until(lambda: store.statements_sent_ahead > 0, timeout=60)
    # Every connection of the store dies: the statement being written and the one sent ahead.
    cut = query(pg_dsn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend'")
    assert cut[0][0] >= 2
    await wait_until(lambda: not store.figures()["reads_waiting"], timeout=60)
    assert query(pg_dsn, "SELECT count(*), count(DISTINCT sequence_number) FROM timing_reads") == [(30_000, 30_000)]
    # Each read counted once: stored, or found stored when sent again after a lost answer.
    assert store.reads_stored + store.duplicates_skipped == 30_000
    numbers = [seq for (seq,) in query(pg_dsn, "SELECT sequence_number FROM timing_reads ORDER BY id")]
    assert numbers == list(range(1, 30_001))
