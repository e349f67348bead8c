"""Tests of the CTP01 server protocol over a StringTransport, with time driven by a Clock.

They assert the exact lines written and when, and what reaches the store.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure

from chronotrack.ctp01 import HandshakeSettings
from chronotrack.protocol import CTP01ServerFactory, CTP01ServerProtocol
from chronotrack.reads import ReadSource
from tests.memory_store import MemoryReadStore

DENVER = ZoneInfo("America/Denver")
RACE_MORNING = datetime(2024, 7, 20, 6, 30, tzinfo=DENVER).timestamp()
GREETING = "SimpleClient~0.5.0~CTP01"
HANDSHAKE = [
    "ChronoTrackHub~0.1.0~6",
    "stream-mode=push",
    "time-format=iso",
    "location=multi",
    "guntimes=true",
    "newlocations=true",
    "connection-id=true",
    "geteventinfo",
    "getlocations",
    "getconnectionid",
]
READ = "CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1"
TOLERANCE = 0.001

FAST = HandshakeSettings(greeting_delay=0, setting_delay=0, command_delay=0,
                         event_timezone=DENVER)
DEFAULT_DELAYS = HandshakeSettings(event_timezone=DENVER)


class Controller:
    """One simulated controller connection to a factory shared between tests' controllers."""

    def __init__(self, factory: CTP01ServerFactory, port: int = 40000) -> None:
        self.factory = factory
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.2.3", port))
        self.protocol: CTP01ServerProtocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)

    def feed(self, *lines: str, end: bytes = b"\r\n") -> None:
        for line in lines:
            self.protocol.dataReceived(line.encode("utf-8") + end)

    def sent(self) -> list[str]:
        """Lines written since the last call; every one must end in CR LF."""
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(b"\r\n"), data
        return data.decode("utf-8").split("\r\n")[:-1]

    def handshake(self, locations: tuple[str, ...] = ("start", "finish"),
                  connection_id: str | None = "CONN1") -> list[str]:
        """Greet and answer every handshake command (zero delays); returns what followed."""
        self.feed(GREETING)
        assert self.sent() == HANDSHAKE
        self.feed("ack~geteventinfo~Boston~E1~Finish area")
        self.feed("~".join(("ack", "getlocations") + locations))
        if connection_id is None:
            self.feed("err~getconnectionid~not supported")
        else:
            self.feed(f"ack~getconnectionid~{connection_id}")
        return self.sent()

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone("closed by test")))


def make_factory(settings: HandshakeSettings = FAST, store: MemoryReadStore | None = None,
                 start: float = RACE_MORNING) -> CTP01ServerFactory:
    clock = Clock()
    clock.advance(start)
    return CTP01ServerFactory(store or MemoryReadStore(), clock, settings)


def step(clock: Clock, controller: Controller, due_in: float) -> list[str]:
    """Advance to just before ``due_in`` (nothing may be sent) and just past it."""
    clock.advance(due_in - TOLERANCE)
    assert controller.sent() == [], f"sent before {due_in} s"
    clock.advance(2 * TOLERANCE)
    return controller.sent()


@pytest.fixture
def log_events():
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


# --- handshake timing --------------------------------------------------------------------


def test_handshake_lines_go_out_at_the_configured_delays():
    """Reply 0.5 s after the greeting, settings 0.1 s apart, commands 0.2 s apart."""
    factory = make_factory(DEFAULT_DELAYS)
    controller = Controller(factory)
    controller.feed(GREETING)
    assert controller.sent() == []
    assert step(factory.clock, controller, 0.5) == ["ChronoTrackHub~0.1.0~6"]
    for line in HANDSHAKE[1:7]:
        assert step(factory.clock, controller, 0.1) == [line]
    for line in HANDSHAKE[7:]:
        assert step(factory.clock, controller, 0.2) == [line]
    factory.clock.advance(1.0)
    assert controller.sent() == [], "start must wait for the replies"


def test_zero_delays_send_the_whole_handshake_at_once():
    controller = Controller(make_factory(FAST))
    controller.feed(GREETING)
    assert controller.sent() == HANDSHAKE


def test_partial_zero_delays_keep_line_order():
    """Zero setting delay: the settings ride with the greeting reply, in order."""
    settings = HandshakeSettings(greeting_delay=0.5, setting_delay=0, command_delay=0.2,
                                 event_timezone=DENVER)
    factory = make_factory(settings)
    controller = Controller(factory)
    controller.feed(GREETING)
    assert step(factory.clock, controller, 0.5) == HANDSHAKE[:7]
    assert step(factory.clock, controller, 0.2) == ["geteventinfo"]


