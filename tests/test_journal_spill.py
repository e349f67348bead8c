"""Waiting reads beyond a bound live in the journal, not in memory, and are read back to be stored.

Journal side: ``ReadJournal.read_back`` returns exactly an acknowledged, unreleased batch.
Store side (real PostgreSQL): while the database is not ready, reads past
``backlog_in_memory`` are kept only on disk; once it is ready every read is stored once,
and every journal batch is released.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from chronotrack.storage.journal import JournalError, ReadJournal
from chronotrack.storage.pgstore import PostgresReadStore
from tests.postgres import query
from tests.test_journal import make_batch
from tests.test_pgstore import SOURCE, LateDatabaseSource, make_read
from tests.waiting import wait_until


@pytest_twisted.ensureDeferred
async def test_read_back_returns_exactly_the_batch_appended_at_that_position(tmp_path):
    journal = ReadJournal(tmp_path / "journal", reactor)
    await journal.open()
    batches = [make_batch(0, 3), make_batch(3, 4), make_batch(7, 2)]
    positions = [await journal.append(batch) for batch in batches]
    for batch, position in zip(batches, positions):
        assert await journal.read_back(position) == batch
    await journal.close()


@pytest_twisted.ensureDeferred
async def test_read_back_of_a_released_batch_fails_clearly(tmp_path):
    journal = ReadJournal(tmp_path / "journal", reactor)
    await journal.open()
    first = await journal.append(make_batch(0, 2))
    second = await journal.append(make_batch(2, 2))
    await journal.release(first)
    assert await journal.read_back(second) == make_batch(2, 2)
    with pytest.raises(JournalError, match="no unreleased batch"):
        await journal.read_back(first)
    await journal.close()


@pytest_twisted.ensureDeferred
async def test_reads_past_the_memory_bound_wait_in_the_journal_and_are_all_stored_once(
        pg_dsn, tmp_path, database):
    source = LateDatabaseSource(database)
    store = PostgresReadStore(reactor, source, ReadJournal(tmp_path / "journal", reactor),
                              batch_size=10, backlog_in_memory=30, write_batch_size=25)
    await store.start()
    try:
        for seq in range(1, 201):
            store.record_read(make_read(seq), SOURCE)
        await wait_until(lambda: store.figures()["reads_waiting"] == 200)
        figures = store.figures()
        assert figures["reads_waiting"] - figures["reads_waiting_in_journal_only"] <= 30
        assert figures["reads_waiting_in_journal_only"] >= 170
        source.ready.callback(database)
        await wait_until(lambda: store.reads_stored == 200)
        assert query(pg_dsn, "SELECT count(*), count(DISTINCT sequence_number), min(sequence_number),"
                             " max(sequence_number) FROM timing_reads") == [(200, 200, 1, 200)]
        assert store.figures()["reads_waiting"] == 0
        assert store.figures()["reads_waiting_in_journal_only"] == 0
        assert await store.resume_points(SOURCE.stream_id) == {"finish": 200}
        await wait_until(lambda: store.journal.pending_count == 0)  # every batch released
    finally:
        await store.stop()
