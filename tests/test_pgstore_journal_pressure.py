"""Reads parsed faster than the journal makes them durable pause the controllers instead of
piling up in memory (real journal on disk, real PostgreSQL).

The journal's appends are held back here, as a slow disk under a burst would hold them: the
store must ask for a pause once ``journal_queue_limit`` reads wait for the journal, ask for
the resume once the journal has caught up with half of them, and lose nothing either way.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from chronotrack.storage.database import Database
from chronotrack.storage.journal import ReadJournal
from chronotrack.storage.pgstore import PostgresReadStore, default_journal_queue_limit
from tests.postgres import query
from tests.test_pgstore import SOURCE, DatabaseSource, make_read
from tests.waiting import wait_until


class HeldJournal(ReadJournal):
    """The real journal, whose acknowledgements wait until the test lets them through."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.holding = True
        self.held: list[tuple[Deferred, Deferred]] = []

    def append(self, entries):
        written = super().append(entries)
        if not self.holding:
            return written
        acknowledged: Deferred = Deferred()
        self.held.append((written, acknowledged))
        return acknowledged

    def let_through(self, count: int | None = None) -> None:
        """Acknowledge the oldest ``count`` held appends (all of them when None), in order."""
        count = len(self.held) if count is None else count
        released, self.held = self.held[:count], self.held[count:]
        for written, acknowledged in released:
            written.chainDeferred(acknowledged)

    def stop_holding(self) -> None:
        self.holding = False
        self.let_through()


async def held_store(database, tmp_path, events, **options):
    journal = HeldJournal(tmp_path / "journal", reactor)
    store = PostgresReadStore(reactor, DatabaseSource(database), journal,
                              on_backlog_full=lambda: events.append("pause"),
                              on_backlog_drained=lambda: events.append("resume"), **options)
    await store.start()
    return store, journal


@pytest_twisted.ensureDeferred
async def test_reads_waiting_for_the_journal_pause_the_controllers_until_it_catches_up(
        pg_dsn, tmp_path, database):
    events: list[str] = []
    store, journal = await held_store(database, tmp_path, events, batch_size=100)
    limit = default_journal_queue_limit(100)
    assert store.journal_queue_limit == limit == 1000
    try:
        for seq in range(1, limit):
            store.record_read(make_read(seq), SOURCE)
        assert events == [], "paused before the limit"
        store.record_read(make_read(limit), SOURCE)
        assert events == ["pause"]
        assert store.figures()["reads_awaiting_journal"] == limit
        # A controller's chunk already read is still parsed after the pause: no second pause.
        for seq in range(limit + 1, limit + 21):
            store.record_read(make_read(seq), SOURCE)
        assert events == ["pause"]

        batches = len(journal.held)
        journal.let_through(batches // 2 - 1)  # still more than half the limit waiting
        await wait_until(lambda: store.figures()["reads_awaiting_journal"] == limit + 20 - 100 * (batches // 2 - 1))
        assert events == ["pause"]
        journal.let_through(2)  # now at most half: read from the controllers again
        await wait_until(lambda: events == ["pause", "resume"])

        journal.stop_holding()
        await wait_until(lambda: store.reads_stored == limit + 20)
        assert query(pg_dsn, "SELECT count(*), count(DISTINCT sequence_number) FROM timing_reads") == [
            (limit + 20, limit + 20)]
        figures = store.figures()
        assert figures["pauses_for_journal"] == 1
        assert figures["reads_awaiting_journal"] == 0
        assert figures["reads_awaiting_journal_peak"] == limit + 20
    finally:
        journal.stop_holding()
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_the_journal_catching_up_does_not_resume_controllers_paused_for_the_database(tmp_path):
    """Two reasons to pause, one pause: the resume waits until neither holds."""
    unreachable = Database(reactor, "host=/nonexistent-socket-dir dbname=x user=x")
    await unreachable.start()
    events: list[str] = []
    store, journal = await held_store(unreachable, tmp_path, events, batch_size=10, journal_queue_limit=40,
                                      backlog_limit=60)
    try:
        journal.stop_holding()
        for seq in range(1, 61):
            store.record_read(make_read(seq), SOURCE)
        assert events == ["pause"]  # the database backlog is full
        journal.holding = True
        for seq in range(61, 101):
            store.record_read(make_read(seq), SOURCE)
        assert store.figures()["reads_awaiting_journal"] >= 40  # the journal is behind as well
        journal.stop_holding()
        await wait_until(lambda: store.figures()["reads_awaiting_journal"] == 0)
        assert events == ["pause"]
        assert store.figures()["controllers_paused"] is True
    finally:
        journal.stop_holding()
        await store.stop()
        unreachable.close()
