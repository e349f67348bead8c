"""Each event's live results kept in the web process, so a request never re-scores the race.

Scoring from scratch costs every read of the event; a big race has hundreds of thousands and
its results page is asked for every few seconds by every phone at the finish. So the web
process keeps, per event, one ``chronotrack.results.RaceResults`` (the incremental table):

- **Built once**, by one shared build per event: its settings, its roster and every read of
  the event, fetched in pages of ``PAGE_READS`` by id (``results_queries.event_read_page``):
  PostgreSQL groups each page per (location, tag) and packs the times as microseconds, so
  the web process gets about one row per crossing, never holds a whole event's rows at once,
  and keeps each (location, tag)'s times as one compact array (``ReadLog``: 8 bytes a read).
  The pages are taken in and the race scored once at the end in a worker thread, so a big
  race never stalls the reactor (the collector, the other pages, the streams). Requests that
  arrive meanwhile wait for the same build, and a request that gives up (its client went
  away) does not stop it: the next one finds it done (``full_builds`` counts builds). The
  outcome equals feeding the reads one by one in id order (tests/test_results_build.py
  checks it on a real PostgreSQL; ``build`` does the same from ``TagRead`` objects, checked
  against ``compute_results`` in tests/test_results_cache.py). At start-up the events with an
  active session are built in the background (``ResultsPages.warm_results``).
- **Fed by the live feed**: the cache subscribes to ``LiveReads`` (the same fan-out the
  ``/stream`` screens use, one fetch per notify for everybody) and hands each new read of a
  cached event to ``add_read``. Reads that arrive while an event is being built are kept
  and applied after it; read ids already applied are skipped, so a read that comes both
  from the build query and from the feed counts once.
- **Caught up per request**: before answering, the event's reads above both the highest id
  applied and the feed's own mark (every read up to ``LiveReads.last_id`` has been handed
  to the cache already) are fetched: a primary-key range at the top of the table, normally
  empty, however many reads other events took since. A lost notify, or a request that
  comes before the feed delivered a read just stored, still sees it.
- **Rebuilt when what it was built from changes**: each request compares the roster's version
  (0016: bumped by triggers on any change to the event's runners) and the settings'
  ``updated_at`` with those at build time (one query of two index probes), so a roster
  import or a settings change from any process (the ``chronotrack roster`` command, another
  display) rebuilds the event at its next request.
  The settings form also drops the event at once.
- **Bounded**: as many events as fit in ``memory_budget`` (``--results-memory-mb``, by an
  estimate from their runners, reads and answers), at most ``capacity``; the least recently
  asked for goes first, the one being asked for always stays. Kept by count (four), a region's
  Saturday of many races rebuilt them in turn without end, the finish screens' feeds asking at
  every batch of reads. A new database connection (``LiveReads`` replaced) empties the cache.
  Per event, at most ``MAX_KEPT_ANSWERS`` answers (about ``MAX_KEPT_ANSWER_BYTES``) are kept,
  the least recently asked going first: a finished race never drops its answers, and a client
  asking ever different questions must not grow the process.

- **Fresh within a window, not rebuilt per read** (``freshness`` seconds, ``--results-freshness``,
  default 1 s in the services, 0 here): during a live race reads arrive every second, and
  turning a big table into rows, JSON and gzip costs hundreds of milliseconds of the process's
  CPU, which the collector and every ``/stream`` share. So once an answer has been made from
  the race as it stands (``answered_at``), new reads wait in ``_pending`` instead of changing the
  race; the first request (or read) ``freshness`` seconds later takes them all in and the next
  answers are made afresh, once, for everybody who asks the same question. The reactor's cost is
  then at most one rebuild per question per window, however many reads come and phones ask.
  A read is never lost, only delayed by at most the window: pending reads are kept in order and
  counted as applied for the de-duplication below. While nothing has been answered since the
  last change, a read goes straight in (a quiet event costs no delay). Holding the race still,
  rather than serving old bytes beside a moving race, keeps every answer of one window
  consistent: the same read id (``as_of_id``) for the rows, the counts, the gun time and the
  unknown tags, whichever question made its answer first.
- **Screens see every read at once**: a finish screen's feed (``web/display_feed.py``) asks for
  ``up_to_date()``, which puts the waiting reads into the race without dropping the answers
  made (they are served until their window closes, then dropped as if the reads had waited): a
  new finisher's place and time are on the big screen at once, and the pages' answers still
  cost at most one rebuild per question per window.
- **Made a slice at a time** (``memo_off_reactor`` with ``ResultsCache.in_steps``): the big
  answers (every row, which a filter, a search or the CSV needs; ``/api/results``' JSON) are
  made a few hundred rows per step by a ``Cooperator`` on the reactor, ``STEP_SECONDS`` at a
  time, the controllers' reads and the streams served between steps; the gzip runs in a worker
  thread (zlib lets go of the GIL). Everyone asking the same question meanwhile waits for the
  same making. That is safe because the race holds still while an answer is being made:
  ``refresh`` takes no read in until it is done. Not chosen: making the rows and JSON in a worker
  thread (tried: a CPU-bound thread makes the reactor wait for the GIL after each of its socket
  calls, up to the 5 ms switch interval each, and one ``json.dumps`` of a whole table holds the
  GIL for its whole run), and making ``rows()`` incremental (each new finisher in the middle
  moves the places of everyone slower, so the JSON is rewritten anyway).
- **Changes of what it was built from rebuild at once**: a roster or settings change (the
  version check in ``results``, ``forget``) makes a new ``EventResults``, whatever the window.

Read ids from a late commit more than ``SEEN_WINDOW`` below the highest id applied are
taken as applied already (the live feed itself re-fetches only 1000 ids below a late notify).
"""

