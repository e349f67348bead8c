"""The live stream: reads inserted into a real PostgreSQL (as another process would) reach
``/stream`` over a real port through LISTEN/NOTIFY; resume, keepalive, disconnects; and
LiveReads' coalescing, late commits and reconnects."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone
from types import SimpleNamespace

import psycopg2
import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, task
from twisted.internet.endpoints import serverFromString
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionLost
from twisted.web.test.requesthelper import DummyRequest

from chronotrack.storage.database import Database
from chronotrack.storage.migrations import migrate
from tests import rows
from tests.postgres import query
from tests.waiting import wait_until
from web import sse
from web.app import DisplayApp
from web.live import LATE_COMMIT_WINDOW, LiveReads, ReadBatch, notified_ids
from web.queries import DisplayRead
from web.service import WebService
from web.sse import EventStream

KEEPALIVE_FOR_TESTS = 0.1  # seconds; the product default is 15


# Helpers


def insert_session(dsn: str) -> int:
    return rows.insert_session(dsn)


def insert_read_sql(tag: str, location: str = "finish", time: str = "08:01:02.35") -> tuple[str, tuple]:
    return (f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'connection:test',
               (SELECT coalesce(max(sequence_number), 0) + 1 FROM timing_reads), %s, %s, %s,
               '2024-05-04 08:01:02.35+00', 1, '0F2A38', 1, 'raw' RETURNING id""", (location, tag, time))


def insert_read(dsn: str, tag: str, location: str = "finish", time: str = "08:01:02.35") -> int:
    return query(dsn, *insert_read_sql(tag, location, time))[0][0]


class HangUp(Exception):
    """Raised from the body collector to drop the connection, like a closed browser tab."""


class EventCollector:
    """Parses a Server-Sent Events byte stream as treq.collect hands it over."""

    def __init__(self) -> None:
        self.buffer = b""
        self.events: list[dict] = []
        self.comments: list[str] = []
        self.retry: int | None = None
        self.hang_up = False

    def __call__(self, data: bytes) -> None:
        if self.hang_up:
            raise HangUp()
        self.buffer += data
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            event = {}
            for line in block.decode("utf-8").split("\n"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "":
                    self.comments.append(value)
                elif field == "retry":
                    self.retry = int(value)
                else:
                    event[field] = value
            if "data" in event:
                self.events.append({"id": int(event["id"]), "data": json.loads(event["data"])})

    @property
    def ids(self) -> list[int]:
        return [event["id"] for event in self.events]


async def open_stream(url: str, headers: dict | None = None):
    response = await treq.get(url, headers=headers, unbuffered=True, persistent=False)
    collector = EventCollector()
    finished = treq.collect(response, collector)
    finished.addErrback(lambda failure: failure.trap(HangUp))
    await wait_until(lambda: "connected" in collector.comments)
    return response, collector, finished


@pytest.fixture
def database(database, pg_dsn):
    """The shared migrated database (conftest), with a session open."""
    insert_session(pg_dsn)
    return database


@pytest_twisted.async_yield_fixture
async def served(database):
    """The app on a real port; yields (base URL, DisplayApp)."""
    display = DisplayApp(reactor, SimpleNamespace(database=database), keepalive_interval=KEEPALIVE_FOR_TESTS)
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}", display
    await service.stopService()


# /stream over a real port


@pytest_twisted.ensureDeferred
async def test_a_read_inserted_in_the_database_arrives_as_an_event_with_the_runner_name(pg_dsn, served):
    base, _ = served
    rows.insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    response, events, finished = await open_stream(base + "/stream")
    read_id = insert_read(pg_dsn, "101", "finish", "08:01:02.35")
    await wait_until(lambda: events.events)
    assert events.ids == [read_id]
    data = events.events[0]["data"]
    assert data["id"] == read_id
    assert data["bib"] == "101" and data["name"] == "Ada Lovelace"
    assert data["location"] == "finish" and data["time"] == "08:01:02.35"
    assert data["lap"] == 1 and data["reader"] == "0F2A38" and data["gator"] == 1
    assert data["gun_time"] is False and data["timestamp"].startswith("2024-05-04")