def test_pushmode_ack_setting_is_sent_when_configured():
    settings = HandshakeSettings(greeting_delay=0, setting_delay=0, command_delay=0,
                                 pushmode_ack=True, event_timezone=DENVER)
    controller = Controller(make_factory(settings))
    controller.feed(GREETING)
    sent = controller.sent()
    assert sent[0] == "ChronoTrackHub~0.1.0~7"
    assert sent[7] == "pushmode-ack=true"


# --- starting the stream ---------------------------------------------------------------


def test_start_resumes_known_locations_and_starts_new_ones_from_the_beginning():
    store = MemoryReadStore(resume={"connection:CONN1": {"start": 41}})
    controller = Controller(make_factory(FAST, store))
    assert controller.handshake(("start", "finish")) == ["start~start~42", "start~finish"]
    assert store.resume_queries == ["connection:CONN1"]


def test_start_commands_are_spaced_by_the_command_delay():
    store = MemoryReadStore(resume={"connection:CONN1": {"start": 41}})
    factory = make_factory(DEFAULT_DELAYS, store)
    controller = Controller(factory)
    controller.feed(GREETING)
    factory.clock.pump([0.05] * 40)  # each line is timed from the one before
    assert controller.sent() == HANDSHAKE
    controller.feed("ack~geteventinfo~Boston~E1~x", "ack~getlocations~start~finish",
                    "ack~getconnectionid~CONN1")
    assert step(factory.clock, controller, 0.2) == ["start~start~42"]
    assert step(factory.clock, controller, 0.2) == ["start~finish"]


def test_replies_that_arrive_early_do_not_break_the_spacing_of_start_commands():
    """A scripted client answering before our commands go out still gets starts 0.2 s apart."""
    factory = make_factory(DEFAULT_DELAYS)
    controller = Controller(factory)
    controller.feed(GREETING, "ack~geteventinfo~B~E1~x", "ack~getlocations~a~b",
                    "ack~getconnectionid~C")
    delays = [0.5] + [0.1] * 6 + [0.2] * 3
    assert [line for delay in delays for line in step(factory.clock, controller, delay)] == HANDSHAKE
    assert step(factory.clock, controller, 0.2) == ["start~a"]
    assert step(factory.clock, controller, 0.2) == ["start~b"]


def test_bare_start_when_the_controller_reports_no_locations():
    controller = Controller(make_factory(FAST))
    assert controller.handshake(()) == ["start"]


def test_stream_starts_after_reply_timeout_when_the_controller_never_answers():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.feed(GREETING)
    assert controller.sent() == HANDSHAKE
    assert step(factory.clock, controller, 5.0) == ["start"]
    assert factory.store.resume_queries == ["event:unknown/reader:*"]


def test_reply_timeout_uses_the_replies_that_did_arrive():
    store = MemoryReadStore(resume={"connection:C9": {"finish": 3}})
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.feed(GREETING, "ack~getlocations~finish", "ack~getconnectionid~C9")
    controller.sent()
    assert step(factory.clock, controller, 5.0) == ["start~finish~4"]


def test_without_connection_id_the_stream_falls_back_to_event_and_reader():
    """err~getconnectionid: resume by prefix event:E1/reader:*, store reads per reader."""
    store = MemoryReadStore(resume={"event:E1/reader:0F2A38": {"start": 9}})
    controller = Controller(make_factory(FAST, store))
    assert controller.handshake(("start",), connection_id=None) == ["start~start~10"]
    assert store.resume_queries == ["event:E1/reader:*"]
    controller.feed(READ)
    assert store.reads[0][1].stream_id == "event:E1/reader:0F2A38"


def test_controller_is_identified_once_the_stream_is_known():
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store))
    controller.handshake()
    assert store.connected == [("10.1.2.3:40000", GREETING)]
    assert store.identified == [(1, "connection:CONN1", "Boston")]


def test_reconnect_resumes_after_the_reads_kept_from_the_last_connection():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    first = Controller(factory)
    first.handshake(("start",))
    first.feed(*(f"CT01_33~{n}~start~{100 + n}~14:02:15.31~0~0F2A38~1" for n in (1, 2, 3)))
    first.lose()
    second = Controller(factory, port=40001)
    assert second.handshake(("start",)) == ["start~start~4"]


# --- replies and liveness -----------------------------------------------------------------


