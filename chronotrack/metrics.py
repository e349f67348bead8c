"""Prometheus metrics for the collector, served at ``/metrics`` on the status port.

The counters already kept for ``/status`` (store, factory, line guard, admission,
journal) are read at scrape time by a custom collector: nothing on the read path is
instrumented line by line. The only things observed as they happen are the two
histograms, once per database batch.

The metrics are rendered on the reactor thread (``generate_latest`` over a registry of
our own): ``prometheus_client.twisted.MetricsResource`` would run the collection in a
thread pool, where it would read the reactor's live dicts and sets while they change.
What needs I/O (a database round trip, the journal's size on disk) is fetched first,
without blocking, and the collector reads that snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

# The classic text format, which generate_latest writes and every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DATABASE_CHECK_TIMEOUT = 2.0  # seconds a scrape waits for the database's answer

# A batch holds 1..batch-size reads (500 by default).
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
FLUSH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def directory_size(directory: Path) -> int:
    """Bytes of the regular files directly in ``directory`` (0 when it is missing)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        return 0
    return total


@dataclass
class Probes:
    """What a scrape fetched with I/O before rendering."""

    database_up: bool = False
    journal_bytes: int = 0


class CollectorMetrics:
    """The collector's registry: batch histograms plus the figures read at scrape time.

    ``stream_clients`` is set by whoever runs the web layer in this process; left None
    (the web runs elsewhere, or not at all) the gauge is absent.
    """

    def __init__(self, collector: Any, process_metrics: bool = True) -> None:
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.batch_size = Histogram(
            "chronotrack_database_batch_reads",
            "Reads sent to PostgreSQL in one batch (one INSERT), observed once per batch.",
            buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self.flush_seconds = Histogram(
            "chronotrack_database_flush_seconds",
            "Seconds from sending a batch of reads to PostgreSQL to its commit.",
            buckets=FLUSH_SECONDS_BUCKETS, registry=self.registry)
        self.stream_clients: Callable[[], int] | None = None
        self.probes = Probes()
        self.registry.register(_FiguresCollector(self))
        if process_metrics:
            ProcessCollector(namespace="", registry=self.registry)

    def observe_batch(self, reads: int, seconds: float) -> None:
        """Called by the store once per batch written."""
        self.batch_size.observe(reads)
        self.flush_seconds.observe(max(0.0, seconds))

    async def render(self, reactor) -> bytes:
        """Fetch the probes without blocking the reactor, then render the text format."""
        self.probes = Probes(database_up=await self._database_up(reactor),
                             journal_bytes=await self._journal_bytes(reactor))
        return generate_latest(self.registry)

    def _database_up(self, reactor) -> Deferred[bool]:
        database = self.collector.database_service.database
        outcome: Deferred[bool] = Deferred()
        if database is None:
            outcome.callback(False)
            return outcome
        timer = reactor.callLater(DATABASE_CHECK_TIMEOUT, outcome.callback, False)

        def answered(up) -> None:
            if not outcome.called:
                timer.cancel()
                outcome.callback(bool(up))

        database.check().addCallbacks(answered, lambda failure: answered(False))
        return outcome

    def _journal_bytes(self, reactor) -> Deferred[int]:
        journal = self.collector.store.journal
        if journal is None:
            outcome: Deferred[int] = Deferred()
            outcome.callback(0)
            return outcome
        return deferToThreadPool(reactor, reactor.getThreadPool(), directory_size, journal.directory)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _FiguresCollector:
    """Reads the collector's existing counters; runs on the reactor thread (see module doc)."""

    def __init__(self, metrics: CollectorMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        collector = self.metrics.collector
        store, factory = collector.store, collector.factory
        figures = store.figures()
        rejections = factory.rejections
        yield _gauge("chronotrack_controllers_connected",
                     "CTP01 controller connections open now.", len(factory.open_connections))
        yield _counter("chronotrack_reads_received_total",
                       "Tag reads received and journaled since the collector started.", figures["reads_received"])
        yield _counter("chronotrack_reads_stored_total",
                       "Tag reads newly stored in PostgreSQL since the collector started.",
                       figures["reads_stored"])
        yield _counter("chronotrack_reads_duplicate_total",
                       "Tag reads skipped because they were already stored (re-sent or recovered).",
                       figures["duplicates_skipped"])
        yield _counter("chronotrack_reads_set_aside_total",
                       "Tag reads PostgreSQL refused outright, kept as rejected lines.", figures["reads_set_aside"])
        yield _counter("chronotrack_reads_clock_suspect_total",
                       "Tag reads stored with a time far from the server clock (flagged clock_suspect).",
                       rejections.reads_clock_suspect)
        rejected = CounterMetricFamily("chronotrack_lines_rejected_total",
                                       "Lines from controllers rejected, by reason.", labels=["reason"])
        for reason, count in sorted(rejections.by_kind.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield _counter("chronotrack_rejected_lines_not_stored_total",
                       "Rejected lines only counted, over the budget of lines kept in rejected_lines.",
                       rejections.not_stored)
        yield _counter("chronotrack_authentication_failures_total",
                       "Failed CTP01 authorize attempts (wrong or unknown login, data before authorizing).",
                       factory.authentication_failures)
        refused = CounterMetricFamily("chronotrack_connections_refused_total",
                                      "CTP01 connections closed before reading anything, by reason.",
                                      labels=["reason"])
        for reason, count in sorted(factory.admission.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        yield _counter("chronotrack_connections_closed_for_garbage_total",
                       "CTP01 connections closed because they sent mostly rejected lines.",
                       rejections.closed_for_garbage)
        probes = self.metrics.probes
        yield _gauge("chronotrack_database_up",
                     "1 when PostgreSQL answered a query at this scrape, else 0.", int(probes.database_up))
        yield _gauge("chronotrack_schema_ready",
                     "1 once the database schema is up to date, else 0.",
                     int(bool(collector.database_service.schema_ready)))
        yield _gauge("chronotrack_reads_waiting",
                     "Tag reads received but not yet stored in PostgreSQL.", figures["reads_waiting"])
        yield _gauge("chronotrack_controllers_paused",
                     "1 while controllers are paused because too many reads wait for the database.",
                     int(bool(figures["controllers_paused"])))
        yield _gauge("chronotrack_journal_pending_reads",
                     "Tag reads in the on-disk journal not yet known to be stored.", figures["journal_pending"])
        yield _gauge("chronotrack_journal_size_bytes",
                     "Bytes of the on-disk read journal's files.", probes.journal_bytes)
        if self.metrics.stream_clients is not None:
            yield _gauge("chronotrack_stream_clients",
                         "Live-display streams (/stream) open in this process's web layer.",
                         self.metrics.stream_clients())
