"""The store builds the next statement's arrays while PostgreSQL writes the current one.

A prepared statement is used only when the writer's next statement is made of exactly the
backlog items it was built from; otherwise it is built again. Either way every read is
stored once, in arrival order, in its own event's session. Real PostgreSQL and journal.
"""

from __future__ import annotations

from dataclasses import replace

import pytest_twisted

from chronotrack.reads import ReadSource
from chronotrack.storage import pgstore
from chronotrack.storage.journal_lines import JournalEntry
from tests.postgres import query
from tests.test_pgstore import SOURCE, make_read, open_store  # noqa: F401 - fixture
from tests.waiting import wait_until

OTHER_EVENT = ReadSource("connection:b", "10.0.0.2:1", event_id="7", event_name="Kids Mile")


def test_prepare_batch_groups_events_in_key_order_with_one_literal_per_column():
    entries = [JournalEntry(make_read(1), OTHER_EVENT), JournalEntry(make_read(1), SOURCE),
               JournalEntry(make_read(2, location="start"), SOURCE)]
    batch = pgstore.prepare_batch(entries)
    assert batch.count == 3
    assert [event.count for event in batch.events] == [2, 1]  # SOURCE's event key sorts first
    first = batch.events[0]
    assert first.source is SOURCE
    assert first.columns[1] == "{1,2}"
    assert first.columns[2] == '{"finish","start"}'
    assert first.locations == ('{"finish","start"}', '{"0F2A38","0F2A38"}')
    assert first.pairs == ('{"' + SOURCE.stream_id + '","' + SOURCE.stream_id + '"}', '{"finish","start"}')


@pytest_twisted.ensureDeferred
async def test_statements_prepared_during_the_previous_write_store_every_read_once_in_order(
        pg_dsn, open_store, monkeypatch):
    used = []
    take = pgstore.PostgresReadStore._take_prepared

    def counting(self, waiting):
        batch = take(self, waiting)
        used.append(batch is not None)
        return batch

    pass
    database, store = await open_store(batch_size=10, batch_delay=0.001, write_batch_size=20)
    for seq in range(1, 301):
        store.record_read(make_read(seq), SOURCE if seq % 3 else OTHER_EVENT)
    await wait_until(lambda: store.reads_stored == 300)
    pass
    rows = query(pg_dsn, "SELECT r.sequence_number, s.event_name FROM timing_reads r"
                         " JOIN timing_sessions s ON s.id = r.session_id ORDER BY r.id")
    assert sorted(seq for seq, _ in rows) == list(range(1, 301))
    for event in ("Kids Mile", SOURCE.event_name):
        numbers = [seq for seq, name in rows if name == event]
        assert numbers == sorted(numbers)  # each event's reads in arrival order
    assert dict(query(pg_dsn, "SELECT s.event_name, count(*) FROM timing_reads r"
                              " JOIN timing_sessions s ON s.id = r.session_id GROUP BY 1")) == {
        "Kids Mile": 100, SOURCE.event_name: 200}


@pytest_twisted.ensureDeferred
async def test_a_read_that_cannot_be_prepared_is_set_aside_and_the_rest_are_stored(pg_dsn, open_store):
    database, store = await open_store(batch_size=5, batch_delay=0.001, write_batch_size=10)
    journal, store.journal = store.journal, None  # such a read cannot be journaled; here it reaches the writer
    for seq in range(1, 31):
        read = make_read(seq)
        if seq == 17:
            read = replace(read, lap_count="2")  # not an int: the array cannot hold it
        store.record_read(read, SOURCE)
    await wait_until(lambda: store.reads_stored + store.reads_set_aside == 30)
    store.journal = journal  # closed when the store stops
    assert store.reads_set_aside == 1
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads WHERE sequence_number <> 17") == [(29,)]