def test_ping_from_the_client_is_answered_at_once():
    controller = Controller(make_factory(FAST))
    controller.handshake()
    controller.feed("ping")
    assert controller.sent() == ["ack~ping"]


def test_unexpected_ack_is_ignored_without_closing(log_events):
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    controller.feed("ack~init", "ack~start~finish", "ack~whatever~1~2")
    assert controller.sent() == []
    assert not controller.transport.disconnecting
    assert factory.lines_rejected == 0


def test_err_reply_is_logged_and_the_connection_stays_open(log_events):
    controller = Controller(make_factory(FAST))
    controller.handshake()
    controller.feed("err~~unknown command")
    assert not controller.transport.disconnecting
    assert any(event.get("log_level") == LogLevel.warn and event.get("message") == "unknown command"
               for event in log_events)


def test_event_info_is_recorded():
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store))
    controller.handshake()
    assert store.event_infos == [("Boston", "E1", "Finish area")]


def test_reported_locations_are_recorded():
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store))
    controller.handshake(("start", "finish"))
    assert [locations for locations, _ in store.locations] == [["start", "finish"]]


# --- tag lines ---------------------------------------------------------------------------


def test_reads_are_stored_with_their_source():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    controller.feed(READ)
    [(read, source)] = store.reads
    assert (read.sequence_number, read.tag_code, read.lap_count, read.gator_number) == (1, "9478", 0, 1)
    assert read.raw_data == READ
    assert source == ReadSource(stream_id="connection:CONN1", peer="10.1.2.3:40000",
                                connection_row_id=1, event_id="E1", event_name="Boston")
    assert factory.reads_received == 1


def test_event_day_is_the_event_zone_date_at_the_greeting():
    """At 23:00 in Denver it is already tomorrow in UTC; the read belongs to today."""
    late_evening = datetime(2024, 7, 20, 23, 0, tzinfo=DENVER).timestamp()
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store, start=late_evening))
    controller.handshake()
    controller.feed(READ)
    stamp = store.reads[0][0].read_timestamp
    assert stamp == datetime(2024, 7, 20, 20, 2, 15, 310000, tzinfo=timezone.utc)


def test_guntime_reads_are_stored():
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store))
    controller.handshake()
    controller.feed("CT01_33~4~start~guntime~14:02:15.31~0~DF239A~0")
    assert [read.tag_code for read, _ in store.reads] == ["guntime"]


def test_newlocation_asks_for_locations_and_starts_it_once():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake(("start",))
    new_location = "CT01_33~2038~30k~newlocation~09:15:21.00~0~ED932A~0"
    controller.feed(new_location)
    assert controller.sent() == ["getlocations", "start~30k"]
    controller.feed(new_location, "ack~getlocations~start~30k")
    assert controller.sent() == []
    assert ["30k"] in [locations for locations, _ in store.locations]
    assert store.reads == [] and factory.reads_received == 0


def test_newlocation_is_spaced_like_other_commands():
    factory = make_factory(DEFAULT_DELAYS)
    controller = Controller(factory)
    controller.feed(GREETING)
    factory.clock.pump([0.05] * 40)  # each line is timed from the one before
    controller.feed("ack~geteventinfo~B~E1~x", "ack~getlocations~start", "ack~getconnectionid~C")
    factory.clock.advance(1)
    controller.sent()
    controller.feed("CT01_33~1~30k~newlocation~09:15:21.00~0~ED932A~0")
    assert step(factory.clock, controller, 0.2) == ["getlocations"]
    assert step(factory.clock, controller, 0.2) == ["start~30k"]


def test_newlocation_resumes_a_location_the_store_already_has():
    store = MemoryReadStore(resume={"connection:CONN1": {"30k": 5}})
    controller = Controller(make_factory(FAST, store))
    controller.handshake(("start",))
    controller.feed("CT01_33~6~30k~newlocation~09:15:21.00~0~ED932A~0")
    assert controller.sent() == ["getlocations", "start~30k~6"]


def test_malformed_line_is_logged_counted_recorded_and_the_connection_stays_open(log_events):
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    bad = "CT01_33~1~start~9478~14:02:15.31~0~0F2A3~1"
    controller.feed(bad, READ)
    assert factory.lines_rejected == 1
    [(line, reason, source)] = store.rejected
    assert line == bad and "reader id" in reason
    assert source.peer == "10.1.2.3:40000"
    assert not controller.transport.disconnecting
    assert len(store.reads) == 1
    warnings = [event for event in log_events if event["log_level"] == LogLevel.warn
                and event["log_format"].startswith("rejected line")]
    assert len(warnings) == 1 and "reader id" in warnings[0]["reason"]