from __future__ import annotations

import sys
import time
from array import array
from collections import OrderedDict
from typing import Any, Callable, Generator, Hashable

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.python.failure import Failure
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Cooperator
from twisted.logger import Logger

from chronotrack.storage.database import Database
from chronotrack.reads import NEW_LOCATION_TAG, TagRead
from chronotrack.results import RaceResults, ResultRow
from web.roster import Participant
from web import results_queries
from web.live import LiveReads
from web.queries import DisplayRead, Event
from web.results_queries import ReadPage, StoredSettings, scored_read
from web.thread_pool import in_thread_pool

log = Logger()

# How many events' results the process keeps: as many as fit in ``memory_budget`` bytes
# (``--results-memory-mb``), by the estimate of ``EventResults.approximate_bytes``, and never more
# than ``DEFAULT_CAPACITY``; the least recently asked goes first, the one asked now always stays.
DEFAULT_CAPACITY = 64
DEFAULT_MEMORY_BUDGET = 256 << 20
RUNNER_BYTES = 1_400  # about what a runner of the roster costs the race (tracemalloc, 10,000 runners)
READ_BYTES = 16  # a read's time in its (location, tag) log, with the log's share of overhead
# An event let go this soon after its build means the budget is too small for the events asked.
EVICTED_SOON_SECONDS = 60.0
# Answers an event keeps at once, and about how many bytes they may hold: the least recently asked
# go first, and are made again if asked again. Without a bound, a finished race (nothing ever drops
# its answers) kept one answer per different question forever: a public display's /api/results
# asked with limit=1, 2, 3... grew the process without end. Every row ("rows") stays: the other
# answers are made from it.
MAX_KEPT_ANSWERS = 32
MAX_KEPT_ANSWER_BYTES = 64 << 20
_ALWAYS_KEPT = frozenset({"rows"})
ROW_BYTES = 250  # about what one ResultRow holds (tracemalloc, 10,000 runners)
STEP_ROWS = 250  # rows made per step of a big answer (about a millisecond)
STEP_SECONDS = 0.005  # the reactor's other work comes in at least this often while a big answer is made
SEEN_WINDOW = 2000


def answer_bytes(answer: Any) -> int:
    """About how much memory a kept answer holds: its bytes, or ``ROW_BYTES`` per item of a list."""
    if isinstance(answer, (bytes, bytearray, str)):
        return len(answer)
    if isinstance(answer, tuple):
        return sum(answer_bytes(part) for part in answer)
    if isinstance(answer, (list, set, frozenset, dict)):
        return len(answer) * ROW_BYTES
    return 0


