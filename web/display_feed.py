"""Each event's finish-screen feed: every new read turned into runner objects once, for every screen.

A screen must not compute anything per read, and a hundred phones watching the finish must
not cost a hundred lookups per read. So the web process keeps one ``EventFeed`` per event a
screen or announcer is open for:

- it is built once from the event's stored reads: paged by id and grouped per (location,
  tag) in PostgreSQL (``results_queries.runner_read_page``), so the web process sees about
  one row per crossing, never one per read, and never the whole event at once; the first
  crossings teach the projection, and the newest become the recent crossings below;
- it subscribes to ``LiveReads`` (the fan-out behind ``/stream``) and queues that event's
  new reads; the queue is worked through in order, one batch at a time;
- per batch it asks the results cache for the event's live table (which catches up on the
  reads itself, so the places and race times already include this read) and builds, per
  first crossing of a runner at a location, the contract's runner object in gun and in chip
  time (``web.display_runner``), encoded as one Server-Sent Event each;
- a screen's stream (``ScreenStream``) gets the encoded events of its time kind and its
  locations: the same bytes for every screen alike;
- the announcer's projection (``web.display_projection``) learns every split and finish.

The last ``RECENT_CROSSINGS`` crossings are kept: a page renders its recent finishers from
them, and a screen that reconnects (``Last-Event-ID``) is caught up from them.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections import deque
from datetime import datetime, timedelta, tzinfo
from typing import Any, Awaitable, Callable, Iterator

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG
from chronotrack.results.readlog import EPOCH, NAIVE_EPOCH, ONE_MICROSECOND, microseconds
from chronotrack.results import division_for
from chronotrack.storage.database import Database
from web import results_queries
from web.display_projection import ArrivalProjection
from web.display_runner import TIME_KINDS, FirstCrossings, runner_object
from web.live import LiveReads, ReadBatch
from web.queries import DisplayRead, Event
from web.results_cache import EventResults
from web.results_queries import RunnerReadPage
from web.roster import Participant
from web.thread_pool import in_thread_pool

log = Logger()

RECENT_CROSSINGS = 1000
# Feeds kept with no screen watching (a big event's feed holds its crossings: about 100 MB for
# 49,000 runners); those with a screen are kept however many.
MAX_FEEDS = 4
NOT_RUNNERS = (GUN_TIME_TAG, NEW_LOCATION_TAG)

ResultsOf = Callable[[Database, Event], Awaitable[EventResults]]


class Crossing:
    """One runner crossing one location, as every screen of a time kind receives it."""

    __slots__ = ("id", "location", "runners", "encoded")

    def __init__(self, read_id: int, location: str, runners: dict[str, dict[str, Any]]) -> None:
        self.id = read_id
        self.location = location
        self.runners = runners  # time kind -> runner object
        self.encoded = {kind: (f"id: {read_id}\ndata: "
                               f"{json.dumps(runner, separators=(',', ':'), ensure_ascii=False)}\n\n").encode("utf-8")
                        for kind, runner in runners.items()}


class ShownRunner:
    """A crossing in one time kind: what ``web.sse`` writes (its ``id`` and ``to_json()``)."""

    __slots__ = ("id", "runner")

    def __init__(self, read_id: int, runner: dict[str, Any]) -> None:
        self.id = read_id
        self.runner = runner

    def to_json(self) -> dict[str, Any]:
        return self.runner


class ScreenView:
    """What one screen shows of a feed: its time kind, and its locations (None: the finish)."""

    def __init__(self, feed: EventFeed, time_kind: str, locations: tuple[str, ...] | None) -> None:
        self.feed = feed
        self.time_kind = time_kind
        self.locations = frozenset(locations) if locations else None

    def shows(self, crossing: Crossing) -> bool:
        if self.locations is None:
            return crossing.location == self.feed.finish_location
        return crossing.location in self.locations

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` crossings this screen shows, newest first."""
        shown = []
        for crossing in reversed(self.feed.recent):
            if self.shows(crossing):
                shown.append(crossing.runners[self.time_kind])
                if len(shown) == limit:
                    break
        return shown

    def batch(self, crossings: list[Crossing]) -> ReadBatch:
        shown = [crossing for crossing in crossings if self.shows(crossing)]
        mine = ReadBatch(ShownRunner(crossing.id, crossing.runners[self.time_kind]) for crossing in shown)
        mine.encoded = b"".join(crossing.encoded[self.time_kind] for crossing in shown)
        return mine

    # What an EventStream needs of a "live" source, and its catch-up

    def subscribe(self, callback: Callable[[ReadBatch], object]) -> Callable[[], None]:
        def deliver(crossings: list[Crossing]) -> None:
            mine = self.batch(crossings)
            if mine:
                callback(mine)

        return self.feed.subscribe(deliver)

    async def missed(self, after_id: int) -> ReadBatch:
        return self.batch([crossing for crossing in self.feed.recent if crossing.id > after_id])