def test_unknown_line_after_the_greeting_is_rejected():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    controller.feed("hello there")
    assert factory.lines_rejected == 1 and store.rejected[0][0] == "hello there"


def test_bad_greeting_is_rejected_and_a_later_greeting_accepted():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.feed("hello")
    assert controller.sent() == []
    assert factory.lines_rejected == 1 and "greeting" in store.rejected[0][1]
    controller.feed(GREETING)
    assert controller.sent() == HANDSHAKE


def test_tag_line_before_the_greeting_is_rejected_not_taken_as_a_greeting():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.feed(READ)
    assert controller.sent() == []
    assert store.rejected[0][0] == READ and store.reads == []
    assert store.connected == []


def test_bare_lf_line_ends_and_split_chunks_are_accepted():
    store = MemoryReadStore()
    controller = Controller(make_factory(FAST, store))
    controller.handshake()
    data = (READ + "\n" + READ.replace("~1~start", "~2~start") + "\r\n").encode()
    for index in range(len(data)):
        controller.protocol.dataReceived(data[index:index + 1])
    assert [read.sequence_number for read, _ in store.reads] == [1, 2]
    assert store.reads[0][0].gator_number == 1


def test_invalid_utf8_is_rejected_without_crashing_and_kept_with_its_bytes_escaped():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    controller.protocol.dataReceived(b"\xff\xfe garbage\r\n")
    controller.feed(READ)
    assert factory.lines_rejected == 1 and store.rejected[0][0] == "\\xff\\xfe garbage"
    assert "UTF-8" in store.rejected[0][1]
    assert len(store.reads) == 1


def test_overlong_line_is_rejected_and_the_next_line_still_read():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    controller.protocol.dataReceived(b"X" * 5000 + b"\r\n" + READ.encode() + b"\r\n")
    assert factory.lines_rejected == 1 and "longer than" in store.rejected[0][1]
    assert len(store.reads) == 1
    assert not controller.transport.disconnecting


def test_overlong_line_arriving_in_pieces_is_dropped_up_to_its_line_end():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    controller.protocol.dataReceived(b"X" * 5000)
    controller.protocol.dataReceived(b"Y" * 5000)
    controller.protocol.dataReceived(b"Z\r\n" + READ.encode() + b"\r\n")
    assert factory.lines_rejected == 1
    assert [read.tag_code for read, _ in store.reads] == ["9478"]
    assert not controller.transport.disconnecting


# --- keepalive and idle timeout -------------------------------------------------------------


def test_keepalive_ping_is_sent_every_interval():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    assert step(factory.clock, controller, 30.0) == ["ping"]
    controller.feed("ack~ping")
    assert step(factory.clock, controller, 30.0 - 2 * TOLERANCE) == ["ping"]


def test_idle_connection_is_aborted_after_the_idle_timeout(log_events):
    """A half-open connection never closes by itself; silence for 90 s aborts it."""
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    factory.clock.advance(90 - TOLERANCE)
    assert not controller.transport.disconnected
    factory.clock.advance(2 * TOLERANCE)
    assert controller.transport.disconnected  # abortConnection, not loseConnection
    assert any("sent nothing" in event["log_format"] for event in log_events)


def test_anything_received_postpones_the_idle_timeout():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    factory.clock.advance(60)
    controller.feed("ack~ping")
    factory.clock.advance(89)
    assert not controller.transport.disconnected
    factory.clock.advance(2)
    assert controller.transport.disconnected


def test_connection_that_never_greets_is_aborted_when_idle():
    """No greeting means no controller row: nothing to mark disconnected in the store."""
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    factory.clock.advance(90 + TOLERANCE)
    assert controller.transport.disconnected
    controller.lose()
    assert store.connected == [] and store.disconnected == []
    assert factory.clock.getDelayedCalls() == []


def test_no_delayed_calls_remain_after_connection_lost_mid_handshake():
    factory = make_factory(DEFAULT_DELAYS)
    controller = Controller(factory)
    controller.feed(GREETING)
    factory.clock.advance(0.55)
    controller.lose()
    assert factory.clock.getDelayedCalls() == []
    factory.clock.advance(10)
    assert controller.sent() == ["ChronoTrackHub~0.1.0~6"]


def test_no_delayed_calls_remain_after_connection_lost_while_streaming():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    assert factory.clock.getDelayedCalls() != []  # keepalive and idle timer
    controller.lose()
    assert factory.clock.getDelayedCalls() == []