def scoring_order(reads: list[tuple[int, TagRead]]) -> list[TagRead]:
    """Reads given as ``TagRead`` objects (``EventResults.build``) in the order that scores them in
    one pass: each location announced where reads first showed it, then every read in id order,
    gun reads last (so the race is scored once, when the gun arrives)."""
    announced: dict[str, TagRead] = {}
    runners: list[TagRead] = []
    guns: list[TagRead] = []
    for _, read in reads:
        if read.location_name not in announced:
            announced[read.location_name] = scored_read(read.location_name, NEW_LOCATION_TAG, read.read_time,
                                                        read.read_timestamp, 0, read.reader_id, 0)
        (guns if read.is_gun_time else runners).append(read)
    return [*announced.values(), *runners, *guns]


def _step_timer() -> Callable[[], bool]:
    """The Cooperator's end of one turn: ``STEP_SECONDS`` from now."""
    end = time.monotonic() + STEP_SECONDS
    return lambda: time.monotonic() >= end


class _NotKept:
    """The key of an answer made for one asker and not kept (each one a different key)."""


class EventResults:
    """One event's results: the live table, and the ids of the reads it has taken in."""

    def __init__(self, event: Event, settings: StoredSettings, roster: list[Participant],
                 version: tuple[Any, ...], clock: Callable[[], float] = time.time, freshness: float = 0.0) -> None:
        self.event = event
        self.settings = settings
        self.version = version
        self.race = RaceResults(settings.event_settings(), roster, report_moves=False)  # read via rows() only
        self.runners = len(roster)
        self.built_at = time.monotonic()  # when its build ended (ResultsCache sets it)
        self.high_id = 0  # the highest read id taken (in the race, or pending)
        self.as_of_id = 0  # the highest read id in the race: what the answers show
        self.checked_through = 0  # every read of the event up to this id has been taken in
        self.read_count = 0
        self.freshness = freshness  # seconds an answer is served while newer reads wait
        self.answers_made = 0  # memoized answers computed (rows, JSON bodies, ...): the rebuilds
        self._clock = clock
        self._answered_at: float | None = None  # when the first answer of the race as it stands was made
        self._pending: list[tuple[int, TagRead]] = []  # taken, not yet in the race (the window is open)
        self._moved_under_answers = False  # reads went into the race early (up_to_date): drop the answers when due
        self._recent_ids: set[int] = set()  # applied ids above high_id - SEEN_WINDOW
        # What pages derive from the race, until it takes new reads (least recently asked first), and
        # about how many bytes that is (see MAX_KEPT_ANSWERS).
        self._memo: OrderedDict[Hashable, Any] = OrderedDict()
        self._memo_bytes = 0
        self._making: dict[Hashable, list[Deferred]] = {}  # answers being made (in steps), and who waits
        self._idle_waiters: list[Deferred] = []  # new questions waiting for the makes under way to end

    def build(self, reads: list[tuple[int, TagRead]]) -> EventResults:
        """Take in every read of the event so far (ids ascending), in one pass; any thread."""
        for read in scoring_order(reads):
            self.race.add_read(read)
        if reads:
            self.high_id = reads[-1][0]
            floor = self.high_id - SEEN_WINDOW
            self._recent_ids = {read_id for read_id, _ in reads if read_id > floor}
        self.read_count = len(reads)
        self.as_of_id = self.high_id
        return self

    def take_page(self, page: ReadPage) -> None:
        """Take in one page of the event's reads as PostgreSQL grouped them (any thread; pages in
        id order). Locations are announced in the order their first reads came."""
        log = self.race.read_log
        firsts: dict[str, int] = {}
        for location, _, first_id, _, _, _ in page.groups:
            if first_id < firsts.get(location, first_id + 1):
                firsts[location] = first_id
        for location in sorted(firsts, key=firsts.__getitem__):
            log.add_location(location)
        swap = sys.byteorder == "little"  # PostgreSQL packs big-endian
        for location, tag, _, count, packed, guns in page.groups:
            self.read_count += count
            if guns:
                log.add_gun_times(location, guns)
            elif packed:
                times = array("q")
                times.frombytes(packed)
                if swap:
                    times.byteswap()
                log.add_times(location, tag, times)

    def finish_loading(self, high_id: int, recent_ids: list[int]) -> EventResults:
        """After the last page: score the race once (any thread). ``recent_ids``: the event's read
        ids in (high_id - SEEN_WINDOW, high_id], so the live feed's copies of them are skipped."""
        self.high_id = high_id
        self._recent_ids = set(recent_ids)
        self.race.rescore()
        self.as_of_id = high_id
        return self

    def apply(self, read_id: int, read: TagRead) -> bool:
        """Take one read in unless it was already; True when it was new. It reaches the race at
        once, or when the freshness window of the answers already made closes (``refresh``)."""
        if read_id <= self.high_id - SEEN_WINDOW or read_id in self._recent_ids:
            return False
        self._pending.append((read_id, read))
        self.read_count += 1
        self._recent_ids.add(read_id)
        if read_id > self.high_id:
            self.high_id = read_id
            if len(self._recent_ids) > 2 * SEEN_WINDOW:
                floor = self.high_id - SEEN_WINDOW
                self._recent_ids = {seen for seen in self._recent_ids if seen > floor}
        self.refresh()
        return True

    def refresh(self) -> None:
        """Put the pending reads into the race, and drop the answers made, unless those answers
        are younger than ``freshness`` seconds (then they are served as they are)."""
        if self._making or not self._fold_due():  # (an answer being made reads the race: it holds still)
            return
        self._fold_pending()
        self._memo.clear()
        self._memo_bytes = 0
        self._answered_at = None
        self._moved_under_answers = False

    def _fold_pending(self) -> None:
        pending, self._pending = self._pending, []
        for read_id, read in pending:
            self.race.add_read(read)
            if read_id > self.as_of_id:
                self.as_of_id = read_id

    async def up_to_date(self) -> None:
        """Every read taken in the race now, for a finish screen: a new finisher's place and time
        show at once, whatever the window. The answers already made are still served until their
        window closes (they were made from the race as it stood then, and say so in their
        ``results_as_of``); so inside a window, a question first asked after this may be answered
        from a race holding more reads than the answers made before it. Waits for any answer being
        made from the race (it holds still meanwhile)."""
        while self._making:
            idle: Deferred = Deferred()
            self._idle_waiters.append(idle)
            await idle
        if self._pending:
            self._fold_pending()
            self._moved_under_answers = True
        self.refresh()

    @property
    def pending_reads(self) -> int:
        """Reads taken but not in the answers yet (they will be once the window closes)."""
        return len(self._pending)

    def answered_at(self) -> float:
        """When the answers now served were first made (the race held every read taken then)."""
        if self._answered_at is None:
            return self._clock()
        return self._answered_at

    def memo(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, computed once until the race takes new reads in (JSON rows, say)."""
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        if self._answered_at is None:
            self._answered_at = self._clock()
        self.answers_made += 1
        answer = make()
        self._keep_answer(key, answer)
        return answer

    def _keep_answer(self, key: Hashable, answer: Any) -> None:
        """Keep ``answer`` as the newest, then let the least recently asked ones go while more than
        MAX_KEPT_ANSWERS answers or MAX_KEPT_ANSWER_BYTES are kept (never every row, nor this one)."""
        if key in self._memo:
            self._memo_bytes -= answer_bytes(self._memo.pop(key))
        self._memo[key] = answer
        self._memo_bytes += answer_bytes(answer)
        while len(self._memo) > MAX_KEPT_ANSWERS or self._memo_bytes > MAX_KEPT_ANSWER_BYTES:
            oldest = next((kept for kept in self._memo if kept != key and kept not in _ALWAYS_KEPT), None)
            if oldest is None:
                break
            self._memo_bytes -= answer_bytes(self._memo.pop(oldest))

    def approximate_bytes(self) -> int:
        """About how much memory this event's results hold: its runners, its reads and its answers."""
        return self.runners * RUNNER_BYTES + self.read_count * READ_BYTES + self._memo_bytes

    @property
    def answers_kept(self) -> tuple[int, int]:
        """(how many answers are kept, about how many bytes they hold)."""
        return len(self._memo), self._memo_bytes

    def memo_off_reactor(self, key: Hashable, make: Callable[[], Any],
                         run: Callable[[Callable[[], Any]], Deferred], keep: bool = True) -> Deferred:
        """``memo(key, make)`` with ``make`` run by ``run`` (``ResultsCache.in_steps``: a slice at a
        time, so a big table's rows and JSON never hold the reactor in one block). Everyone asking
        meanwhile waits for the same run; the race takes no read in until it is done (``refresh``
        waits), so ``make`` reads a race nobody changes however long it takes. A waiter that gives
        up (its client went away) does not stop the run. ``keep=False``: made for this asker alone
        and not kept (a search: many and different), but made as safely."""
        if not keep:
            key = _NotKept()
        return ensureDeferred(self._memo_off_reactor(key, make, run))

    async def _memo_off_reactor(self, key: Hashable, make: Callable[[], Any],
                                run: Callable[[Callable[[], Any]], Deferred]) -> Any:
        while self._making and key not in self._making and self._fold_due():
            # The window closed while other answers are being made: a new question waits for them and
            # for the waiting reads to go in, so a stream of new questions cannot hold the reads back.
            idle: Deferred = Deferred()
            self._idle_waiters.append(idle)
            await idle
            self.refresh()
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        mine: Deferred = Deferred()
        waiters = self._making.get(key)
        if waiters is not None:
            waiters.append(mine)
            return await mine
        self._making[key] = [mine]
        if self._answered_at is None:
            self._answered_at = self._clock()
        run(make).addBoth(self._made, key)
        return await mine

    def _fold_due(self) -> bool:
        return (bool(self._pending) or self._moved_under_answers) and (
            self._answered_at is None or self._clock() - self._answered_at >= self.freshness)

    def _made(self, outcome: Any, key: Hashable) -> None:
        waiters = self._making.pop(key)
        if not isinstance(outcome, Failure) and not isinstance(key, _NotKept):
            self.answers_made += 1
            self._keep_answer(key, outcome)  # served until a window after the race last took reads in
        told = 0
        for waiter in waiters:
            if not waiter.called:  # else cancelled: its client went away
                told += 1
                waiter.errback(outcome) if isinstance(outcome, Failure) else waiter.callback(outcome)
        if isinstance(outcome, Failure) and not told:
            log.failure("results answer of event {event} could not be made", outcome, event=self.event.id)
        if not self._making:
            idle, self._idle_waiters = self._idle_waiters, []
            for waiter in idle:
                if not waiter.called:
                    waiter.callback(None)
        self.refresh()

    def keep(self, key: Hashable, value: Any) -> None:
        """An answer made elsewhere (``rows_in_steps``), served like ``memo``'s."""
        if self._answered_at is None:
            self._answered_at = self._clock()
        self.answers_made += 1
        self._keep_answer(key, value)

    def has(self, key: Hashable) -> bool:
        """Whether the answer to ``key`` is made (and served until the window closes)."""
        return key in self._memo

    def rows_in_steps(self) -> Generator[None, None, list[ResultRow]]:
        """Every row, made ``STEP_ROWS`` at a time (a generator for ``ResultsCache.in_steps``)."""
        rows: list[ResultRow] = []
        for row in self.race.iter_rows():
            rows.append(row)
            if len(rows) % STEP_ROWS == 0:
                yield None
        return rows

    def rows(self) -> list[ResultRow]:
        """Every finisher in place order (kept until the race takes new reads in)."""
        return self.memo("rows", self.race.rows)

    def first_rows(self, limit: int | None) -> list[ResultRow]:
        """The first ``limit`` finishers (all when None), without making every row for a short page."""
        if "rows" in self._memo or limit is None:
            return self.rows()[:limit]
        return self.memo(("first rows", limit), lambda: self.race.rows(limit))

    def finisher_count(self) -> int:
        return self.race.finisher_count()

    def divisions(self) -> list[str]:
        return self.memo("divisions", lambda: self.race.group_names("division"))

    def genders(self) -> list[str]:
        return self.memo("genders", lambda: self.race.group_names("gender"))

    def unknown_tags(self) -> list[str]:
        return self.memo("unknown tags", self.race.unknown_tags)


class ResultsCache:
    """``await cache.results(database, event)``: the event's ``EventResults``, current as of now."""

    def __init__(self, reactor: IReactorTime | None = None, capacity: int = DEFAULT_CAPACITY,
                 freshness: float = 0.0, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.reactor = reactor  # its thread pool scores whole events; None (or a test clock): in line
        self.capacity = capacity
        self.memory_budget = memory_budget  # bytes, by EventResults.approximate_bytes
        self.freshness = freshness  # seconds an answer is served while newer reads wait (0: none wait)
        self.clock: Callable[[], float] = reactor.seconds if reactor is not None else time.time
        self.page_reads = results_queries.PAGE_READS  # reads per page of a build
        self.full_builds = 0  # whole events scored from all their reads
        self.live_reads_applied = 0  # reads taken in from the live feed
        self._entries: OrderedDict[int, EventResults] = OrderedDict()
        self._building: dict[int, list[Deferred]] = {}
        self._arrived_while_building: dict[int, list[tuple[int, TagRead]]] = {}
        self._live: LiveReads | None = None
        self._cooperator: Cooperator | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def __contains__(self, event_id: int) -> bool:
        return event_id in self._entries

    # The live feed

    def use_live(self, live: LiveReads) -> None:
        """Take new reads from ``live``; a different feed (a new database) empties the cache."""
        if live is self._live:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._entries.clear()
        self._live = live
        self._unsubscribe = live.subscribe(self._new_reads)

    def _new_reads(self, reads: list[DisplayRead]) -> None:
        for read in reads:
            event_id = read.event_id
            if event_id is None:
                continue
            entry = self._entries.get(event_id)
            waiting = self._arrived_while_building.get(event_id)
            if entry is None and waiting is None:
                continue
            scored = (read.id, scored_read(read.location, read.bib, read.time, read.timestamp, read.lap,
                                           read.reader, read.gator))
            if entry is not None and entry.apply(*scored):
                self.live_reads_applied += 1
            if waiting is not None:  # being (re)built: the build's query may have missed it
                waiting.append(scored)

    # Asking

    def forget(self, event_id: int) -> None:
        """Drop an event (its settings changed): the next request builds it afresh."""
        self._entries.pop(event_id, None)

    def memory_used(self) -> int:
        """About how many bytes the kept events' results hold."""
        return sum(entry.approximate_bytes() for entry in self._entries.values())

    def _keep_within_budget(self, asked: int) -> None:
        """Let the least recently asked events go while more than ``capacity`` are kept or they
        weigh more than ``memory_budget``; never ``asked``, the event being answered."""
        used = self.memory_used()
        while len(self._entries) > 1 and (len(self._entries) > self.capacity or used > self.memory_budget):
            oldest = next(event_id for event_id in self._entries if event_id != asked)
            entry = self._entries.pop(oldest)
            used -= entry.approximate_bytes()
            kept_for = time.monotonic() - entry.built_at
            if kept_for < EVICTED_SOON_SECONDS:
                log.warn("results of event {event} let go {seconds:.0f} s after they were built, to keep the "
                         "results within {budget} MB: the events asked for need more; raise --results-memory-mb",
                         event=oldest, seconds=kept_for, budget=self.memory_budget >> 20)

    async def results(self, database: Database, event: Event) -> EventResults:
        version = await results_queries.event_version(database, event)
        entry = self._entries.get(event.id)
        if entry is not None and entry.version == version:
            self._entries.move_to_end(event.id)
            self._keep_within_budget(event.id)  # the events grow as their reads come
            delivered_through = self._delivered_through()
            after = max(entry.high_id, entry.checked_through)
            entry.freshness = self.freshness
            for read_id, read in await results_queries.event_reads(database, event, after):
                entry.apply(read_id, read)
            entry.checked_through = max(entry.checked_through, delivered_through)
            entry.refresh()  # the window closed since the last read came: the answers are made afresh
            return entry
        return await self._build(database, event, version)

    def _delivered_through(self) -> int:
        """The id up to which the live feed has handed every read over (late commits aside)."""
        return (self._live.last_id or 0) if self._live is not None else 0

    def in_steps(self, steps: Callable[[], Generator[Any, None, Any]]) -> Deferred:
        """Run the generator ``steps()`` on the reactor a few milliseconds at a time (``STEP_SECONDS``),
        the controllers' reads and the streams served between; it yields None between steps, or a
        Deferred to wait for (``in_thread``). Fires with what the generator returns. Without a
        real reactor (a test clock): at once."""
        outcome: list[Any] = []

        def driven() -> Generator[Any, None, None]:
            outcome.append((yield from steps()))

        if getattr(self.reactor, "getThreadPool", None) is None:
            for step in driven():
                if isinstance(step, Deferred) and not step.called:
                    raise RuntimeError("in_steps without a reactor waits for nothing")
            return succeed(outcome[0])
        if self._cooperator is None:
            self._cooperator = Cooperator(terminationPredicateFactory=_step_timer,
                                          scheduler=lambda work: self.reactor.callLater(0, work))
        return self._cooperator.cooperate(driven()).whenDone().addCallback(lambda _: outcome[0])

    def in_thread(self, work: Callable[..., Any], *args: Any) -> Deferred:
        """``work(*args)`` in the reactor's thread pool (in line without one: a test clock)."""
        return in_thread_pool(self.reactor, work, *args)

    async def _build(self, database: Database, event: Event, version: tuple[Any, ...]) -> EventResults:
        """The event built afresh, by one shared build: a request that gives up (its client went
        away, which cancels its Deferred) stops waiting, but the build goes on for the others
        and for the next request."""
        mine: Deferred[EventResults] = Deferred()
        waiters = self._building.get(event.id)
        if waiters is not None:  # someone is building it already: wait for theirs
            waiters.append(mine)
            return await mine
        self._building[event.id] = []
        ensureDeferred(self._load(database, event, version)).addBoth(self._built, event.id, mine)
        return await mine

    def _built(self, outcome: EventResults | Failure, event_id: int, starter: Deferred) -> None:
        """Hand the build's outcome to every request still waiting for it."""
        told = 0
        for waiter in [starter, *self._building.pop(event_id, [])]:
            if waiter.called:  # cancelled: its client went away
                continue
            told += 1
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)
        if isinstance(outcome, Failure) and not told:
            log.failure("results of event {event} could not be built", outcome, event=event_id)

    async def _load(self, database: Database, event: Event, version: tuple[Any, ...]) -> EventResults:
        """Every read of the event so far, page by page (see the module docstring), scored once."""
        self._arrived_while_building[event.id] = []
        started = time.monotonic()
        delivered_through = self._delivered_through()  # before the first page: the pages see at least these
        try:
            settings = await results_queries.stored_settings(database, event)
            roster = await results_queries.event_roster(database, event)
            sessions = await results_queries.event_sessions(database, event)
            entry = EventResults(event, settings, roster, version, self.clock, self.freshness)
            high_id = 0
            while True:
                page = await results_queries.event_read_page(database, event, sessions, high_id, self.page_reads)
                if page.groups:
                    await self.in_thread(entry.take_page, page)
                high_id = page.last_id
                if page.reads < self.page_reads:
                    break
            recent = await results_queries.read_ids_above(database, event, sessions, high_id - SEEN_WINDOW, high_id)
            await self.in_thread(entry.finish_loading, high_id, recent)
            for read_id, read in self._arrived_while_building.get(event.id, ()):
                entry.apply(read_id, read)
        finally:
            self._arrived_while_building.pop(event.id, None)
        entry.checked_through = delivered_through
        self.full_builds += 1
        log.info("results of event {event} built from {reads} reads and {runners} runners in {seconds:.1f} s",
                 event=event.id, reads=entry.read_count, runners=len(roster), seconds=time.monotonic() - started)
        self._entries[event.id] = entry
        self._entries.move_to_end(event.id)
        entry.built_at = time.monotonic()
        self._keep_within_budget(event.id)
        return entry