class CrossingLog:
    """Every first crossing of an event, in the order learnt, for relearning the projection when
    the finish, the start or the gun changes: (read id, bib, location, timestamp, read time).

    Kept as columns, since a big race has a couple of hundred thousand crossings: ids and times
    in ``array('q')`` (the time as microseconds since the epoch and its zone as an index into the
    few zones seen, so each timestamp comes back exactly as given), bibs and locations shared
    strings, and the read time text; about 100 bytes a crossing instead of about 230 as tuples."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._micros = array("q")
        self._zones = array("i")  # index into _zone_list
        self._locations = array("i")  # index into _location_list
        self._bibs: list[str] = []
        self._read_times: list[str] = []
        self._zone_list: list[tzinfo | None] = []
        self._location_list: list[str] = []
        self._zone_index: dict[tzinfo | None, int] = {}
        self._location_index: dict[str, int] = {}
        self._shared: dict[str, str] = {}

    @staticmethod
    def _index(value: Any, values: list, indexes: dict) -> int:
        index = indexes.get(value)
        if index is None:
            index = indexes[value] = len(values)
            values.append(value)
        return index

    def append(self, read_id: int, bib: str, location: str, timestamp: datetime, read_time: str) -> None:
        self._ids.append(read_id)
        self._micros.append(microseconds(timestamp))
        self._zones.append(self._index(timestamp.tzinfo, self._zone_list, self._zone_index))
        self._locations.append(self._index(location, self._location_list, self._location_index))
        self._bibs.append(self._shared.setdefault(bib, bib))
        self._read_times.append(read_time)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> tuple[int, str, str, datetime, str]:
        zone = self._zone_list[self._zones[index]]
        moment = (NAIVE_EPOCH if zone is None else EPOCH) + timedelta(microseconds=self._micros[index])
        if zone is not None:
            moment = moment.astimezone(zone)
        return (self._ids[index], self._bibs[index], self._location_list[self._locations[index]], moment,
                self._read_times[index])

    def __iter__(self) -> Iterator[tuple[int, str, str, datetime, str]]:
        """The crossings logged so far (not those appended while iterating)."""
        return (self[index] for index in range(len(self)))

    def newest(self, count: int) -> Iterator[tuple[int, str, str, datetime, str]]:
        """The last ``count`` crossings, oldest first."""
        return (self[index] for index in range(max(0, len(self) - count), len(self)))

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, CrossingLog) else NotImplemented


class HistoryFirsts:
    """``FirstCrossings``' duplicate window applied to an event's stored reads as PostgreSQL
    grouped them (``results_queries.runner_read_page``): one int per (runner, location), not one
    object per read. Each (runner, location)'s reads come in id order, page after page, as the
    live path takes them, so the same reads are first crossings."""

    def __init__(self, window: timedelta) -> None:
        self.window_us = window // ONE_MICROSECOND
        self.latest: dict[tuple[str, str], int] = {}  # (bib, location) -> its latest first crossing, in us

    def take_page(self, page: RunnerReadPage) -> list[tuple[int, str, str]]:
        """The page's first crossings as (read id, bib, location), in id order (any thread)."""
        swap = sys.byteorder == "little"  # PostgreSQL packs big-endian
        window, latest = self.window_us, self.latest
        firsts: list[tuple[int, str, str]] = []
        for location, tag, packed_ids, packed_micros in page.groups:
            ids, micros = array("q"), array("q")
            ids.frombytes(packed_ids)
            micros.frombytes(packed_micros)
            if swap:
                ids.byteswap()
                micros.byteswap()
            first = latest.get((tag, location))
            for index, moment in enumerate(micros):
                if first is None or abs(moment - first) > window:
                    first = moment
                    firsts.append((ids[index], tag, location))
            if first is not None:
                latest[(tag, location)] = first
        firsts.sort()
        return firsts

    def hand_over(self, first_crossings: FirstCrossings) -> None:
        """Let ``first_crossings`` (the live path's) go on from here: the same window per runner and location."""
        for (bib, location), moment in self.latest.items():
            first_crossings.is_new(bib, location, EPOCH + timedelta(microseconds=moment))
        self.latest = {}