def test_no_delayed_calls_after_losing_a_connection_waiting_for_resume_points():
    store = MemoryReadStore()
    store.hold_resume_points = True
    factory = make_factory(DEFAULT_DELAYS, store)
    controller = Controller(factory)
    controller.feed(GREETING)
    factory.clock.pump([0.05] * 40)  # each line is timed from the one before
    controller.feed("ack~geteventinfo~B~E1~x", "ack~getlocations~start", "ack~getconnectionid~C")
    controller.lose()
    controller.sent()
    [(_, held)] = store.held_resume_points
    held.callback({"start": 3})
    assert factory.clock.getDelayedCalls() == []
    assert controller.sent() == []


def test_a_controller_kept_waiting_for_resume_points_is_not_closed_as_idle():
    """The store may wait for its database; the controller's silence meanwhile is ours, not its."""
    store = MemoryReadStore()
    store.hold_resume_points = True
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.feed(GREETING)
    factory.clock.advance(0)
    controller.feed("ack~geteventinfo~B~E1~x", "ack~getlocations~start", "ack~getconnectionid~C")
    factory.clock.advance(FAST.idle_timeout * 3)
    assert not controller.transport.disconnecting
    [(_, held)] = store.held_resume_points
    held.callback({"start": 3})
    assert "start~start~4" in controller.sent()
    factory.clock.advance(FAST.idle_timeout - 0.1)
    assert not controller.transport.disconnecting  # the silence starts over from the answer
    factory.clock.advance(0.2)
    assert controller.transport.disconnecting


def test_disconnect_is_recorded_and_the_connection_forgotten():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    controller.handshake()
    assert len(factory.open_connections) == 1
    controller.lose()
    assert len(factory.open_connections) == 0
    [(row_id, reason)] = store.disconnected
    assert row_id == 1 and "closed by test" in reason


# --- many connections, back-pressure, failing stores ----------------------------------------


def test_two_connections_from_one_factory_are_independent():
    store = MemoryReadStore()
    factory = make_factory(FAST, store)
    first, second = Controller(factory, 40000), Controller(factory, 40001)
    assert len(factory.open_connections) == 2
    first.handshake(connection_id="A")
    assert second.sent() == []
    second.handshake(connection_id="B")
    first.feed(READ)
    second.feed(READ)
    assert [source.stream_id for _, source in store.reads] == ["connection:A", "connection:B"]
    assert [source.connection_row_id for _, source in store.reads] == [1, 2]
    first.lose()
    assert factory.open_connections == {second.protocol}
    second.feed("ping")
    assert second.sent() == ["ack~ping"]


def test_pause_all_and_resume_all_reach_every_transport():
    factory = make_factory(FAST)
    first, second = Controller(factory, 40000), Controller(factory, 40001)
    factory.pause_all()
    assert first.transport.producerState == second.transport.producerState == "paused"
    third = Controller(factory, 40002)
    assert third.transport.producerState == "paused", "new connections start paused"
    factory.resume_all()
    assert {c.transport.producerState for c in (first, second, third)} == {"producing"}


def test_paused_connection_is_not_aborted_as_idle():
    """While we are not reading, the controller's silence is ours, not a dead link."""
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake()
    factory.pause_all()
    factory.clock.advance(300)
    assert not controller.transport.disconnected
    factory.resume_all()
    factory.clock.advance(90 - TOLERANCE)
    assert not controller.transport.disconnected
    factory.clock.advance(2 * TOLERANCE)
    assert controller.transport.disconnected


def test_store_exceptions_and_failures_are_logged_never_raised(log_events):
    store = MemoryReadStore(resume={"connection:CONN1": {"start": 41}})
    store.raise_methods = {"record_read", "controller_connected", "record_event_info"}
    store.fail_methods = {"resume_points", "record_rejected_line", "record_locations"}
    factory = make_factory(FAST, store)
    controller = Controller(factory)
    # resume points failed: start from the beginning (the store stores idempotently)
    assert controller.handshake(("start",)) == ["start~start"]
    controller.feed(READ, "garbage")
    assert not controller.transport.disconnecting
    assert factory.reads_received == 1 and factory.lines_rejected == 1
    failed = {event.get("method") for event in log_events if "log_failure" in event}
    assert failed >= {"record_read", "controller_connected", "record_event_info",
                      "resume_points", "record_rejected_line", "record_locations"}
    controller.lose()
    assert [row_id for row_id, _ in store.disconnected] == [None]
