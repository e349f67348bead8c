"""Raw data retention: reads, rejected lines and old connection records past their days go, in small bites.

One ``DELETE`` of a month of reads used to hold its row locks and its transaction for as long
as it took, and keep the store's writer waiting for a pooled connection meanwhile. Here every
statement removes at most ``batch_size`` rows (each its own short transaction: txpostgres
connections are autocommit), and the work pauses on the injected clock between statements so
the collector's own writes go first. The cut-off is fixed when a run starts, so a run ends even
while reads keep arriving. Sessions, events, rosters and resume watermarks are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from chronotrack.storage.database import Database

log = Logger()

BATCH_SIZE = 5_000
BATCH_PAUSE = 0.01  # seconds between two batches: the reactor serves controllers and pages meanwhile

# Each table in the order it is cleared, with the rows that have expired. A connection record is
# kept while a read that stays points at it (its reads carry its peer and greeting); reads past
# the cut-off are gone by the time connections are cleared, so a dry run counts the same rows.
_EXPIRED = {
    "timing_reads": "received_at < %(cutoff)s",
    "rejected_lines": "received_at < %(cutoff)s",
    "controller_connections": ("connected_at < %(cutoff)s AND NOT EXISTS (SELECT 1 FROM timing_reads r"
                               " WHERE r.connection_id = controller_connections.id"
                               " AND r.received_at >= %(cutoff)s)"),
}
TABLES = tuple(_EXPIRED)
# The oldest first, along the table's index on the time column (timing_reads_by_received,
# rejected_lines_by_received), so a batch reads only the rows it removes.
_ORDER = {"timing_reads": "received_at", "rejected_lines": "received_at", "controller_connections": "id"}


@dataclass
class RetentionReport:
    """What a run removed (or, in a dry run, would remove), per table."""

    days: int
    cutoff: datetime
    removed: dict[str, int]
    batches: int = 0
    dry_run: bool = False
    complete: bool = True  # False when told to stop before the end

    @property
    def reads(self) -> int:
        return self.removed.get("timing_reads", 0)


async def cutoff_for(database: Database, days: int) -> datetime:
    """The database's own now() minus ``days``: one clock for received_at and the cut-off."""
    rows = await database.run_query("SELECT now() - make_interval(days => %s)", (days,))
    return rows[0][0]


async def count_expired(database: Database, days: int) -> RetentionReport:
    """What ``delete_expired`` would remove now: counts only, nothing is touched."""
    cutoff = await cutoff_for(database, days)
    removed = {}
    for table, condition in _EXPIRED.items():
        rows = await database.run_query(f"SELECT count(*) FROM {table} WHERE {condition}", {"cutoff": cutoff})
        removed[table] = rows[0][0]
    return RetentionReport(days, cutoff, removed, dry_run=True)


async def delete_expired(database: Database, days: int, clock: IReactorTime, batch_size: int = BATCH_SIZE,
                         pause: float = BATCH_PAUSE,
                         keep_going: Callable[[], bool] = lambda: True) -> RetentionReport:
    """Remove what expired ``days`` ago, ``batch_size`` rows per statement, pausing ``pause`` between them."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = await cutoff_for(database, days)
    report = RetentionReport(days, cutoff, {table: 0 for table in TABLES})
    for table, condition in _EXPIRED.items():
        # ARRAY(...) is computed once, then rows are found by primary key: with "id IN (SELECT ...)"
        # the planner hash-joins the batch against a scan of the whole table, every batch.
        statement = (f"WITH gone AS (DELETE FROM {table} WHERE id = ANY(ARRAY("
                     f"SELECT id FROM {table} WHERE {condition} ORDER BY {_ORDER[table]} LIMIT %(limit)s))"
                     f" RETURNING 1) SELECT count(*) FROM gone")
        while True:
            if not keep_going():
                report.complete = False
                return report
            rows = await database.run_query(statement, {"cutoff": cutoff, "limit": batch_size})
            count = rows[0][0]
            report.batches += 1
            report.removed[table] += count
            if count < batch_size:
                break
            await deferLater(clock, pause, lambda: None)
    return report


def log_report(report: RetentionReport) -> None:
    if any(report.removed.values()):
        log.info("retention: deleted {reads} reads, {rejected} rejected lines and {connections} connection "
                 "records older than {days} days in {batches} batches",
                 reads=report.reads, rejected=report.removed["rejected_lines"],
                 connections=report.removed["controller_connections"], days=report.days, batches=report.batches)
