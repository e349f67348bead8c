"""New reads, as they are stored, handed to everyone watching (the SSE streams).

The collector may be another process, so the only signal is PostgreSQL's NOTIFY on
``timing_reads`` (payload ``low:high``: the lowest and highest id of the insert statement
that committed, schema 0018). Each notify triggers a fetch of the reads above the last id
seen; bursts are coalesced so at most one fetch is in flight, with one more queued if
notifies arrived meanwhile.

Two ways a read could slip past, and what covers them:

- Inserts committing out of id order (two collectors, each with a batch in flight): a
  notify whose lowest id we have already passed means a late commit. The ids of its whole
  range are listed again (the primary key alone, page by page), and the reads among them
  not yet delivered are fetched and go out. (Whether a read was delivered is the only
  sound test: statements running at once interleave their ids, so a late statement's
  lowest and highest id may both have gone out with other fetches while ids between them
  did not.)
- Notifies lost while the database or the LISTEN connection was down: after every
  reconnect, and on a slow safety poll while anyone is watching, we fetch what is above
  the last id seen.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chronotrack.storage.database import Database
from web import queries
from web.errors import DatabaseUnavailable
from web.queries import DisplayRead

log = Logger()

CHANNEL = "timing_reads"
LATE_COMMIT_WINDOW = 1000  # ids below a late notify of the old form (a bare id) fetched again
DELIVERED_MEMORY = 50_000  # ids remembered to skip what was already delivered
SAFETY_POLL_SECONDS = 5.0



class ReadBatch(list):
    """The reads of one delivery. The same object goes to every subscriber, so work done
    on it once (the stream's encoded events, in ``encoded``) is shared by all of them."""

    encoded: bytes | None = None


Subscriber = Callable[[list[DisplayRead]], object]


class LiveReads:
    """Fan-out of new reads: ``subscribe(callback) -> unsubscribe``.

    ``callback`` gets a list of reads (a ``ReadBatch``, the same object for every
    subscriber), oldest first, each read exactly once.
    """

    def __init__(self, database: Database, reactor: IReactorTime | None = None,
                 safety_poll: float = SAFETY_POLL_SECONDS) -> None:
        self.database = database
        self._reactor = reactor if reactor is not None else database.reactor
        self._subscribers: list[Subscriber] = []
        self.last_id: int | None = None  # None until we know where "new" starts
        self._late_ranges: set[tuple[int, int]] = set()  # (low, high) ids of statements that committed late
        self._delivered_order: deque[int] = deque()
        self._delivered: set[int] = set()
        self._fetching: Deferred | None = None
        self._fetch_again = False
        self._stopped = False
        self._safety_poll = LoopingCall(self._request_fetch)
        self._safety_poll.clock = self._reactor
        self._safety_poll_interval = safety_poll
        self._started = False
        self._ready_waiters: list[Deferred[None]] = []

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def start(self) -> Deferred[None]:
        """LISTEN (kept across reconnects by Database) and learn where new reads begin."""
        if self._started:
            return succeed(None)
        self._started = True
        self.database.on_connect(self._request_fetch)  # catch up after every reconnect
        listening = self.database.listen(CHANNEL, self._notified)
        listening.addCallback(lambda _: self._request_fetch())
        listening.addErrback(lambda failure: log.failure("LISTEN {channel} failed", failure, channel=CHANNEL))
        return listening

    def when_ready(self) -> Deferred[None]:
        """Fires once LISTEN is in place and we know where new reads begin.

        A stream that waits for this before telling its client "connected" cannot miss a
        read the client sees being inserted afterwards.
        """
        if self.last_id is not None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._ready_waiters.append(waiter)
        return waiter

    def stop(self) -> None:
        """Stop fetching and forget subscribers (the LISTEN ends when the Database closes)."""
        self._stopped = True
        self._subscribers.clear()
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.errback(DatabaseUnavailable("live reads stopped"))
        if self._safety_poll.running:
            self._safety_poll.stop()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)
        if not self._safety_poll.running and not self._stopped:
            self._safety_poll.start(self._safety_poll_interval, now=False)
        removed = False

        def unsubscribe() -> None:
            nonlocal removed
            if removed:
                return
            removed = True
            if callback in self._subscribers:  # stop() may have cleared them already
                self._subscribers.remove(callback)
            if not self._subscribers and self._safety_poll.running:
                self._safety_poll.stop()

        return unsubscribe

    def _notified(self, payload: str) -> None:
        ids = notified_ids(payload)
        if not self._subscribers and self.last_id is not None and ids is not None:
            # Nobody is watching: just move the mark, no query.
            self.last_id = max(self.last_id, ids[1])
            return
        if ids is not None and self.last_id is not None and ids[0] <= self.last_id:
            self._late_ranges.add((ids[0], min(ids[1], self.last_id)))  # above last_id comes anyway
        self._request_fetch()

    def _request_fetch(self) -> None:
        if self._stopped:
            return
        if self._fetching is not None:
            self._fetch_again = True
            return
        self._fetching = ensureDeferred(self._fetch())
        self._fetching.addErrback(self._fetch_failed)
        self._fetching.addBoth(self._fetch_done)

    def _fetch_failed(self, failure) -> None:
        if failure.check(DatabaseUnavailable):
            log.debug("live fetch postponed: database unavailable")  # on_connect retries
        else:
            log.failure("fetching new reads failed", failure)

    def _fetch_done(self, _) -> None:
        self._fetching = None
        if self._fetch_again and not self._stopped:
            self._fetch_again = False
            self._request_fetch()

    async def _fetch(self) -> None:
        if self.last_id is None or not self._subscribers:
            # Nobody to tell about the reads in between: only move the mark.
            highest = await queries.highest_read_id(self.database)
            self.last_id = highest if self.last_id is None else max(self.last_id, highest)
            waiters, self._ready_waiters = self._ready_waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)
            return
        for late in sorted(self._late_ranges):  # each is forgotten only once its fetch worked
            await self._fetch_range(*late)
            self._late_ranges.discard(late)
        while True:
            reads = await queries.reads_after(self.database, self.last_id)
            if reads:
                self.last_id = max(self.last_id, reads[-1].id)
            self._deliver(reads)
            if len(reads) < queries.MAX_READS_PER_QUERY or self._stopped:
                return

    async def _fetch_range(self, low: int, high: int) -> None:
        """Deliver what is not yet delivered of the reads with ids ``low`` to ``high``. Usually
        every id of the range went out already (the fetch that followed an earlier notify saw
        them): then this asks nothing; else the range's ids are listed (the primary key alone)
        and only the reads not delivered are fetched."""
        if all(read_id in self._delivered for read_id in range(low, high + 1)):
            return  # every id of the range went out: nothing can be missing (no query)
        after = low - 1
        while not self._stopped:
            ids = await queries.read_ids_between(self.database, after, high)
            missing = [read_id for read_id in ids if read_id not in self._delivered]
            for start in range(0, len(missing), queries.MAX_READS_PER_QUERY):
                self._deliver(await queries.reads_with_ids(
                    self.database, missing[start:start + queries.MAX_READS_PER_QUERY]))
            if len(ids) < queries.MAX_READ_IDS_PER_QUERY:
                return
            after = ids[-1]

    def _deliver(self, reads: list[DisplayRead]) -> None:
        fresh = ReadBatch(read for read in reads if read.id not in self._delivered)
        if not fresh:
            return
        for read in fresh:
            self._delivered.add(read.id)
            self._delivered_order.append(read.id)
        while len(self._delivered_order) > DELIVERED_MEMORY:
            self._delivered.discard(self._delivered_order.popleft())
        for callback in list(self._subscribers):
            try:
                callback(fresh)
            except Exception:
                log.failure("a live-read subscriber failed")


def notified_ids(payload: str) -> tuple[int, int] | None:
    """The (lowest, highest) id a ``timing_reads`` NOTIFY names, or None for anything else.

    ``low:high`` since schema 0018; a bare id (the highest) before it, taken to cover the
    ``LATE_COMMIT_WINDOW`` ids below it as it did then.
    """
    low_text, separator, high_text = payload.partition(":")
    try:
        if not separator:
            high = int(low_text)
            return max(1, high - LATE_COMMIT_WINDOW + 1), high
        low, high = int(low_text), int(high_text)
    except ValueError:
        return None
    return (low, high) if low <= high else None
