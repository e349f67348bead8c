"""A write batch holding reads of many events at once, as a hub shared by many timing companies
gets in a busy hour (real PostgreSQL, the collector's own write path).

Each event's reads go in through store_timing_reads, whose plain-INSERT-first block (0017) is a
subtransaction. A backend keeps the ids of at most 64 subtransactions of its open transaction
in shared memory; past that it "overflows", and until that transaction ends every other session
checking row visibility has to look its subtransactions up in pg_subtrans: every page and query
of the hub slows down. So a batch spanning many events is written in several transactions of at
most MAX_EVENTS_PER_TRANSACTION events each.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import psycopg2.errors
import pytest
import pytest_twisted

from chronotrack.reads import ReadSource
from chronotrack.storage.journal_lines import JournalEntry
from chronotrack.storage.read_statements import (DEFAULT_CLOCK_TOLERANCE, MAX_EVENTS_PER_TRANSACTION,
                                                 prepare_batch, write_prepared)
from tests.postgres import query
from tests.test_pgstore import make_read, open_store  # noqa: F401 - fixture
from tests.waiting import wait_until

EVENTS = 70
READS_PER_EVENT = 3

# After each statement that stores reads: did this backend's open transaction overflow its
# cache of subtransaction ids? (pg_stat_get_backend_subxact, PostgreSQL 16 and later.)
_OVERFLOW_PROBE = """
CREATE TABLE overflow_probe (overflowed BOOLEAN NOT NULL);
CREATE FUNCTION probe_overflow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO overflow_probe
    SELECT s.subxact_overflowed
    FROM pg_stat_get_backend_idset() AS b (id), pg_stat_get_backend_subxact(b.id) AS s
    WHERE pg_stat_get_backend_pid(b.id) = pg_backend_pid();
    RETURN NULL;
END;
$$;
CREATE TRIGGER timing_reads_overflow_probe AFTER INSERT ON timing_reads
    FOR EACH STATEMENT EXECUTE FUNCTION probe_overflow();
"""


def entries_of_many_events() -> list[JournalEntry]:
    received = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
    entries = []
    for event in range(EVENTS):
        source = ReadSource(stream_id=f"connection:ctl-{event}", peer="127.0.0.1:5000",
                            event_id=f"race-{event:02d}", event_name=f"Race {event}")
        entries += [JournalEntry(replace(make_read(seq), received_at=received), source)
                    for seq in range(1, READS_PER_EVENT + 1)]
    return entries


@pytest_twisted.ensureDeferred
async def test_a_batch_of_more_events_than_a_transaction_may_hold_never_overflows_it(database, pg_dsn):
    if int(query(pg_dsn, "SHOW server_version_num")[0][0]) < 160000:
        pytest.skip("pg_stat_get_backend_subxact needs PostgreSQL 16 or later")
    query(pg_dsn, _OVERFLOW_PROBE)
    batch = prepare_batch(entries_of_many_events())
    assert len(batch.events) == EVENTS

    session_id, inserted = await write_prepared(database, batch, DEFAULT_CLOCK_TOLERANCE)

    assert inserted == EVENTS * READS_PER_EVENT
    probes = [row[0] for row in query(pg_dsn, "SELECT overflowed FROM overflow_probe")]
    assert len(probes) == EVENTS
    assert not any(probes), f"{probes.count(True)} statements ran in an overflowed transaction"
    stored = query(pg_dsn, """SELECT e.event_key, count(*) FROM timing_reads r
                              JOIN timing_sessions s ON s.id = r.session_id
                              JOIN timing_events e ON e.id = s.timing_event_id GROUP BY 1""")
    assert len(stored) == EVENTS and all(count == READS_PER_EVENT for _, count in stored)
    figures = query(pg_dsn, "SELECT sum(reads) FROM read_figures")
    assert figures == [(EVENTS * READS_PER_EVENT,)]


@pytest_twisted.ensureDeferred
async def test_a_many_event_batch_failing_part_way_is_written_again_whole_and_once(database, pg_dsn):
    """Its transactions commit one after another: when one fails, those before it stay, and the
    store's retry of the whole batch adds only the rest."""
    # Events go in key order, MAX_EVENTS_PER_TRANSACTION at a time: race-40 is in the second.
    assert MAX_EVENTS_PER_TRANSACTION <= 40 < 2 * MAX_EVENTS_PER_TRANSACTION < EVENTS
    query(pg_dsn, "ALTER TABLE timing_reads ADD CONSTRAINT refuse_race_40"
                  " CHECK (stream_id <> 'connection:ctl-40') NOT VALID")
    batch = prepare_batch(entries_of_many_events())
    with pytest.raises(psycopg2.errors.CheckViolation):
        await write_prepared(database, batch, DEFAULT_CLOCK_TOLERANCE)
    first_part = MAX_EVENTS_PER_TRANSACTION * READS_PER_EVENT
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(first_part,)]

    query(pg_dsn, "ALTER TABLE timing_reads DROP CONSTRAINT refuse_race_40")
    _, inserted = await write_prepared(database, batch, DEFAULT_CLOCK_TOLERANCE)

    assert inserted == EVENTS * READS_PER_EVENT - first_part
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(EVENTS * READS_PER_EVENT,)]
    assert query(pg_dsn, "SELECT sum(reads) FROM read_figures") == [(EVENTS * READS_PER_EVENT,)]


@pytest_twisted.ensureDeferred
async def test_the_store_counts_reads_committed_before_a_later_transaction_failed_once(pg_dsn, open_store):
    """The transactions before the failed one stay committed: when the batch is written again
    their reads are found stored, and are counted as stored, not as duplicates."""
    database, store = await open_store(batch_size=1000, batch_delay=0.01, write_batch_size=5000)
    query(pg_dsn, "ALTER TABLE timing_reads ADD CONSTRAINT refuse_race_40"
                  " CHECK (stream_id <> 'connection:ctl-40') NOT VALID")
    for entry in entries_of_many_events():  # one journal batch, one write of 70 events
        store.record_read(entry.read, entry.source)
    total = EVENTS * READS_PER_EVENT
    await wait_until(lambda: store.reads_stored + store.reads_set_aside == total, timeout=60)
    assert store.reads_set_aside == READS_PER_EVENT  # race-40's reads, refused one by one
    assert store.reads_stored == total - READS_PER_EVENT
    assert store.duplicates_skipped == 0
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(total - READS_PER_EVENT,)]
