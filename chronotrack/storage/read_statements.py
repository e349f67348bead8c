"""What one write of reads sends to PostgreSQL: the batch's arrays, and the statement.

Pure preparation (``prepare_batch``: one array literal per column, per event, without the
database) kept apart from the store's bookkeeping (``pgstore``), so the store can prepare the
next statement while PostgreSQL still works on the current one, and the benchmarks can time
it alone. The SQL side is ``store_timing_reads`` (0014, 0017).
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred, inlineCallbacks

from chronotrack.reads import ReadSource
from chronotrack.storage.journal_lines import JournalEntry
from chronotrack.storage.pg_arrays import int_array, micros_array, text_array

DEFAULT_CLOCK_TOLERANCE = 86400.0  # seconds between a read's time and its arrival before it is marked

# Each event's call of store_timing_reads keeps one subtransaction (0017's plain-INSERT-first
# block) until its transaction ends. Past 64 of them a backend's transaction "overflows" and,
# while it lasts, every other session checking row visibility looks them up in pg_subtrans:
# the whole hub slows down. A batch spanning more events is written in several transactions.
MAX_EVENTS_PER_TRANSACTION = 32

# One event's reads, with their session, locations and watermarks (0014_cheaper_read_inserts.sql;
# times as microseconds since the epoch, 0017_cheaper_read_statements.sql).
_STORE_READS = ("SELECT session_id, inserted FROM store_timing_reads(%s, %s, %s, %s, %s::text[], %s::text[],"
                " %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::int[],"
                " %s::text[], %s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[])")

# A store's statements take its own lock first (0020), so a statement sent while the one before
# it is still being written waits for that one to commit, then starts at once. The statement
# sent when none is in flight takes the lock before PostgreSQL converts its arrays; the one sent
# ahead takes it after (store_timing_reads_in_turn), so it converts its arrays while it waits.
_WAIT_FOR_TURN = "SELECT pg_advisory_xact_lock(20, %s)"
# Whether a transaction holds the writer's lock: a statement is sent ahead only once the one
# before it does, so it cannot take the lock first.
TURN_TAKEN = ("SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND classid = 20"
              " AND objid = %s AND objsubid = 2 AND granted)")
_STORE_READS_FIRST_IN_TURN = _WAIT_FOR_TURN + "; " + _STORE_READS
_STORE_READS_IN_TURN = _STORE_READS.replace("store_timing_reads(%s,", "store_timing_reads_in_turn(%s, %s,", 1)


def event_of(source: ReadSource) -> tuple[int | None, str, str]:
    """(partner, event id, event name): the arguments of open_timing_session."""
    return source.partner_id, source.event_id or "", source.event_name or ""


def _event_order(event: tuple[int | None, str, str]) -> tuple:
    partner, event_id, event_name = event
    return (partner is None, partner or 0, event_id, event_name)


@dataclass(frozen=True, slots=True)
class _EventBatch:
    """One event's reads of a batch, as the INSERT takes them: one array literal per column."""

    source: ReadSource  # names the event (open_timing_session's arguments)
    count: int
    locations: tuple[str, str]  # array literals: each location once, with its first reader
    columns: tuple[str, ...]  # array literals in store_timing_reads's order
    pairs: tuple[str, str]  # array literals: the distinct (stream, location) pairs, sorted


@dataclass(slots=True)
class Committed:
    """What a write has committed so far: a batch of many events is written in several
    transactions, and those before a failed one stay committed."""

    session_id: int | None = None
    inserted: int = 0


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A statement's reads ready for PostgreSQL: its events in key order (see insert_reads)."""

    events: tuple[_EventBatch, ...]
    count: int


def prepare_batch(entries: list[JournalEntry]) -> PreparedBatch:
    """Everything the INSERT of ``entries`` needs, computed without the database.

    Pure and separate from the SQL so the store can prepare the next statement while
    PostgreSQL still works on the current one.
    """
    by_event: dict[tuple, list[JournalEntry]] = {}
    for entry in entries:
        by_event.setdefault(event_of(entry.source), []).append(entry)
    events = []
    for key in sorted(by_event, key=_event_order):
        group = by_event[key]
        reads = [entry.read for entry in group]
        first_reader: dict[str, str] = {}
        for read in reads:
            first_reader.setdefault(read.location_name, read.reader_id)
        # One array literal per column (see chronotrack.storage.pg_arrays), not a list each.
        columns = (
            text_array([entry.source.stream_id for entry in group]),
            int_array([read.sequence_number for read in reads]),
            text_array([read.location_name for read in reads]),
            text_array([read.tag_code for read in reads]),
            text_array([read.read_time for read in reads]),
            micros_array([read.read_timestamp for read in reads]),
            int_array([read.lap_count for read in reads]),
            text_array([read.reader_id for read in reads]),
            int_array([read.gator_number for read in reads]),
            text_array([read.raw_data for read in reads]),
            micros_array([read.received_at for read in reads]),
            int_array([entry.source.connection_row_id for entry in group]),
        )
        # Only the distinct pairs travel: the SQL sorts them so writers lock them alike.
        pairs = sorted({(entry.source.stream_id, entry.read.location_name) for entry in group})
        events.append(_EventBatch(
            source=group[0].source, count=len(group),
            locations=(text_array(first_reader), text_array(first_reader.values())), columns=columns,
            pairs=(text_array(pair[0] for pair in pairs), text_array(pair[1] for pair in pairs))))
    return PreparedBatch(tuple(events), len(entries))