@pytest_twisted.ensureDeferred
async def test_stream_headers_keep_proxies_from_buffering_or_caching(served):
    base, _ = served
    response, events, _ = await open_stream(base + "/stream")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/event-stream")
    assert response.headers.getRawHeaders("cache-control") == ["no-cache"]
    assert response.headers.getRawHeaders("x-accel-buffering") == ["no"]
    assert events.retry == 3000


@pytest_twisted.ensureDeferred
async def test_gun_time_event_is_marked_as_race_start(pg_dsn, served):
    base, _ = served
    _, events, _ = await open_stream(base + "/stream")
    insert_read(pg_dsn, "guntime", "start", "08:00:00.00")
    await wait_until(lambda: events.events)
    assert events.events[0]["data"]["gun_time"] is True and events.events[0]["data"]["name"] is None


@pytest_twisted.ensureDeferred
async def test_last_event_id_header_resends_missed_reads_then_goes_live(pg_dsn, served):
    base, _ = served
    seen = insert_read(pg_dsn, "101")
    missed = [insert_read(pg_dsn, "102"), insert_read(pg_dsn, "103")]
    _, events, _ = await open_stream(base + "/stream", headers={"Last-Event-ID": str(seen)})
    await wait_until(lambda: len(events.events) >= 2)
    assert events.ids == missed
    live = insert_read(pg_dsn, "104")
    await wait_until(lambda: len(events.events) >= 3)
    assert events.ids == missed + [live]  # nothing twice, nothing skipped


@pytest_twisted.ensureDeferred
async def test_last_event_id_query_parameter_resumes_too(pg_dsn, served):
    base, _ = served
    seen = insert_read(pg_dsn, "101")
    missed = insert_read(pg_dsn, "102")
    _, events, _ = await open_stream(base + f"/stream?last_event_id={seen}")
    await wait_until(lambda: events.events)
    assert events.ids == [missed]


@pytest_twisted.ensureDeferred
async def test_last_event_id_header_wins_over_the_query_parameter_on_reconnect(pg_dsn, served):
    base, _ = served
    page_start = insert_read(pg_dsn, "101")
    seen_live = insert_read(pg_dsn, "102")
    missed = insert_read(pg_dsn, "103")
    # What EventSource sends when it reconnects by itself: the old URL, the newest id.
    _, events, _ = await open_stream(base + f"/stream?last_event_id={page_start}",
                                     headers={"Last-Event-ID": str(seen_live)})
    await wait_until(lambda: events.events)
    assert events.ids == [missed]