class EventFeed:
    """One event's crossings as runner objects, and its announcer projection."""

    def __init__(self, database: Database, live: LiveReads, event: Event, results_of: ResultsOf) -> None:
        self.database = database
        self.live = live
        self.event = event
        self._results_of = results_of
        self.recent: deque[Crossing] = deque(maxlen=RECENT_CROSSINGS)
        self.projection = ArrivalProjection()
        self.finish_location: str | None = None
        self._crossing_log = CrossingLog()  # every first crossing: the projection is rebuilt from it
        self._context: tuple | None = None  # (finish, start, gun) the projection was learnt with
        self._approaching: list[dict[str, Any]] = []
        self._approaching_key: tuple | None = None
        self.last_read_id = 0
        self.crossings_built = 0  # runner objects made: once per crossing, however many screens
        self.page_reads = results_queries.PAGE_READS  # reads per page of the history
        self._entry: EventResults | None = None
        self._roster: dict[str, Participant] = {}
        self._first = FirstCrossings(timedelta(seconds=60))
        self._subscribers: list[Callable[[list[Crossing]], object]] = []
        self._queue: list[DisplayRead] = []
        self._working = False
        self._unsubscribe: Callable[[], None] | None = None
        self._ready: Deferred[None] | None = None
        self._outcome: Failure | bool | None = None
        self._waiters: list[Deferred[None]] = []

    def start(self) -> Deferred[None]:
        """Build from the event's reads so far (once), then follow the live feed.

        Every caller gets a Deferred of its own: the build's outcome (or its failure) for each.
        """
        if self._ready is None:
            self._unsubscribe = self.live.subscribe(self._new_reads)
            self._ready = ensureDeferred(self._build())
            self._ready.addBoth(self._built)
        if self._outcome is not None:
            return fail(self._outcome) if isinstance(self._outcome, Failure) else succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def _built(self, outcome: Any) -> None:
        self._outcome = outcome if isinstance(outcome, Failure) else True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.called:
                continue
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(None)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._subscribers.clear()

    def approaching(self, limit: int) -> list[dict[str, Any]]:
        """The announcer's list, sorted once per change of the projection, whoever asks."""
        key = (id(self.projection), self.projection.version, limit)
        if self._approaching_key != key:
            self._approaching = self.projection.approaching(limit)
            self._approaching_key = key
        return self._approaching

    def subscribe(self, callback: Callable[[list[Crossing]], object]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def _build(self) -> None:
        self._working = True
        try:
            entry = await self._current_results()
            await self._take_entry(entry)
            await self._learn_history(entry)
            self.last_read_id = max(self.last_read_id, entry.high_id)
        finally:
            self._working = False
        await self._work()

    async def _current_results(self) -> EventResults:
        """The event's results with every read taken in the race: a screen shows a new finisher's
        place and time at once, while the results pages may keep serving an answer for their
        freshness window (``EventResults.up_to_date``)."""
        entry = await self._results_of(self.database, self.event)
        await entry.up_to_date()
        return entry

    def _in_thread(self, work: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """A big event's history takes a second or more: off the reactor thread when there is a pool.
        Nothing else touches the feed meanwhile: live reads wait in the queue, requests wait for start()."""
        return in_thread_pool(getattr(self.database, "reactor", None), work, *args)

    async def _learn_history(self, entry: EventResults) -> None:
        """The event's reads the results were built from (ids up to ``entry.high_id``), page by page
        as PostgreSQL grouped them: the first crossings (with their read time, one row each) go
        into the crossing log, the projection is learnt from it once, and the newest
        ``RECENT_CROSSINGS`` become the screens' recent crossings. The same outcome as taking the
        reads one by one in id order (``_work``), without one Python object per read."""
        sessions = await results_queries.event_sessions(self.database, self.event)
        history = HistoryFirsts(self._first.window)
        after = 0
        while after < entry.high_id:
            page = await results_queries.runner_read_page(self.database, self.event, sessions, after, entry.high_id,
                                                          self.page_reads)
            firsts = await self._in_thread(history.take_page, page) if page.groups else []
            if firsts:
                stored = await results_queries.read_times_of(self.database, self.event, sessions,
                                                             [read_id for read_id, _, _ in firsts])
                await self._in_thread(self._log_firsts, firsts, stored)
            after = page.last_id
            if page.reads < self.page_reads:
                break
        await self._in_thread(self._learnt, history, entry)

    def _log_firsts(self, firsts: list[tuple[int, str, str]], stored: dict[int, tuple[str, Any]]) -> None:
        """A page's first crossings into the crossing log, in id order (any thread)."""
        for read_id, bib, location in firsts:
            if read_id in stored:  # else gone meanwhile (its session deleted)
                read_time, timestamp = stored[read_id]
                self._crossing_log.append(read_id, bib, location, timestamp, read_time)

    def _learnt(self, history: HistoryFirsts, entry: EventResults) -> None:
        """After the history's last page (any thread): the projection, the recent crossings, and the
        duplicate window handed on to the live reads."""
        history.hand_over(self._first)
        self._relearn(entry)
        for crossing in self._crossing_log.newest(RECENT_CROSSINGS):
            self.recent.append(self._crossing(*crossing, entry))

    async def _take_entry(self, entry: EventResults) -> None:
        if entry is not self._entry:  # built afresh: the roster or the settings changed
            self._entry = entry
            self._roster = {runner.bib: runner for runner in await results_queries.event_roster(self.database,
                                                                                                  self.event)}
            self._first.window = timedelta(seconds=entry.settings.duplicate_window_seconds)
        self.finish_location = entry.race.finish_location

    def _new_reads(self, reads: list[DisplayRead]) -> None:
        mine = [read for read in reads if read.event_id == self.event.id and read.bib not in NOT_RUNNERS]
        if mine:
            self._queue.extend(mine)
            if not self._working:
                ensureDeferred(self._work()).addErrback(
                    lambda failure: log.failure("the finish-screen feed of event {event} failed", failure,
                                                event=self.event.id))

    async def _work(self) -> None:
        if self._working:
            return
        self._working = True
        try:
            while self._queue:
                # No cut-off by id: a late commit (two controllers' batches) arrives below reads
                # already shown, and must still be shown; a read seen twice is the same first
                # crossing (same tag, mat and time), which FirstCrossings turns away.
                batch, self._queue = self._queue, []
                try:
                    entry = await self._current_results()
                    await self._take_entry(entry)
                    if self._crossing_log and self._context_of(entry) != self._context:
                        await self._in_thread(self._relearn, entry)  # a big event takes a while
                except BaseException:
                    self._queue[:0] = batch  # kept for the next delivery (the database may be back by then)
                    raise
                crossings = []
                for read in batch:
                    crossing = self._learn(read.id, read.bib, read.location, read.timestamp, read.time, entry,
                                           read=read)
                    if crossing is not None:
                        crossings.append(crossing)
                self.last_read_id = max(self.last_read_id, max(read.id for read in batch))
                if crossings:
                    self.recent.extend(crossings)
                    for callback in list(self._subscribers):
                        try:
                            callback(crossings)
                        except Exception:
                            log.failure("a finish-screen stream failed")
        finally:
            self._working = False

    def _learn(self, read_id, bib, location, timestamp, read_time, entry: EventResults,
               read: DisplayRead | None = None) -> Crossing | None:
        """Take one runner read in: the projection learns it; a first crossing becomes a Crossing."""
        if not self._first.is_new(bib, location, timestamp):
            return None
        self._crossing_log.append(read_id, bib, location, timestamp, read_time)
        if self._context_of(entry) != self._context:
            self._relearn(entry)
        else:
            self._project(self.projection, read_id, bib, location, timestamp, read_time, entry)
        return self._crossing(read_id, bib, location, timestamp, read_time, entry, read)

    def _crossing(self, read_id, bib, location, timestamp, read_time, entry: EventResults,
                  read: DisplayRead | None = None) -> Crossing:
        """A first crossing's runner objects, in every time kind (with the result when it is the finish)."""
        race = entry.race
        row = race.row(bib) if location == race.finish_location else None
        self.crossings_built += 1
        return Crossing(read_id, location, self._runners(read_id, bib, location, timestamp, read_time, row, read))

    def _project(self, projection: ArrivalProjection, read_id, bib, location, timestamp, read_time,
                 entry: EventResults) -> None:
        race = entry.race
        if race.gun_time is None or location == race.start_location:
            return
        elapsed = (timestamp - race.gun_time).total_seconds()
        if location == race.finish_location:
            projection.finish(bib, elapsed)
        else:
            projection.split(bib, location, elapsed,
                             lambda: self._runners(read_id, bib, location, timestamp, read_time, None)["gun"])

    @staticmethod
    def _context_of(entry: EventResults) -> tuple:
        return entry.race.finish_location, entry.race.start_location, entry.race.gun_time

    def _relearn(self, entry: EventResults) -> None:
        """Learn every crossing again, into a new projection swapped in whole (readers never see
        one half built). Until a finish read arrives a split looks like the finish (the results'
        rule), and a new gun time moves every elapsed time. Any thread (see ``_work``)."""
        projection = ArrivalProjection(self.projection.version + 1)
        for crossing in self._crossing_log:
            self._project(projection, *crossing, entry)
        self._context = self._context_of(entry)
        self.projection = projection

    def _runners(self, read_id, bib, location, timestamp, read_time, row, read: DisplayRead | None = None):
        if read is None:
            read = DisplayRead(read_id, 0, bib, location, read_time, timestamp, 0, "", 0, None, None)
        participant = self._roster.get(bib)
        division = division_for(participant, self._entry.race.settings) if self._entry is not None else None
        return {kind: runner_object(read, participant, row, kind, division) for kind in TIME_KINDS}


class ScreenFeeds:
    """The feeds of the events screens are open for, at most ``MAX_FEEDS`` (least recently asked first out)."""

    def __init__(self, results_of: ResultsOf) -> None:
        self._results_of = results_of
        self._feeds: dict[int, EventFeed] = {}

    async def feed(self, database: Database, live: LiveReads, event: Event) -> EventFeed:
        feed = self._feeds.pop(event.id, None)
        if feed is not None and (feed.live is not live or feed.database is not database):
            feed.stop()
            feed = None
        if feed is None:
            feed = EventFeed(database, live, event, self._results_of)
        self._feeds[event.id] = feed
        while len(self._feeds) > MAX_FEEDS:
            oldest = next(iter(self._feeds))
            if not self._feeds[oldest]._subscribers:
                self._feeds.pop(oldest).stop()
            else:
                break
        try:
            await feed.start()
        except BaseException:
            if self._feeds.get(event.id) is feed:  # a later request builds it afresh
                del self._feeds[event.id]
            feed.stop()
            raise
        return feed

    def stop_all(self) -> None:
        for feed in self._feeds.values():
            feed.stop()
        self._feeds.clear()