def insert_reads(cursor, entries: list[JournalEntry], clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
                 writer: int | None = None):
    """Write a batch; reads of several events go to their own sessions, each event's in arrival order."""
    return _insert_prepared(cursor, prepare_batch(entries), clock_tolerance, writer)


def _store_statement(event: _EventBatch, clock_tolerance: float, writer: int | None,
                     ahead: bool) -> tuple[str, tuple]:
    """The call of store_timing_reads for one event's reads, in the writer's turn if it has one."""
    arguments = _store_arguments(event, clock_tolerance)
    if writer is None:
        return _STORE_READS, arguments
    if ahead:
        return _STORE_READS_IN_TURN, (writer, *arguments)
    return _STORE_READS_FIRST_IN_TURN, (writer, *arguments)


def _store_arguments(event: _EventBatch, clock_tolerance: float) -> tuple:
    return (*event_of(event.source), clock_tolerance, *event.locations, *event.columns, *event.pairs)


@inlineCallbacks
def _insert_prepared(cursor, batch: PreparedBatch, clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
                     writer: int | None = None, ahead: bool = False):
    """Write a prepared batch of several events in the cursor's transaction, event by event.

    The events are written in the order of their keys, so two collectors writing batches that
    span the same events take the maintained figures' row locks (0008) in the same order and
    cannot deadlock. With each event's reads the stream watermarks move past them (0014's
    store_timing_reads: the session, the locations, the reads and the watermarks in one call).
    With ``writer``, the transaction waits for the writer's previous statement (0020) before
    its first read is written.
    """
    inserted = 0
    session_id = None
    if writer is not None and not ahead:
        yield cursor.execute(_WAIT_FOR_TURN, (writer,))
        writer = None  # the transaction holds the lock: the calls need not take it
    for event in batch.events:
        yield cursor.execute(*_store_statement(event, clock_tolerance, writer, ahead=True))
        session_id, count = cursor.fetchone()
        inserted += count
    return session_id, inserted


def write_prepared(database, batch: PreparedBatch, clock_tolerance: float, writer: int | None = None,
                   ahead: bool = False, committed: Committed | None = None) -> Deferred[tuple[int, int]]:
    """(session, reads inserted) once ``batch`` is committed: a batch of one event (the usual
    case) is one statement, its own transaction, a single round trip.

    With ``writer`` (the store's key), each transaction waits until the writer's previous one has
    committed (0020); ``ahead`` says one is still being written as this is sent. ``committed``
    is kept up to date as the transactions of a batch of many events commit, so a caller whose
    write failed part way knows what is stored already.
    """
    if len(batch.events) == 1:
        d = database.run_query(*_store_statement(batch.events[0], clock_tolerance, writer, ahead))
        return d.addCallback(lambda rows: (rows[0][0], rows[0][1]))
    return _write_in_transactions(database, batch, clock_tolerance, writer, ahead, committed or Committed())


def fits_one_transaction(batch: PreparedBatch) -> bool:
    """Whether ``batch`` is written in a single transaction (only such a batch is sent ahead)."""
    return len(batch.events) <= MAX_EVENTS_PER_TRANSACTION


@inlineCallbacks
def _write_in_transactions(database, batch: PreparedBatch, clock_tolerance: float, writer: int | None,
                           ahead: bool, committed: Committed):
    """A batch of several events, in transactions of at most MAX_EVENTS_PER_TRANSACTION events,
    one after another. If one fails, those before it stay committed: the store writes the batch
    again, and the reads already stored are skipped (timing_reads_once)."""
    session_id, inserted = None, 0
    for start in range(0, len(batch.events), MAX_EVENTS_PER_TRANSACTION):
        events = batch.events[start:start + MAX_EVENTS_PER_TRANSACTION]
        part = PreparedBatch(events, sum(event.count for event in events))
        session_id, count = yield database.run_interaction(_insert_prepared, part, clock_tolerance, writer, ahead)
        inserted += count
        committed.session_id, committed.inserted = session_id, inserted
    return session_id, inserted