@pytest_twisted.ensureDeferred
async def test_resume_is_bounded_to_the_newest_thousand_reads_oldest_first(pg_dsn, served):
    base, _ = served
    query(pg_dsn, f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'bulk', n, 'finish', n::text, '08:00:00.00',
               now(), 1, 'AAAAAA', 1, 'raw' FROM generate_series(1, 1005) AS n""")
    highest = query(pg_dsn, "SELECT max(id) FROM timing_reads")[0][0]
    _, events, _ = await open_stream(base + "/stream", headers={"Last-Event-ID": "0"})
    await wait_until(lambda: len(events.events) >= 1000)
    assert events.ids == list(range(highest - 999, highest + 1))


@pytest_twisted.ensureDeferred
async def test_bad_last_event_id_query_parameter_is_a_400(served):
    base, _ = served
    response = await treq.get(base + "/stream?last_event_id=yesterday")
    assert response.code == 400
    assert (await response.json())["parameter"] == "last_event_id"


@pytest_twisted.ensureDeferred
async def test_idle_stream_gets_keepalive_comments(served):
    base, _ = served  # keepalive interval injected: 0.1 s
    _, events, _ = await open_stream(base + "/stream")
    await wait_until(lambda: events.comments.count("keepalive") >= 2)
    assert events.events == []


@pytest_twisted.ensureDeferred
async def test_client_disconnect_unsubscribes_at_once(pg_dsn, served):
    base, display = served
    _, events, finished = await open_stream(base + "/stream")
    _, other, _ = await open_stream(base + "/stream")
    live = display.live_reads()
    assert live.subscriber_count == 2 and display.open_streams == 2
    events.hang_up = True  # the next bytes (a keepalive) find the tab closed
    await finished
    await wait_until(lambda: live.subscriber_count == 1)
    assert display.open_streams == 1
    read_id = insert_read(pg_dsn, "101")
    await wait_until(lambda: other.events)  # the remaining stream still works
    assert other.ids == [read_id]


@pytest_twisted.ensureDeferred
async def test_stopping_the_web_service_ends_open_streams(database):
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    _, _, finished = await open_stream(f"http://127.0.0.1:{port.getHost().port}/stream")
    await service.stopService()
    await finished  # the response ended cleanly
    assert display.open_streams == 0


# The pure part of the stream, on a task.Clock


class FakeLive:
    def __init__(self) -> None:
        self.subscribers = []

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def deliver(self, reads):
        batch = ReadBatch(reads)  # what LiveReads hands every subscriber: one object
        for callback in list(self.subscribers):
            callback(batch)


class FakeTransport:
    aborted = False

    def abortConnection(self):
        self.aborted = True


class StreamRequest(DummyRequest):
    """A DummyRequest that takes a push producer the way twisted.web's Request does
    (DummyRequest's own registerProducer only drives pull producers)."""

    def __init__(self):
        super().__init__([b"stream"])
        self.producer = None
        self.channel = object()
        self.transport = FakeTransport()

    def registerProducer(self, producer, streaming):
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    @property
    def bytes_written(self) -> int:
        return sum(map(len, self.written))


def test_keepalive_every_interval_and_none_after_the_client_left():
    clock = task.Clock()
    request = StreamRequest()
    live = FakeLive()
    stream = EventStream(request, live, clock, catch_up=None, last_event_id=None)
    done = stream.run()
    written = lambda: b"".join(request.written)  # noqa: E731
    assert written().count(b": keepalive\n\n") == 0
    clock.advance(15)
    assert written().count(b": keepalive\n\n") == 1
    clock.advance(15)
    assert written().count(b": keepalive\n\n") == 2
    request.processingFailed(Failure(ConnectionLost()))  # the browser went away
    assert live.subscribers == []
    assert not clock.getDelayedCalls()  # keepalive cancelled
    assert done.called
    done.addErrback(lambda failure: None)


def test_cancelling_the_stream_unsubscribes():
    clock = task.Clock()
    request = StreamRequest()
    live = FakeLive()
    done = EventStream(request, live, clock, catch_up=None, last_event_id=None).run()
    done.cancel()  # what Klein does when the connection is lost
    assert live.subscribers == [] and not clock.getDelayedCalls()
    assert request.producer is None
    done.addErrback(lambda failure: None)


def display_read(read_id: int, location: str = "finish", bib: str = "101") -> DisplayRead:
    return DisplayRead(id=read_id, session_id=1, bib=bib, location=location, time="08:01:02.35",
                       timestamp=datetime(2024, 5, 4, 8, 1, 2, tzinfo=timezone.utc), lap=1,
                       reader="0F2A38", gator=1, first_name=None, last_name=None)


def test_a_stream_registers_as_the_push_producer_of_its_response():
    request = StreamRequest()
    stream = EventStream(request, FakeLive(), task.Clock(), catch_up=None, last_event_id=None)
    stream.run()
    assert request.producer is stream
    stream.close(finish=True)
    assert request.producer is None


def test_a_client_that_stops_reading_is_dropped_past_the_pending_limit_and_unsubscribed():
    clock = task.Clock()
    request, live = StreamRequest(), FakeLive()
    stream = EventStream(request, live, clock, catch_up=None, last_event_id=None, max_pending=10_000)
    done = stream.run()
    live.deliver([display_read(1)])
    request.producer.pauseProducing()  # the transport's buffer is full: the client is not reading
    written_when_paused = request.bytes_written
    next_id = 2
    while not request.transport.aborted:
        live.deliver([display_read(next_id)])
        next_id += 1
        assert next_id < 1000, "never dropped"
    # Nothing more was handed to the transport than the limit allows, and nothing is kept.
    assert request.bytes_written - written_when_paused <= 10_000
    assert live.subscribers == [] and not clock.getDelayedCalls() and request.producer is None
    assert stream.dropped and not done.called  # ends when the aborted connection is lost
    request.processingFailed(Failure(ConnectionLost()))
    assert done.called
    done.addErrback(lambda failure: None)


def test_a_client_that_catches_up_again_is_kept():
    request, live = StreamRequest(), FakeLive()
    stream = EventStream(request, live, task.Clock(), catch_up=None, last_event_id=None, max_pending=10_000)
    stream.run()
    for read_id in range(1, 200):
        if read_id % 20 == 0:
            stream.pauseProducing()
        if read_id % 20 == 10:
            stream.resumeProducing()  # the client read what was waiting
        live.deliver([display_read(read_id)])
    assert not request.transport.aborted and not stream.closed
    assert b"".join(request.written).count(b"\ndata: ") == 199
    stream.close(finish=True)


def test_one_delivery_is_encoded_once_for_all_streams(monkeypatch):
    calls = []
    original = sse.format_event
    monkeypatch.setattr(sse, "format_event", lambda read: calls.append(read.id) or original(read))
    live, clock = FakeLive(), task.Clock()
    requests = [StreamRequest() for _ in range(5)]
    streams = [EventStream(request, live, clock, catch_up=None, last_event_id=None) for request in requests]
    for stream in streams:
        stream.run()
    live.deliver([display_read(1), display_read(2)])
    assert calls == [1, 2]
    expected = original(display_read(1)) + original(display_read(2))
    assert all(request.written[-1] == expected for request in requests)
    for stream in streams:
        stream.close(finish=True)


def test_hostile_text_in_an_event_stays_one_json_event():
    hostile = '<script>alert("x")</script>\n\ndata: {"id": 666}\r\nid: 9'
    event = sse.format_event(display_read(7, location=hostile, bib=hostile))
    assert event.count(b"\n\n") == 1 and event.endswith(b"\n\n")  # one event, not two
    lines = event.decode("utf-8").split("\n")
    assert lines[0] == "id: 7" and lines[1].startswith("data: ")
    data = json.loads(lines[1][len("data: "):])
    assert data["location"] == hostile and data["bib"] == hostile


# LiveReads against the real database


class CountingDatabase:
    """The real Database, counting how many queries LiveReads has in flight at once."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.in_flight = 0
        self.most_in_flight = 0
        self.queries = 0

    def __getattr__(self, name):
        return getattr(self._database, name)

    def run_query(self, sql, params=None):
        self.in_flight += 1
        self.queries += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

        def done(result):
            self.in_flight -= 1
            return result

        return self._database.run_query(sql, params).addBoth(done)


@pytest_twisted.ensureDeferred
async def test_a_burst_of_notifies_is_fetched_one_query_at_a_time_and_each_read_delivered_once(pg_dsn, database):
    counting = CountingDatabase(database)
    live = LiveReads(counting)
    await live.start()
    await live.when_ready()
    delivered = []
    live.subscribe(lambda reads: delivered.extend(read.id for read in reads))
    connection = psycopg2.connect(pg_dsn)
    try:
        ids = []
        for n in range(40):  # 40 separate commits, 40 notifies, while the reactor is busy here
            with connection.cursor() as cursor:
                cursor.execute(*insert_read_sql(str(n)))
                ids.append(cursor.fetchone()[0])
            connection.commit()
    finally:
        connection.close()
    await wait_until(lambda: len(delivered) >= 40)
    await task.deferLater(reactor, 0.2, lambda: None)
    assert delivered == ids
    assert counting.most_in_flight == 1
    assert counting.queries < 40  # coalesced, not one fetch per notify
    live.stop()


@pytest_twisted.ensureDeferred
async def test_reads_stored_while_nobody_watched_are_not_replayed_to_a_new_subscriber(pg_dsn, database):
    live = LiveReads(database)
    await live.start()
    await live.when_ready()
    before = insert_read(pg_dsn, "early")
    await wait_until(lambda: live.last_id == before)  # the notify moved the mark, without a fetch
    delivered = []
    live.subscribe(lambda reads: delivered.extend(read.id for read in reads))
    after = insert_read(pg_dsn, "late")
    await wait_until(lambda: delivered)
    assert delivered == [after]
    live.stop()


async def committed_after_a_higher_id(pg_dsn: str, database, slow_sql: tuple[str, tuple]):
    """Insert with ``slow_sql`` (so its ids come first) without committing; store another event's
    read from a second connection and commit that first; then commit the slow statement. Returns
    the ids LiveReads delivered once it has delivered them all and then nothing more, the slow
    statement's ids and the other read's id."""
    live = LiveReads(database)
    await live.start()
    await live.when_ready()
    delivered = []
    live.subscribe(lambda reads: delivered.extend(read.id for read in reads))
    slow, fast = psycopg2.connect(pg_dsn), psycopg2.connect(pg_dsn)
    try:
        with slow.cursor() as cursor:
            cursor.execute(*slow_sql)
            slow_ids = [row[0] for row in cursor.fetchall()]
        # The fast writer stores another event's read (as a second collector would): reads of one
        # event take that event's maintained-figure rows in turn (schema 0008), so a second read of
        # the same event would wait for the slow commit and never overtake it.
        rows.insert_session(pg_dsn, "Other race", event="Other race")
        with fast.cursor() as cursor:
            cursor.execute(*insert_read_sql("fast", location="start"))
            fast_id = cursor.fetchone()[0]
        fast.commit()
        await wait_until(lambda: fast_id in delivered)
        slow.commit()
        await wait_until(lambda: len(delivered) >= 1 + len(slow_ids), timeout=10)
        await task.deferLater(reactor, 0.3, lambda: None)  # nothing more, nothing twice
        return delivered, slow_ids, fast_id
    finally:
        slow.close()
        fast.close()
        live.stop()


@pytest_twisted.ensureDeferred
async def test_a_read_that_commits_after_a_higher_id_is_still_delivered(pg_dsn, database):
    delivered, [slow_id], fast_id = await committed_after_a_higher_id(pg_dsn, database, insert_read_sql("slow"))
    assert delivered == [fast_id, slow_id]


def test_a_notify_names_its_statement_s_lowest_and_highest_id_and_the_old_form_still_reads():
    assert notified_ids("17:5016") == (17, 5016)
    assert notified_ids("5016") == (5016 - LATE_COMMIT_WINDOW + 1, 5016)  # before schema 0018
    assert notified_ids("3") == (1, 3)
    for nonsense in ("", ":", "x:1", "9:3", "1:2:3", "high"):
        assert notified_ids(nonsense) is None


@pytest_twisted.ensureDeferred
async def test_a_whole_batch_that_commits_after_a_higher_id_is_delivered_to_its_first_read(pg_dsn, database):
    """A collector's statement of 1,500 reads commits after another collector's read of another
    event, which took a higher id: every one of the 1,500 still goes out, once (not only the
    last thousand ids below the late notify)."""
    batch = (f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name,
                                  tag_code, read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'connection:slow', n, 'finish', n::text,
               '08:01:02.35', '2024-05-04 08:01:02.35+00', 1, '0F2A38', 1, 'raw'
        FROM generate_series(1, 1500) AS n RETURNING id""", ())
    delivered, slow_ids, fast_id = await committed_after_a_higher_id(pg_dsn, database, batch)
    assert delivered == [fast_id, *sorted(slow_ids)]


@pytest_twisted.ensureDeferred
async def test_live_reads_come_back_after_the_database_restarts(private_postgres):
    server = private_postgres
    database = None
    try:
        dsn = await server.start()
        database = Database(reactor, dsn)
        assert await database.start()
        await migrate(database)
        insert_session(dsn)
        live = LiveReads(database)
        await live.start()
        await live.when_ready()
        delivered = []
        live.subscribe(lambda reads: delivered.extend(read.bib for read in reads))
        insert_read(dsn, "before")
        await wait_until(lambda: delivered == ["before"])

        await server.stop()
        await wait_until(lambda: not database.connected)
        await server.start()
        insert_read(dsn, "after")  # maybe before the LISTEN is back: the catch-up finds it
        await wait_until(lambda: "after" in delivered, timeout=60)
        assert delivered == ["before", "after"]
        live.stop()
    finally:
        if database is not None:
            database.close()


# Hostile clients over a real port


def insert_many_reads(dsn: str, count: int, location: str) -> list[int]:
    return [row[0] for row in query(dsn, f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'flood',
               (SELECT coalesce(max(sequence_number), 0) FROM timing_reads) + n, %s, n::text,
               '08:00:00.00', now(), 1, 'AAAAAA', 1, 'raw'
        FROM generate_series(1, {count}) AS n RETURNING id""", (location,))]


def stalled_stream_client(base: str) -> socket.socket:
    """A phone gone to sleep: asks for /stream, then never reads another byte."""
    host, port = base.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((host, int(port)))
    client.sendall(b"GET /stream HTTP/1.1\r\nHost: display.test\r\nAccept: text/event-stream\r\n\r\n")
    return client


def drained_to_the_end(client: socket.socket) -> bool:
    """Reads what the kernel kept for the client; True when the server closed or reset it."""
    client.setblocking(False)
    try:
        while client.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


@pytest_twisted.ensureDeferred
async def test_a_stalled_stream_client_is_dropped_with_bounded_memory_while_others_get_every_read(
        pg_dsn, served, monkeypatch):
    base, display = served
    streams: list[EventStream] = []
    original_run = EventStream.run

    def recording_run(self):
        streams.append(self)
        return original_run(self)

    monkeypatch.setattr(EventStream, "run", recording_run)
    _, healthy, _ = await open_stream(base + "/stream")
    stalled = stalled_stream_client(base)
    try:
        await wait_until(lambda: len(streams) == 2 and display.open_streams == 2)
        stalled_stream = streams[1]
        live = display.live_reads()
        inserted: list[int] = []
        location = "L" * 900  # about 1.2 KB an event: the kernel's buffers fill quickly
        for _ in range(100):  # at most 20,000 reads (24 MB); dropped long before
            inserted += insert_many_reads(pg_dsn, 200, location)
            await wait_until(lambda: healthy.ids[-1:] == inserted[-1:])
            if stalled_stream.dropped:
                break
        assert stalled_stream.dropped, "the stalled client was never dropped"
        # What we handed its full transport stayed within the limit, and then it was let go.
        assert 0 < stalled_stream.written_while_paused <= sse.MAX_PENDING_BYTES
        await wait_until(lambda: display.open_streams == 1 and live.subscriber_count == 1)
        assert stalled_stream.closed
        assert drained_to_the_end(stalled)
        # The healthy client kept every read, in order, and still does.
        more = insert_many_reads(pg_dsn, 50, "finish")
        await wait_until(lambda: healthy.ids[-1:] == more[-1:])
        assert healthy.ids == inserted + more
    finally:
        stalled.close()


@pytest_twisted.async_yield_fixture
async def served_with_two_streams(database):
    """The app on a real port, allowing two streams at once."""
    display = DisplayApp(reactor, SimpleNamespace(database=database), keepalive_interval=KEEPALIVE_FOR_TESTS)
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display,
                         max_stream_clients=2)
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}", display
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_past_the_most_stream_clients_new_ones_get_503_with_retry_after_and_the_others_stay(
        pg_dsn, served_with_two_streams):
    base, display = served_with_two_streams
    _, first, first_finished = await open_stream(base + "/stream")
    _, second, second_finished = await open_stream(base + "/stream")
    refused = await treq.get(base + "/stream", persistent=False)
    assert refused.code == 503
    assert refused.headers.getRawHeaders("retry-after") == ["10"]
    assert refused.headers.getRawHeaders("content-type") == ["application/json"]
    body = await refused.json()
    assert body["success"] is False and body["error"] == "too many live streams" and body["retry_after"] == 10
    assert display.open_streams == 2
    read_id = insert_read(pg_dsn, "101")
    await wait_until(lambda: first.ids == [read_id] and second.ids == [read_id])
    # Pages are not streams: they are served while the streams are full.
    page = await treq.get(base + "/api/timing/database-status", persistent=False)
    assert page.code == 200
    await page.content()
    # One leaves: a new client is let in.
    first.hang_up = True
    await first_finished
    await wait_until(lambda: display.open_streams == 1)
    _, third, third_finished = await open_stream(base + "/stream")
    later = insert_read(pg_dsn, "102")
    await wait_until(lambda: third.ids == [later] and second.ids == [read_id, later])
    second.hang_up = third.hang_up = True
    await second_finished
    await third_finished
