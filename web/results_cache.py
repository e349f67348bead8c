"""Each event's live results kept in the web process, so a request never re-scores the race.

Scoring from scratch costs every read of the event; a big race has hundreds of thousands and
its results page is asked for every few seconds by every phone at the finish. So the web
process keeps, per event, one ``chronotrack.results.RaceResults`` (the incremental table):

- **Built once**, on the first request for the event: its settings, its roster and every
  read of the event in one query ordered by id, fed to ``add_read`` in that order
  (``full_builds`` counts these). Requests that arrive meanwhile wait for the same build.
- **Fed by the live feed**: the cache subscribes to ``LiveReads`` (the same fan-out the
  ``/stream`` screens use, one fetch per notify for everybody) and hands each new read of a
  cached event to ``add_read``. Reads that arrive while an event is being built are kept
  and applied after it; read ids already applied are skipped, so a read that comes both
  from the build query and from the feed counts once.
- **Caught up per request**: before answering, the reads above the highest id applied are
  fetched (a primary-key range: normally none). A notify that was lost, or a request that
  comes before the feed delivered a read just stored, still sees it.
- **Rebuilt when what it was built from changes**: each request compares the roster's size
  and newest ``updated_at`` and the settings' ``updated_at`` with those at build time (one
  query of index probes), so a roster import or a settings change from any process (the
  ``chronotrack roster`` command, another display) rebuilds the event at its next request.
  The settings form also drops the event at once.
- **Bounded**: at most ``capacity`` events (least recently asked for goes first); a new
  database connection (``LiveReads`` replaced) empties the cache.

Read ids from a late commit more than ``SEEN_WINDOW`` below the highest id applied are
taken as applied already (the live feed itself re-fetches only 1000 ids below a late notify).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chronotrack.database import Database
from chronotrack.reads import TagRead
from chronotrack.results import RaceResults, ResultRow
from web import results_queries
from web.live import LiveReads
from web.queries import DisplayRead, Event
from web.results_queries import StoredSettings, scored_read

log = Logger()

DEFAULT_CAPACITY = 4
SEEN_WINDOW = 2000


class EventResults:
    """One event's results: the live table, and the ids of the reads it has taken in."""

    def __init__(self, event: Event, settings: StoredSettings, roster: list, version: tuple[Any, ...]) -> None:
        self.event = event
        self.settings = settings
        self.version = version
        self.race = RaceResults(settings.event_settings(), roster)
        self.high_id = 0
        self.read_count = 0
        self._recent_ids: set[int] = set()  # applied ids above high_id - SEEN_WINDOW
        self._rows: list[ResultRow] | None = None
        self._unknown: list[str] | None = None

    def apply(self, read_id: int, read: TagRead) -> bool:
        """Take one read in unless it was already; True when it was new."""
        if read_id <= self.high_id - SEEN_WINDOW or read_id in self._recent_ids:
            return False
        self.race.add_read(read)
        self.read_count += 1
        self._recent_ids.add(read_id)
        if read_id > self.high_id:
            self.high_id = read_id
            if len(self._recent_ids) > 2 * SEEN_WINDOW:
                floor = self.high_id - SEEN_WINDOW
                self._recent_ids = {seen for seen in self._recent_ids if seen > floor}
        self._rows = self._unknown = None
        return True

    def rows(self) -> list[ResultRow]:
        """Every finisher in place order (kept until the next read changes anything)."""
        if self._rows is None:
            self._rows = self.race.rows()
        return self._rows

    def unknown_tags(self) -> list[str]:
        if self._unknown is None:
            self._unknown = self.race.unknown_tags()
        return self._unknown


class ResultsCache:
    """``await cache.results(database, event)``: the event's ``EventResults``, current as of now."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.full_builds = 0  # whole events scored from all their reads
        self.live_reads_applied = 0  # reads taken in from the live feed
        self._entries: OrderedDict[int, EventResults] = OrderedDict()
        self._building: dict[int, list[Deferred]] = {}
        self._arrived_while_building: dict[int, list[tuple[int, TagRead]]] = {}
        self._live: LiveReads | None = None
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

    async def results(self, database: Database, event: Event) -> EventResults:
        version = await results_queries.event_version(database, event)
        entry = self._entries.get(event.id)
        if entry is not None and entry.version == version:
            self._entries.move_to_end(event.id)
            for read_id, read in await results_queries.event_reads(database, event, entry.high_id):
                entry.apply(read_id, read)
            return entry
        return await self._build(database, event, version)

    async def _build(self, database: Database, event: Event, version: tuple[Any, ...]) -> EventResults:
        waiters = self._building.get(event.id)
        if waiters is not None:  # someone is building it already: wait for theirs
            waiter: Deferred[EventResults] = Deferred()
            waiters.append(waiter)
            return await waiter
        self._building[event.id] = []
        self._arrived_while_building[event.id] = []
        try:
            settings = await results_queries.stored_settings(database, event)
            roster = await results_queries.event_roster(database, event)
            reads = await results_queries.event_reads(database, event)
            entry = EventResults(event, settings, roster, version)
            for read_id, read in reads:
                entry.apply(read_id, read)
            for read_id, read in self._arrived_while_building.get(event.id, ()):
                entry.apply(read_id, read)
        except BaseException as error:
            self._arrived_while_building.pop(event.id, None)
            for waiter in self._building.pop(event.id, []):
                if not waiter.called:
                    waiter.errback(error)
            raise
        self._arrived_while_building.pop(event.id, None)
        self.full_builds += 1
        log.info("results of event {event} built from {reads} reads and {runners} runners",
                 event=event.id, reads=len(reads), runners=len(roster))
        self._entries[event.id] = entry
        self._entries.move_to_end(event.id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        for waiter in self._building.pop(event.id, []):
            if not waiter.called:
                waiter.callback(entry)
        return entry
