"""The real ReadStore: reads go to the journal, then to PostgreSQL in batches.

A read's path through here:

1. ``record_read`` stamps it and adds it to the incoming batch.
2. After ``batch_delay`` (or at ``batch_size`` reads) the batch is appended to the
   on-disk journal with one fsync. Only then does the read count as received.
3. Journaled reads wait, in order, in the backlog; one writer sends up to ``batch_size``
   of them to PostgreSQL in a single call of ``store_timing_reads`` (``read_statements``)
   that skips reads already stored (re-sent by a controller, or recovered from the journal).
   In a burst the next statement is sent while that one is written, and waits in PostgreSQL
   for it to commit (``_send_ahead``, 0020): still one statement written at a time, in order.
4. Once stored, their journal entries are released.

While PostgreSQL is down the backlog grows; past ``backlog_limit`` the controllers are
paused (they keep their reads) until it drains. Nothing is dropped.

The controllers are also paused, briefly, while more than ``journal_queue_limit`` reads
wait for the journal's disk: controllers sending as fast as they can are parsed faster
than the journal makes reads durable, and every read not yet journaled is a Python object
in memory, beyond the reach of ``backlog_in_memory``. A paused controller's reads wait in
its socket (and in the controller) instead, and it is read again once the journal has
caught up with half of them.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

import psycopg2
from twisted.internet.defer import (Deferred, FirstError, ensureDeferred, gatherResults, inlineCallbacks,
                                    succeed)
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres.reconnection import ConnectionDead
from txpostgres.txpostgres import RollbackFailed

from chronotrack.storage import retention, watermarks
from chronotrack.storage.pending_numbers import PendingNumbers
from chronotrack.storage.journal import JournalPosition, ReadJournal
from chronotrack.storage.journal_lines import JournalEntry
from chronotrack.storage.read_statements import (DEFAULT_CLOCK_TOLERANCE, Committed, PreparedBatch, event_of,
                                                 fits_one_transaction, insert_reads, prepare_batch,
                                                 write_prepared)
from chronotrack.storage.writer_turn import WriterTurn
from chronotrack.reads import ReadSource, TagRead

log = Logger()

RETRY_DELAY = 1.0  # seconds before retrying a failed write, whatever the failure
SHUTDOWN_DRAIN_TIMEOUT = 10.0
RESUME_WAIT = 5.0  # seconds a resume waits for the database before answering from memory
MAX_QUEUED_FACTS = 10_000  # rejected lines etc. held while the database is down

_RECOVERED = "recovered"  # journal position of entries recovered at start-up

DEFAULT_WRITE_BATCH_SIZE = 5000
DEFAULT_BACKLOG_IN_MEMORY = 20_000
# Reads received but not yet journaled, in journal batches (batch_size each), past which the
# controllers are paused until the journal catches up; never fewer than MIN_JOURNAL_QUEUE, so
# tiny batches do not pause and resume every controller every few reads.
JOURNAL_QUEUE_BATCHES = 8
MIN_JOURNAL_QUEUE = 1000


def default_journal_queue_limit(batch_size: int) -> int:
    """Received reads not yet journaled past which the controllers are paused (see the module docstring)."""
    return max(JOURNAL_QUEUE_BATCHES * batch_size, MIN_JOURNAL_QUEUE)


# The session of a source's event (opened when there is none): see 0002_partners.sql.
_OPEN_SESSION = "SELECT session_id, partner_id FROM open_timing_session(%s, %s, %s)"
_DEFAULT_PARTNER = "(SELECT id FROM timing_partners WHERE slug = 'default')"


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching text that starts with ``prefix`` literally."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def is_connection_failure(failure) -> bool:
    return bool(failure.check(psycopg2.OperationalError, psycopg2.InterfaceError,
                              ConnectionDead, RollbackFailed))


@dataclass(slots=True)
class _Waiting:
    """Reads journaled by one append (or recovered together), waiting for the database together.

    One object per batch, not per read: at tens of thousands of reads a second the
    per-read bookkeeping cost more than the insert.
    """

    entries: list[JournalEntry] | None  # None: spilled, only in the journal until read back
    position: JournalPosition | str | None
    count: int
    loading: bool = False  # being read back from the journal
    load_waiters: list[Deferred] = field(default_factory=list)


@dataclass(slots=True)
class _SentAhead:
    """The statement sent while the one before it is still being written (see _send_ahead)."""

    waiting: list[_Waiting]
    entries: list[JournalEntry]
    outcome: tuple[int, int] | Failure | None = None  # None until PostgreSQL answers
    on_outcome: Callable[[tuple[int, int] | Failure], Any] | None = None


class PostgresReadStore:
    """ReadStore on PostgreSQL with a journal in front; see the module docstring."""

    def __init__(self, reactor, database_source, journal: ReadJournal | None,
                 batch_size: int = 500, batch_delay: float = 0.005, backlog_limit: int = 200_000,
                 write_batch_size: int = DEFAULT_WRITE_BATCH_SIZE,
                 backlog_in_memory: int = DEFAULT_BACKLOG_IN_MEMORY,
                 on_backlog_full: Callable[[], Any] | None = None,
                 on_backlog_drained: Callable[[], Any] | None = None,
                 clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
                 resume_wait: float = RESUME_WAIT, journal_queue_limit: int | None = None,
                 send_ahead: bool = True) -> None:
        self.reactor = reactor
        self.database_source = database_source
        self.journal = journal
        self.batch_size = batch_size
        # A backlog is written in statements of up to this many reads (whole journal
        # batches, at least one): one round trip and one commit per statement, and
        # statement-level triggers on timing_reads fire once per statement.
        self.write_batch_size = max(write_batch_size, 1)
        # Journaled reads beyond this many wait in the journal only (a burst, a database
        # outage), and are read back when the writer reaches them: memory stays bounded.
        self.backlog_in_memory = backlog_in_memory
        self.batch_delay = batch_delay
        self.backlog_limit = backlog_limit
        # Received reads not yet journaled (incoming and appends in flight) beyond which the
        # controllers are paused: see the module docstring.
        self.journal_queue_limit = max(journal_queue_limit or default_journal_queue_limit(batch_size), 1)
        self.on_backlog_full = on_backlog_full
        self.on_backlog_drained = on_backlog_drained
        self.clock_tolerance = clock_tolerance
        self.resume_wait = resume_wait
        # Told (reads, seconds) once per batch PostgreSQL committed: the metrics' histograms.
        self.on_batch_written: Callable[[int, float], Any] | None = None

        self._incoming: list[JournalEntry] = []
        self._incoming_kept: Deferred | None = None  # fires once the incoming batch is journaled
        self._flush_call = None
        self._journal_writes_in_flight = 0
        self._reads_being_journaled = 0  # in the appends in flight
        self._backlog: deque[_Waiting] = deque()
        self._backlog_reads = 0  # reads in self._backlog
        self._reads_in_memory = 0  # of those, the ones not spilled to the journal
        self._writing = False
        # The next statement, built while the current one is in PostgreSQL: (its items with
        # their entries lists, the batch); see _prepare_next.
        self._prepared: tuple[tuple[tuple[_Waiting, list[JournalEntry] | None], ...], PreparedBatch] | None = None
        self._in_flight = 0  # backlog items in the statements PostgreSQL has now
        # The next statement goes out while the current one is written, and waits in PostgreSQL
        # for it to commit (0020): the database never waits for the collector between two.
        self.send_ahead = send_ahead
        self._ahead: _SentAhead | None = None
        self._turn = WriterTurn(reactor, self._writable_database, lambda: bool(self._in_flight), self._send_ahead)
        self._stored_before_resend = 0  # reads to be written again that are counted as stored
        self._retry_call = None
        self._database_ready = False
        self._backlog_full = False
        self._journal_behind = False  # paused for the journal (see the module docstring)
        self._controllers_paused = False  # for either reason
        self.pauses_for_journal = 0
        self.reads_awaiting_journal_peak = 0  # the most received reads not yet journaled at once
        # (partner, stream, location) -> sequence numbers journaled here, not yet stored
        self._pending: dict[tuple[int | None, str, str], PendingNumbers] = {}
        self._queued_facts: deque[tuple[str, tuple]] = deque(maxlen=MAX_QUEUED_FACTS)
        self._journal_open = journal is None
        self._drained_waiters: list[Deferred] = []
        self._writable_waiters: list[tuple[Deferred, Any]] = []

        self.reads_received = 0
        self.reads_stored = 0
        self.duplicates_skipped = 0
        self.reads_set_aside = 0
        self.statements_sent_ahead = 0
        self.current_session_id: int | None = None

    # -- life cycle -------------------------------------------------------

    @inlineCallbacks
    def start(self):
        """Recover the journal (its reads go first), then write as soon as the database is ready."""
        if self.journal is not None:
            recovered = yield self.journal.open()
            if recovered:
                log.info("recovered {count} reads from the journal; writing them first", count=len(recovered))
            for entry in recovered:
                self._remember_pending(entry)
            for start in range(0, len(recovered), self.batch_size):
                chunk = recovered[start:start + self.batch_size]
                self._queue(_Waiting(chunk, _RECOVERED, len(chunk)))
            self._journal_open = True
            self._flush_incoming()
        self.database_source.when_schema_ready().addCallback(self._on_database_ready)

    def _on_database_ready(self, database) -> None:
        self._database_ready = True
        database.on_connect(self._on_reconnect)
        newest = database.run_query("SELECT max(id) FROM timing_sessions WHERE status = 'active'")
        newest.addCallback(self._session_known)
        newest.addErrback(lambda failure: log.failure("could not read the active sessions", failure))
        self._on_reconnect()

    def _session_known(self, rows: list[tuple]) -> None:
        if self.current_session_id is None:
            self.current_session_id = rows[0][0]

    def _on_reconnect(self) -> None:
        self._replay_queued_facts()
        self._wake_writable_waiters()
        self._write_next()

    def _database_within(self, seconds: float) -> Deferred[None]:
        """Fires once the database can be written to, or after ``seconds``, whichever is first."""
        waiter: Deferred[None] = Deferred()
        timer = self.reactor.callLater(seconds, lambda: waiter.called or waiter.callback(None))
        self._writable_waiters.append((waiter, timer))
        return waiter

    def _wake_writable_waiters(self) -> None:
        waiters, self._writable_waiters = self._writable_waiters, []
        for waiter, timer in waiters:
            if timer.active():
                timer.cancel()
            if not waiter.called:
                waiter.callback(None)

    @inlineCallbacks
    def stop(self):
        """Flush what is pending to the journal and, if possible, to the database."""
        self._wake_writable_waiters()
        self._flush_incoming()
        while self._journal_writes_in_flight:
            yield deferLater(self.reactor, 0.01, lambda: None)
        if self._backlog and self._can_write():
            drained = Deferred()
            self._drained_waiters.append(drained)
            timeout = self.reactor.callLater(SHUTDOWN_DRAIN_TIMEOUT, drained.callback, None)
            self._write_next()
            yield drained
            if timeout.active():
                timeout.cancel()
        if self._backlog:
            log.warn("stopping with {count} reads not yet in the database; they stay in the journal "
                     "and are written at the next start", count=self._backlog_reads)
        log.info("store stopped: {received} reads received since start, {stored} new in the database, "
                 "{skipped} already there", received=self.reads_received, stored=self.reads_stored,
                 skipped=self.duplicates_skipped)
        for call in (self._flush_call, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        if self.journal is not None:
            yield self.journal.close()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.reactor.seconds(), timezone.utc)

    # -- the read path -----------------------------------------------------

    def record_read(self, read: TagRead, source: ReadSource) -> Deferred[None]:
        """Fires once the read is journaled. Reads journaled together share one Deferred
        (a Deferred per read was a fifth of the cost of a read), so a callback must not
        change its result."""
        if read.received_at is None:
            read = replace(read, received_at=self._now())
        kept = self._incoming_kept
        if kept is None:
            kept = self._incoming_kept = Deferred()
        self._incoming.append(JournalEntry(read, source))
        self.reads_received += 1
        if len(self._incoming) >= self.batch_size:
            self._flush_incoming()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(self.batch_delay, self._flush_incoming)
        self._check_backlog()
        return kept

    def _flush_incoming(self) -> None:
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if not self._journal_open:
            return  # start() flushes once the journal is recovered and open
        batch, self._incoming = self._incoming, []
        kept, self._incoming_kept = self._incoming_kept, None
        if not batch:
            return
        self._reads_being_journaled += len(batch)
        if self.journal is None:
            self._journaled(None, batch, kept)
            return
        self._journal_writes_in_flight += 1
        d = self.journal.append(batch)
        d.addCallbacks(self._journaled, self._journal_failed, callbackArgs=(batch, kept),
                       errbackArgs=(batch, kept))

    def _journaled(self, position: JournalPosition | None, batch: list[JournalEntry],
                   kept: Deferred | None) -> None:
        if self.journal is not None:
            self._journal_writes_in_flight -= 1
        self._reads_being_journaled -= len(batch)
        for entry in batch:
            self._remember_pending(entry)
        self._queue(_Waiting(batch, position, len(batch)))
        if kept is not None:
            kept.callback(None)
        self._check_backlog()
        self._write_next()
        if self._in_flight:
            self._send_ahead()  # this batch may have completed the next statement

    def _journal_failed(self, failure, batch: list[JournalEntry], kept: Deferred | None) -> None:
        # The disk refused (full, read-only...). Keep the reads in memory: losing them
        # would be worse than the risk of losing them in a crash before they are stored.
        log.failure("journal write failed; {count} reads kept in memory only until stored",
                    failure, count=len(batch))
        self._journaled(None, batch, kept)

    def _queue(self, waiting: _Waiting) -> None:
        self._backlog.append(waiting)
        self._backlog_reads += waiting.count
        if (isinstance(waiting.position, JournalPosition) and self.journal is not None
                and self._reads_in_memory + waiting.count > self.backlog_in_memory):
            waiting.entries = None  # safe on disk; read back when the writer gets to it
        else:
            self._reads_in_memory += waiting.count

    @staticmethod
    def _pending_key(entry: JournalEntry) -> tuple[int | None, str, str]:
        return entry.source.partner_id, entry.source.stream_id, entry.read.location_name

    def _remember_pending(self, entry: JournalEntry) -> None:
        key = self._pending_key(entry)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = PendingNumbers()
        pending.add(entry.read.sequence_number)

    def _forget_pending(self, entry: JournalEntry) -> None:
        key = self._pending_key(entry)
        pending = self._pending.get(key)
        if pending is not None:
            pending.discard(entry.read.sequence_number)
            if not pending:
                del self._pending[key]

    def _can_write(self) -> bool:
        database = self.database_source.database
        return self._database_ready and database is not None and database.connected

    def _writable_database(self):
        """The Database, if it can be written to now; else None."""
        return self.database_source.database if self._can_write() else None

    def _write_next(self) -> None:
        if self._writing:
            return
        if not self._backlog:
            self._notify_drained()
            return
        if not self._can_write():
            return
        self._writing = True
        waiting = [self._backlog[0]]
        count = waiting[0].count
        for more in islice(self._backlog, 1, None):
            if count + more.count > self.write_batch_size:
                break
            waiting.append(more)
            count += more.count
        if any(item.entries is None for item in waiting):
            self._read_back(waiting)
            return
        entries = [entry for item in waiting for entry in item.entries]
        batch = self._take_prepared(waiting)
        sent_at = self.reactor.seconds()
        if batch is None:
            try:
                batch = prepare_batch(entries)
            except Exception:  # noqa: BLE001 - a value the arrays cannot take: a refused batch
                batch = None
        writer = self._turn.key if self.send_ahead else None
        committed = Committed()
        if batch is not None:
            d = write_prepared(self.database_source.database, batch, self.clock_tolerance, writer,
                               committed=committed)
        else:  # prepared in the interaction, so the failure goes where a refused batch goes
            d = self.database_source.database.run_interaction(insert_reads, entries, self.clock_tolerance, writer)
        d.addCallbacks(self._written, self._write_failed, callbackArgs=(waiting, entries, sent_at),
                       errbackArgs=(waiting, entries, committed))
        self._in_flight = len(waiting)
        self._turn.begin()
        self._send_ahead()

    def _send_ahead(self) -> None:
        """Send the next statement now if it is complete and in memory, while PostgreSQL still
        writes the current one: the server parses it meanwhile and starts it as soon as the
        current one commits (it waits for the store's lock, 0020), instead of waiting for the
        collector to hear of the commit and send it. At most one statement is sent ahead, and
        answers are handled in the order the statements were sent (_written, _write_failed)."""
        self._prefetch(self._in_flight)
        if self._prepared is None:
            self._prepare_next(self._in_flight)
        if not self.send_ahead or self._ahead is not None:
            return
        ready = self._ready_to_send_ahead()
        if ready is None:
            return
        if not self._turn.taken:
            self._turn.check()  # then this again
            return
        waiting, batch = ready
        self._prepared = None
        ahead = _SentAhead(waiting, [entry for item in waiting for entry in item.entries])
        d = write_prepared(self.database_source.database, batch, self.clock_tolerance, self._turn.key,
                           ahead=True)
        d.addBoth(self._ahead_answered, ahead)
        self._ahead = ahead
        self._in_flight += len(waiting)
        self.statements_sent_ahead += 1

    def _ready_to_send_ahead(self) -> tuple[list[_Waiting], PreparedBatch] | None:
        """The statement after those in flight, if it is prepared and written in one transaction
        (several would let another statement in between theirs)."""
        ready = self._prepared_after_in_flight()
        if ready is None and self._prepared is not None:  # prepared before the backlog moved on
            self._prepare_next(self._in_flight)
            ready = self._prepared_after_in_flight()
        if ready is None or not fits_one_transaction(ready[1]):
            return None
        return ready

    def _prepared_after_in_flight(self) -> tuple[list[_Waiting], PreparedBatch] | None:
        """The prepared statement with its items, if they are the ones right after those in flight."""
        if self._prepared is None:
            return None
        waiting = list(islice(self._backlog, self._in_flight, self._in_flight + len(self._prepared[0])))
        batch = self._prepared_for(waiting)
        return None if batch is None else (waiting, batch)

    @staticmethod
    def _ahead_answered(outcome: tuple[int, int] | Failure, ahead: _SentAhead) -> None:
        ahead.outcome = outcome
        if ahead.on_outcome is not None:
            ahead.on_outcome(outcome)

    def _next_statement(self, start: int) -> list[_Waiting]:
        """The backlog items the statement after the first ``start`` items will write."""
        waiting: list[_Waiting] = []
        count = 0
        for item in islice(self._backlog, start, None):
            if waiting and count + item.count > self.write_batch_size:
                break
            waiting.append(item)
            count += item.count
        return waiting

    def _prepare_next(self, in_flight: int) -> None:
        """While PostgreSQL writes this statement, build the next one's arrays, so the database
        gets it as soon as this one commits. Used only if the next statement is made of exactly
        these items, unchanged (see _take_prepared)."""
        self._prepared = None
        waiting = self._next_statement(in_flight)
        if not waiting or any(item.entries is None for item in waiting):
            return
        if sum(item.count for item in waiting) < self.write_batch_size and len(self._backlog) == in_flight + len(waiting):
            return  # not full yet: more reads may join it before it is written
        try:
            batch = prepare_batch([entry for item in waiting for entry in item.entries])
        except Exception:  # noqa: BLE001 - the writer prepares it again and handles the failure
            return
        self._prepared = (tuple((item, item.entries) for item in waiting), batch)

    def _take_prepared(self, waiting: list[_Waiting]) -> PreparedBatch | None:
        batch = self._prepared_for(waiting)
        self._prepared = None
        return batch

    def _prepared_for(self, waiting: list[_Waiting]) -> PreparedBatch | None:
        """The prepared statement, if it was built from exactly these items, unchanged."""
        if self._prepared is None:
            return None
        items, batch = self._prepared
        if len(items) != len(waiting) or any(item is not chosen or entries is not chosen.entries
                                             for (item, entries), chosen in zip(items, waiting)):
            return None
        return batch

    def _prefetch(self, in_flight: int) -> None:
        """While the database writes, read back the spilled batches of the next statement, so it
        does not wait for the disk (at most ``write_batch_size`` more reads in memory)."""
        count = 0
        for item in islice(self._backlog, in_flight, None):
            count += item.count
            if count > self.write_batch_size:
                break
            if item.entries is None:
                self._start_loading(item)

    def _start_loading(self, item: _Waiting) -> None:
        if item.loading:
            return
        item.loading = True

        def done(result: list[JournalEntry] | Failure) -> None:
            item.loading = False
            waiters, item.load_waiters = item.load_waiters, []
            if isinstance(result, Failure):
                if not waiters:  # a prefetch: the writer will try again when it gets there
                    log.warn("reading waiting reads back from the journal failed ({reason}); will retry",
                             reason=result.getErrorMessage())
                for waiter in waiters:
                    waiter.errback(result)
                return
            item.entries = result
            # Lines recovery would skip as damaged are skipped here too (the journal logs them).
            self._backlog_reads += len(result) - item.count
            item.count = len(result)
            self._reads_in_memory += item.count
            for waiter in waiters:
                waiter.callback(None)
            if self._in_flight:
                self._send_ahead()  # the next statement may be complete now

        self.journal.read_back(item.position).addBoth(done)

    def _when_loaded(self, item: _Waiting) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        item.load_waiters.append(waiter)
        self._start_loading(item)
        return waiter

    def _read_back(self, waiting: list[_Waiting]) -> None:
        """Bring spilled batches back from the journal, then write them (self._writing is held)."""
        spilled = [item for item in waiting if item.entries is None]
        d = gatherResults([self._when_loaded(item) for item in spilled], consumeErrors=True)

        def loaded(_: object) -> None:
            self._writing = False
            self._write_next()

        def failed(failure: Failure) -> None:
            if failure.check(FirstError):
                failure = failure.value.subFailure
            log.failure("cannot read {count} waiting reads back from the journal; retrying (they stay "
                        "safe in the journal)", failure, count=sum(item.count for item in spilled))
            self._writing = False
            self._retry_later()

        d.addCallbacks(loaded, failed)

    def _count_written(self, session_id: int, inserted: int, attempted: int) -> None:
        self.current_session_id = session_id
        self.reads_stored += inserted
        skipped = attempted - inserted
        counted_already = min(skipped, self._stored_before_resend)
        self._stored_before_resend -= counted_already
        self.duplicates_skipped += skipped - counted_already

    def _count_stored_before_resend(self, session_id: int, inserted: int) -> None:
        """Reads a failed write stored: counted now, not as duplicates when the write is done again."""
        self._count_written(session_id, inserted, attempted=inserted)
        self._stored_before_resend += inserted

    def _written(self, result: tuple[int, int], waiting: list[_Waiting], entries: list[JournalEntry],
                 sent_at: float) -> None:
        self._in_flight = 0
        self._count_written(*result, attempted=len(entries))
        now = self.reactor.seconds()
        if self.on_batch_written is not None:
            self.on_batch_written(len(entries), now - sent_at)
        self._take_off_backlog(waiting)
        self._writing = False
        if self._queued_facts:
            self._replay_queued_facts()
        following, self._ahead = self._ahead, None
        if following is not None:
            # Already in PostgreSQL, and now its turn: it becomes the statement being written,
            # and the one after it is sent ahead.
            self._writing = True
            self._in_flight = len(following.waiting)
            self._turn.begin()
            self._send_ahead()
            self._settle_written(waiting)
            self._check_backlog()
            self._follow(following, now)
        elif self._backlog:
            # The next statement (prepared while this one was written) goes out before the
            # per-read bookkeeping: in a burst PostgreSQL is the slowest part, and it waits
            # for the collector between two statements.
            self._write_next()
            self._settle_written(waiting)
            self._check_backlog()
        else:
            self._settle_written(waiting)
            self._check_backlog()
            self._write_next()  # nothing left: tells whoever waits for the drain

    def _follow(self, statement: _SentAhead, turn_began: float) -> None:
        """Handle the answer to a statement sent ahead, now that those before it are handled;
        its time in the database counts from when its turn began."""
        def answered(outcome: tuple[int, int] | Failure) -> None:
            statement.on_outcome = None
            if isinstance(outcome, Failure):
                self._write_failed(outcome, statement.waiting, statement.entries)
            else:
                self._written(outcome, statement.waiting, statement.entries, turn_began)

        if statement.outcome is None:
            statement.on_outcome = answered
        else:
            answered(statement.outcome)

    def _drop_written(self, waiting: list[_Waiting]) -> None:
        self._take_off_backlog(waiting)
        self._settle_written(waiting)

    def _take_off_backlog(self, waiting: list[_Waiting]) -> None:
        for item in waiting:
            self._backlog.popleft()
            self._backlog_reads -= item.count
            self._reads_in_memory -= item.count

    def _settle_written(self, waiting: list[_Waiting]) -> None:
        """What follows a stored batch: its sequence numbers are no longer pending, and its
        journal entries are released."""
        for item in waiting:
            for entry in item.entries:
                self._forget_pending(entry)
        self._release_journal(waiting)

    def _release_journal(self, written: list[_Waiting]) -> None:
        """Release journal batches all of whose reads are now stored."""
        if self.journal is None:
            return
        still_waiting = self._backlog[0].position if self._backlog else object()
        if any(w.position == _RECOVERED for w in written) and still_waiting != _RECOVERED:
            self.journal.release_recovered()
        done = [w.position for w in written
                if isinstance(w.position, JournalPosition) and w.position != still_waiting]
        if done:
            self.journal.release(done[-1])

    def _write_failed(self, failure, waiting: list[_Waiting], entries: list[JournalEntry],
                      committed: Committed | None = None) -> None:
        following, self._ahead = self._ahead, None
        if following is not None and following.outcome is None:
            # Wait for the statement sent ahead to end (it may still commit) before deciding.
            following.on_outcome = lambda _: self._write_failed(failure, waiting, entries, committed)
            self._ahead = following
            return
        # Reads stored although they are written again: the transactions of this batch that
        # committed before one failed, and a statement sent ahead that committed after this
        # one failed. They are counted as stored now, and not as duplicates when found stored.
        if committed is not None and committed.inserted:
            self._count_stored_before_resend(committed.session_id, committed.inserted)
        if following is not None and not isinstance(following.outcome, Failure):
            self._count_stored_before_resend(*following.outcome)
        self._writing = False
        self._in_flight = 0
        if is_connection_failure(failure) or not self._can_write():
            log.warn("database write of {count} reads failed ({reason}); {backlog} reads wait for the "
                     "database", count=len(entries), reason=failure.getErrorMessage().strip(),
                     backlog=self._backlog_reads)
            self._retry_later()
            return
        if len(entries) > 1:
            # Something in this batch is refused by the database itself: find it by
            # writing the batch one read at a time.
            log.failure("database refused a batch of {count} reads; retrying them one by one",
                        failure, count=len(entries))
            self._write_one_by_one(waiting)
            return
        self._record_set_aside(entries[0], failure)
        self._drop_written(waiting)
        self._write_next()

    @inlineCallbacks
    def _write_one_by_one(self, waiting: list[_Waiting]):
        self._writing = True
        database = self.database_source.database
        for done, item in enumerate(waiting):
            for index, entry in enumerate(item.entries):
                try:
                    session_id, inserted = yield database.run_interaction(insert_reads, [entry],
                                                                          self.clock_tolerance)
                except Exception:  # noqa: BLE001 - each outcome is handled below
                    failure = Failure()
                    if is_connection_failure(failure) or not self._can_write():
                        # Keep only what is not written yet; it is retried as it stands.
                        self._drop_written(waiting[:done])
                        for written in item.entries[:index]:
                            self._forget_pending(written)
                        self._backlog_reads -= index
                        self._reads_in_memory -= index
                        item.entries = item.entries[index:]
                        item.count = len(item.entries)
                        self._writing = False
                        self._retry_later()
                        return
                    self._record_set_aside(entry, failure)
                else:
                    self._count_written(session_id, inserted, attempted=1)
        self._drop_written(waiting)
        self._writing = False
        self._write_next()

    def _record_set_aside(self, entry: JournalEntry, failure) -> None:
        """A read the database refuses outright is kept as a rejected line, not retried forever."""
        self.reads_set_aside += 1
        self.record_rejected_line(entry.read.raw_data,
                                  f"database refused the read: {failure.getErrorMessage().strip()}",
                                  entry.source)

    def _retry_later(self) -> None:
        if self._retry_call is None or not self._retry_call.active():
            self._retry_call = self.reactor.callLater(RETRY_DELAY, self._write_next)

    def _notify_drained(self) -> None:
        waiters, self._drained_waiters = self._drained_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def _check_backlog(self) -> None:
        """Pause the controllers while the database or the journal is too far behind, resume
        them once both have caught up with half of it."""
        unjournaled = len(self._incoming) + self._reads_being_journaled
        waiting = self._backlog_reads + unjournaled
        if not self._backlog_full and waiting >= self.backlog_limit:
            self._backlog_full = True
            log.warn("{count} reads wait for the database: pausing controllers until it catches up",
                     count=waiting)
        elif self._backlog_full and waiting <= self.backlog_limit // 2:
            self._backlog_full = False
            log.info("backlog down to {count} reads: resuming controllers", count=waiting)
        if unjournaled > self.reads_awaiting_journal_peak:
            self.reads_awaiting_journal_peak = unjournaled
        if not self._journal_behind and unjournaled >= self.journal_queue_limit:
            self._journal_behind = True  # routine in a burst: counted, not logged
            self.pauses_for_journal += 1
        elif self._journal_behind and unjournaled <= self.journal_queue_limit // 2:
            self._journal_behind = False
        paused = self._backlog_full or self._journal_behind
        if paused != self._controllers_paused:
            self._controllers_paused = paused
            callback = self.on_backlog_full if paused else self.on_backlog_drained
            if callback:
                callback()

    # -- facts about controllers -------------------------------------------

    def _run_fact(self, kind: str, sql: str, params: tuple, fetch: bool = False) -> Deferred:
        """Run a small statement now, or keep it for when the database is back."""
        if not self._can_write():
            if not fetch:
                self._queued_facts.append((sql, params))
            return succeed(None)
        database = self.database_source.database
        d = database.run_query(sql, params) if fetch else database.run_operation(sql, params)

        def failed(failure):
            if not fetch and is_connection_failure(failure):
                self._queued_facts.append((sql, params))
            else:
                log.failure("could not record {kind}", failure, kind=kind)
            return None

        return d.addErrback(failed)

    def _replay_queued_facts(self) -> None:
        queued, self._queued_facts = list(self._queued_facts), deque(maxlen=MAX_QUEUED_FACTS)
        for sql, params in queued:
            self._run_fact("queued statement", sql, params)

    def record_rejected_line(self, line: str, reason: str, source: ReadSource) -> Deferred[None]:
        partner, event_id, event_name = event_of(source)
        return self._run_fact(
            "rejected line",
            "INSERT INTO rejected_lines (timing_partner_id, session_id, peer, stream_id, line, reason, received_at)"
            f" SELECT partner.id, (SELECT s.id FROM timing_sessions s JOIN timing_events e ON e.id = s.timing_event_id"
            "                      WHERE e.timing_partner_id = partner.id AND s.status = 'active'"
            "                        AND e.event_key = coalesce(nullif(%s, ''), nullif(%s, ''), '')),"
            "        %s, %s, %s, %s, %s"
            f" FROM timing_partners partner WHERE partner.id = coalesce(%s, {_DEFAULT_PARTNER})",
            (event_id, event_name, source.peer, source.stream_id, line, reason, self._now(), partner))

    def record_event_info(self, event_name: str, event_id: str, description: str,
                          source: ReadSource) -> Deferred[None]:
        """Open the event's session now, so it shows before its first read."""
        return self._run_fact("event", "SELECT session_id FROM open_timing_session(%s, %s, %s)",
                              (source.partner_id, event_id, event_name))

    def record_locations(self, locations: list[str], source: ReadSource) -> Deferred[None]:
        if not locations:
            return succeed(None)
        return self._run_fact(
            "locations",
            "INSERT INTO timing_locations (session_id, timing_partner_id, location_name)"
            f" SELECT opened.session_id, opened.partner_id, unnest(%s::text[]) FROM ({_OPEN_SESSION}) opened"
            " ON CONFLICT (session_id, location_name) DO NOTHING",
            (list(locations), *event_of(source)))

    def controller_connected(self, peer: str, greeting: str) -> Deferred[int | None]:
        d = self._run_fact("controller connection",
                           "INSERT INTO controller_connections (peer, greeting) VALUES (%s, %s) RETURNING id",
                           (peer, greeting), fetch=True)
        return d.addCallback(lambda rows: rows[0][0] if rows else None)

    def controller_identified(self, connection_row_id: int | None, stream_id: str,
                              event_name: str | None, partner_id: int | None = None,
                              user_id: str | None = None) -> Deferred[None]:
        if connection_row_id is None:
            return succeed(None)
        return self._run_fact("controller stream",
                              "UPDATE controller_connections SET stream_id = %s, event_name = %s,"
                              f" timing_partner_id = coalesce(%s, {_DEFAULT_PARTNER}), user_id = %s WHERE id = %s",
                              (stream_id, event_name, partner_id, user_id, connection_row_id))

    def controller_disconnected(self, connection_row_id: int | None, reason: str) -> Deferred[None]:
        if connection_row_id is None:
            return succeed(None)
        return self._run_fact("controller disconnect",
                              "UPDATE controller_connections SET disconnected_at = now(),"
                              " disconnect_reason = %s WHERE id = %s",
                              (reason, connection_row_id))

    # -- resuming a controller's stream ------------------------------------

    def resume_points(self, stream_key: str, partner_id: int | None = None) -> Deferred[dict[str, int]]:
        """Per location of the partner's stream, the last sequence number of the unbroken
        run from 1 that is stored or journaled here (see chronotrack.storage.watermarks).

        Only the partner's own reads count, so one partner's client can never move another's
        resume point, and neither a gap nor a spoofed jump moves it past a read not kept. A
        key ending in ``/reader:*`` (a controller without a connection id) matches every
        reader of that event; a location is resumed only when exactly one reader stream has
        it. One indexed lookup in stream_watermarks; timing_reads is not scanned.
        """
        prefix = stream_key[:-1] if stream_key.endswith("/reader:*") else None
        partner = f"timing_partner_id = coalesce(%s, {_DEFAULT_PARTNER})"
        if prefix is None:
            sql = ("SELECT stream_id, location_name, contiguous_through FROM stream_watermarks"
                   f" WHERE {partner} AND stream_id = %s")
            params: tuple = (partner_id, stream_key)
        else:
            sql = ("SELECT stream_id, location_name, contiguous_through FROM stream_watermarks"
                   f" WHERE {partner} AND stream_id LIKE %s")
            params = (partner_id, _like_prefix(prefix))

        def ask() -> Deferred[dict[str, int]]:
            # Taken before the query: a read written meanwhile is then in one or the other.
            pending = self._pending_of(partner_id, stream_key, prefix)
            if not self._can_write():
                log.warn("resuming {stream} from this collector's memory only: the database is not "
                         "reachable", stream=stream_key)
                return succeed(watermarks.resume_points((), pending, prefix))
            d = self.database_source.database.run_query(sql, params)

            def merge(rows):
                return watermarks.resume_points(rows, pending, prefix)

            def database_failed(failure):
                log.warn("resume points from memory only: {reason}", reason=failure.getErrorMessage())
                return watermarks.resume_points((), pending, prefix)

            return d.addCallbacks(merge, database_failed)

        if self._can_write():
            return ask()
        # Starting up, or the database is away for a moment: an answer from memory alone would
        # make the controller replay its whole session, so wait a little for the database first.
        return self._database_within(self.resume_wait).addCallback(lambda _: ask())

    def _pending_of(self, partner_id: int | None, stream_key: str,
                    prefix: str | None) -> dict[tuple[str, str], PendingNumbers]:
        return {(stream, location): numbers.copy()
                for (partner, stream, location), numbers in self._pending.items()
                if partner == partner_id
                and (stream.startswith(prefix) if prefix is not None else stream == stream_key)}

    # -- figures -------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """Counters for /status."""
        database = self.database_source.database
        return {
            "reads_received": self.reads_received,
            "reads_stored": self.reads_stored,
            "duplicates_skipped": self.duplicates_skipped,
            "reads_waiting": self._backlog_reads + len(self._incoming),
            "reads_waiting_in_journal_only": self._backlog_reads - self._reads_in_memory,
            "reads_set_aside": self.reads_set_aside,
            "journal_pending": self.journal.pending_count if self.journal is not None else 0,
            "controllers_paused": self._backlog_full,
            "reads_awaiting_journal": len(self._incoming) + self._reads_being_journaled,
            "reads_awaiting_journal_peak": self.reads_awaiting_journal_peak,
            "pauses_for_journal": self.pauses_for_journal,
            "statements_sent_ahead": self.statements_sent_ahead,
            "database_connected": bool(database is not None and database.connected),
            "current_session": self.current_session_id,
        }

    def memory_figures(self) -> dict[str, Any]:
        """What this store holds in memory now: for the memory probe, not for /status."""
        return {
            "reads_incoming": len(self._incoming),
            "reads_in_memory": self._reads_in_memory,
            "journal_appends_in_flight": self._journal_writes_in_flight,
            "pending_streams": len(self._pending),
            "pending_sequence_numbers": sum(len(numbers) for numbers in self._pending.values()),
            "backlog_items": len(self._backlog),
        }

    def delete_expired(self, retention_days: int, keep_going: Callable[[], bool] = lambda: True) -> Deferred[None]:
        """Raw timing data older than the retention period goes, in batches (see chronotrack.storage.retention).

        Between batches it stops early when the database goes away or ``keep_going()`` says so.
        """
        if not self._can_write():
            return succeed(None)
        d = ensureDeferred(retention.delete_expired(self.database_source.database, retention_days, self.reactor,
                                                    keep_going=lambda: self._can_write() and keep_going()))
        d.addCallback(retention.log_report)
        d.addErrback(lambda failure: log.failure("retention clean-up failed", failure))
        return d
