"""LiveReads' bookkeeping for statements that commit out of id order, as pure logic: the
queries are answered from an in-memory table (the real ones are exercised against PostgreSQL in
tests/test_web_stream.py), and notifies are handed over in the order the test chooses, which
PostgreSQL's timing would not let a test pin down."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from twisted.internet.task import Clock

from web import live as live_module
from web.live import LiveReads
from web.queries import DisplayRead

AT = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


class CommittedReads:
    """The reads other transactions have committed, and the live feed's queries over them."""

    def __init__(self) -> None:
        self.rows: dict[int, DisplayRead] = {}
        self.rows_fetched_by_id = 0
        self.id_lists = 0

    def commit(self, *ids: int) -> None:
        for read_id in ids:
            self.rows[read_id] = DisplayRead(read_id, 1, str(read_id), "finish", "09:00:00.00", AT, 1, "r", 1,
                                             None, None)

    async def highest_read_id(self, database) -> int:
        return max(self.rows, default=0)

    async def reads_after(self, database, after_id: int, limit: int = 1000) -> list[DisplayRead]:
        return [self.rows[i] for i in sorted(self.rows) if i > after_id][:limit]

    async def read_ids_between(self, database, low_id: int, high_id: int, limit: int = 10_000) -> list[int]:
        self.id_lists += 1
        return [i for i in sorted(self.rows) if low_id < i <= high_id][:limit]

    async def reads_with_ids(self, database, ids) -> list[DisplayRead]:
        self.rows_fetched_by_id += len(ids)
        return [self.rows[i] for i in sorted(ids)]


@pytest.fixture
def committed(monkeypatch) -> CommittedReads:
    table = CommittedReads()
    for name in ("highest_read_id", "reads_after", "read_ids_between", "reads_with_ids"):
        monkeypatch.setattr(live_module.queries, name, getattr(table, name))
    return table


def watching(committed: CommittedReads) -> tuple[LiveReads, list[int]]:
    live = LiveReads(SimpleNamespace(reactor=None, connected=True), reactor=Clock())
    delivered: list[int] = []
    live.subscribe(lambda reads: delivered.extend(read.id for read in reads))
    live.last_id = max(committed.rows, default=0)
    return live, delivered


def test_a_late_statement_whose_first_and_last_ids_went_out_with_others_still_delivers_the_ids_between(committed):
    """Two collectors' statements ran at once and interleaved their ids: X took 3, 5 and 7, Y
    took 2 and 4, and a third read, 6, committed first. Y commits, then X. The fetch for Y's
    late range already sees X's 3, the fetch above the last id sees X's 7: when X's notify
    comes, its lowest and highest ids are both delivered, and 5 is not."""
    committed.commit(1)
    live, delivered = watching(committed)
    committed.commit(6)
    live._notified("6:6")
    assert delivered == [6]
    committed.commit(2, 4)  # Y
    committed.commit(3, 5, 7)  # X, before the feed hears of Y
    live._notified("2:4")
    assert sorted(delivered) == [2, 3, 4, 6, 7]  # 5 is not in Y's range and below the last id
    live._notified("3:7")
    assert sorted(delivered) == [2, 3, 4, 5, 6, 7]
    assert len(delivered) == len(set(delivered))


def test_a_notify_for_reads_already_delivered_asks_the_database_nothing(committed):
    committed.commit(1)
    live, delivered = watching(committed)
    committed.commit(2, 3, 4)
    live._notified("2:3")  # the fetch above the last id takes 4 too, committed meanwhile
    assert delivered == [2, 3, 4]
    live._notified("4:4")  # late by the time it is heard: every id in its range went out
    assert delivered == [2, 3, 4]
    assert committed.rows_fetched_by_id == 0 and committed.id_lists == 0  # not even the ids were asked for
