"""The controller simulator: it must speak the client side of CTP01 exactly.

Pure parts run over a StringTransport with a task.Clock; reconnects and faults run over
real TCP on 127.0.0.1 against a tiny fake collector defined here, with bounded waits.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chronotrack.simulator import (
    CannotConnect,
    ControllerProtocol,
    SimulatedController,
    SimulatorConfig,
    build_session,
    drive_controllers,
    format_read_time,
    run_controllers,
)

REPO = Path(__file__).resolve().parent.parent
BASE = datetime(2024, 6, 1, 8, 0, 0, tzinfo=timezone.utc)
PUSH = ("stream-mode=push",)


def make_config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = dict(locations=("start", "finish"), reads=5, base_time=BASE,
                                      read_spacing=1.0, reconnect_delay=0.05, linger=0.0)
    values.update(overrides)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


# --- StringTransport helpers ---------------------------------------------------------


class Wire:
    """A simulated controller on a StringTransport, driven line by line."""

    def __init__(self, config: SimulatorConfig, settings: tuple[str, ...] = PUSH,
                 index: int = 0) -> None:
        self.clock = task.Clock()
        self.controller = SimulatedController(config, self.clock, index)
        self.protocol = self.controller.build_protocol()
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()
        if settings is not None:
            self.feed(f"FakeCollector~1.0~{len(settings)}", *settings)

    def feed(self, *lines: str) -> None:
        self.protocol.dataReceived("".join(f"{line}\r\n" for line in lines).encode())

    def take(self) -> list[str]:
        """Lines written since the last take, each checked to end in CR LF."""
        data = self.transport.value()
        self.transport.clear()
        assert data == b"" or data.endswith(b"\r\n")
        return [raw.decode("utf-8", "replace") for raw in data.split(b"\r\n")[:-1]]


def sequences(lines: list[str], location: str | None = None, separator: str = "~") -> list[int]:
    fields = [line.split(separator) for line in lines if line.startswith("CT01_")]
    return [int(f[1]) for f in fields if location is None or f[2] == location]


# --- Handshake and replies ---------------------------------------------------------------


def test_greeting_is_program_version_protocol():
    """The client speaks first with <program>~<version>~CTP01, name configurable."""
    assert Wire(make_config(), settings=None).greeting == ["SimpleClient~0.5.0~CTP01"]
    custom = Wire(make_config(program_name="CCS Lite", program_version="2.1"), settings=None)
    assert custom.greeting == ["CCS Lite~2.1~CTP01"]


def test_handshake_reads_exactly_n_setting_lines():
    """Lines after the N settings are commands, even when they look like settings."""
    wire = Wire(make_config(), settings=None)
    wire.feed("RunScore~Version 6.5 Level 2007.09.26~2", "stream-mode=push", "time-format=iso")
    assert wire.take() == []
    wire.feed("ping", "a=b")
    assert wire.take() == ["ack~ping", "err~a=b~unknown command"]
    assert wire.protocol.settings == {"stream-mode": "push", "time-format": "iso"}
    assert wire.controller.server_greetings == ["RunScore~Version 6.5 Level 2007.09.26~2"]


@pytest.mark.parametrize("command, reply", [
    ("ping", "ack~ping"),
    ("geteventinfo", "ack~geteventinfo~Spring 10K~ev-42~Simulated"),
    ("getlocations", "ack~getlocations~start~finish"),
    ("getconnectionid", "ack~getconnectionid~box-0"),
    ("frobnicate~1", "err~frobnicate~unknown command"),
])
def test_command_replies(command, reply):
    """Each CTP01 command gets the reply the protocol table gives it."""
    config = make_config(event_name="Spring 10K", event_id="ev-42",
                         event_description="Simulated", connection_id_prefix="box")
    wire = Wire(config)
    wire.feed(command)
    assert wire.take() == [reply]


def test_getconnectionid_without_an_id_is_an_error():
    """A controller configured without an id says so instead of inventing one."""
    wire = Wire(make_config(connection_id_prefix=None))
    wire.feed("getconnectionid")
    assert wire.take() == ["err~getconnectionid~not supported"]


def test_commands_received_recorded_in_order_without_replies():
    """Tests assert on the exact command sequence; acks from the server are kept apart."""
    wire = Wire(make_config(reads=0))
    wire.feed("geteventinfo", "ack~init", "getlocations", "start~finish~3", "ping", "stop")
    assert wire.controller.commands_received == [
        "geteventinfo", "getlocations", "start~finish~3", "ping", "stop"]
    assert wire.controller.replies_received == ["ack~init"]


# --- The session and streaming ----------------------------------------------------------


def test_bare_start_replays_every_read_from_one():
    """A controller keeps its session, so a bare start re-sends everything."""
    wire = Wire(make_config(locations=("finish",), reads=5))
    wire.feed("start~finish~4")
    assert sequences(wire.take()) == [4, 5]
    wire.feed("start")
    assert sequences(wire.take()) == [1, 2, 3, 4, 5]
    assert wire.controller.reads_sent == {"finish": 7}
    assert wire.controller.distinct_reads_sent == {"finish": 5}


def test_bare_start_starts_every_location():
    wire = Wire(make_config(reads=2))
    wire.feed("start")
    lines = wire.take()
    assert sequences(lines, "start") == [1, 2]
    assert sequences(lines, "finish") == [1, 2]


def test_start_location_sequence_resumes_inclusive():
    """start~<loc>~<seq> sends <seq> itself and what follows, for that location only."""
    wire = Wire(make_config(reads=8))
    wire.feed("start~finish~6")
    lines = wire.take()
    assert sequences(lines, "finish") == [6, 7, 8]
    assert sequences(lines, "start") == []
    wire.feed("start~start")
    assert sequences(wire.take(), "start") == list(range(1, 9))


def test_tag_lines_follow_ct01_33_field_order():
    """seq, location, tag (bib), time, lap, reader, gator; bibs cycle; gators 1..4."""
    config = make_config(locations=("start",), reads=6, bib_start=1000, bib_count=4,
                         reader_id="0F2A38")
    wire = Wire(config)
    wire.feed("start")
    assert wire.take() == [
        "CT01_33~1~start~1000~08:00:01.00~0~0F2A38~1",
        "CT01_33~2~start~1001~08:00:02.00~0~0F2A38~2",
        "CT01_33~3~start~1002~08:00:03.00~0~0F2A38~3",
        "CT01_33~4~start~1003~08:00:04.00~0~0F2A38~4",
        "CT01_33~5~start~1000~08:00:05.00~1~0F2A38~1",
        "CT01_33~6~start~1001~08:00:06.00~1~0F2A38~2",
    ]


def test_unknown_location_and_bad_sequence_are_errors():
    wire = Wire(make_config())
    wire.feed("start~nowhere", "start~finish~x", "stop~nowhere")
    assert wire.take() == ["err~start~unknown location nowhere",
                           "err~start~invalid sequence number x",
                           "err~stop~unknown location nowhere"]


def test_comma_separated_format_ct01_13():
    """--separator-format CT01_13 writes comma-separated tag lines."""
    wire = Wire(make_config(locations=("start",), reads=1, separator_format="CT01_13"))
    wire.feed("start")
    assert wire.take() == ["CT01_13,1,start,1000,08:00:01.00,0,0F2A38,1"]


def test_server_tagevent_format_wins_over_configured_one():
    wire = Wire(make_config(locations=("start",), reads=1),
                settings=("stream-mode=push", "tagevent-format=CT01_43"))
    wire.feed("start")
    assert wire.take() == ["CT01_43|1|start|1000|08:00:01.00|0|0F2A38|1"]


def test_gun_time_is_first_read_of_each_location():
    """The gun takes sequence 1 (tag guntime, lap 0, gator 0); runners follow from 2."""
    wire = Wire(make_config(reads=2, gun_time=True, reader_id="DF2390"))
    wire.feed("start~start")
    assert wire.take() == [
        "CT01_33~1~start~guntime~08:00:00.00~0~DF2390~0",
        "CT01_33~2~start~1000~08:00:01.00~0~DF2390~1",
        "CT01_33~3~start~1001~08:00:02.00~0~DF2390~2",
    ]
    assert [read.tag_code for read in build_session(make_config(gun_time=True))["finish"]][:2] \
        == ["guntime", "1000"]


@pytest.mark.parametrize("time_format, expected", [
    ("normal", "08:00:01.25"),
    ("iso", "2024-06-01T08:00:01.25"),
    ("unix", "1717228801.25"),
    ("msecs", "1717228801250"),
])
def test_time_formats(time_format, expected):
    stamp = BASE + timedelta(seconds=1.25)
    assert format_read_time(stamp, time_format, day_start=BASE.replace(hour=0)) == expected


def test_normal_time_counts_hours_past_24_and_msecs_can_count_from_midnight():
    midnight = BASE.replace(hour=0)
    stamp = midnight + timedelta(hours=102, minutes=12, seconds=32.37)
    assert format_read_time(stamp, "normal", day_start=midnight) == "102:12:32.37"
    assert format_read_time(BASE, "msecs", day_start=midnight,
                            msecs_origin="midnight") == "28800000"


def test_iso_time_is_local_to_the_base_time_zone():
    """iso carries no zone designator: it is the event's local time."""
    denver_midnight = datetime(2024, 6, 1, tzinfo=timezone(timedelta(hours=-6)))
    assert format_read_time(BASE, "iso", day_start=denver_midnight) == "2024-06-01T02:00:00.00"


def test_time_format_setting_honoured_and_fallback_used_without_it():
    """time-format from the server decides; without it --time-format-fallback does."""
    config = make_config(locations=("start",), reads=1, time_format_fallback="iso")
    asked = Wire(config, settings=("stream-mode=push", "time-format=unix"))
    asked.feed("start")
    assert asked.take() == ["CT01_33~1~start~1000~1717228801.00~0~0F2A38~1"]
    fallback = Wire(config)
    fallback.feed("start")
    assert fallback.take() == ["CT01_33~1~start~1000~2024-06-01T08:00:01.00~0~0F2A38~1"]


def test_rate_spaces_reads_per_location_on_the_clock():
    """--rate 2: one read per location at start, then one every 0.5 s; never early."""
    wire = Wire(make_config(reads=4, rate=2.0))
    wire.feed("start")
    assert sequences(wire.take()) == [1, 1]
    wire.clock.advance(0.49)
    assert wire.take() == []
    wire.clock.advance(0.01)
    assert sequences(wire.take(), "start") == [2]
    wire.clock.advance(1.0)
    assert sequences(wire.take(), "finish") == [3, 4]
    wire.clock.advance(10)
    assert wire.take() == []
    assert wire.controller.all_sent


def test_rate_zero_yields_to_the_reactor_between_chunks():
    """As fast as possible, but in chunks via callLater(0), so streams interleave."""
    wire = Wire(make_config(reads=25, chunk_size=10))
    wire.feed("start")
    assert [line.split("~")[2] for line in wire.take()] == ["start"] * 10 + ["finish"] * 10
    assert [call.getTime() for call in wire.clock.getDelayedCalls()] == [0, 0]
    wire.clock.advance(0)
    lines = wire.take()
    chunks = [(line.split("~")[2], int(line.split("~")[1])) for line in lines[::5]]
    assert chunks == [("start", 11), ("start", 16), ("finish", 11), ("finish", 16),
                      ("start", 21), ("finish", 21)]
    assert wire.controller.all_sent and wire.clock.getDelayedCalls() == []


def test_runs_of_reads_go_out_exactly_as_one_read_at_a_time():
    """With nothing due between two reads, a chunk is written and counted in one step: the
    same bytes, counts and completion as when a pending fault makes it watch every read."""
    def run(**extra) -> tuple[bytes, SimulatedController]:
        wire = Wire(make_config(reads=25, chunk_size=10, **extra))
        wire.feed("start")
        while wire.clock.getDelayedCalls():
            wire.clock.advance(0)
        return wire.transport.value(), wire.controller

    in_runs, bulk = run()
    one_by_one, watched = run(drop_after=10_000)  # never reached, but due after some read
    assert not bulk.watches_each_read and watched.watches_each_read
    assert in_runs == one_by_one and in_runs.count(b"\r\n") == 50
    assert bulk.total_reads_sent == watched.total_reads_sent == 50
    assert bulk.reads_sent == watched.reads_sent == {"start": 25, "finish": 25}
    assert bulk.all_sent and bulk.caught_up and bulk.distinct_reads_sent == {"start": 25, "finish": 25}


def test_caught_up_when_server_resumes_past_reads_it_already_has():
    """start~<loc>~<seq> past the end leaves nothing to send: caught up, not all sent."""
    wire = Wire(make_config(reads=3))
    caught_up = wire.controller.when_caught_up()
    wire.feed("start~start~2")
    assert not caught_up.called
    wire.feed("start~finish~4")
    assert sequences(wire.take()) == [2, 3]
    assert caught_up.called and not wire.controller.all_sent


def test_stop_halts_the_stream_and_pushmode_ack_acknowledges():
    wire = Wire(make_config(locations=("start",), reads=6, rate=1.0),
                settings=("stream-mode=push", "pushmode-ack=true"))
    wire.feed("start~start")
    assert wire.take() == ["ack~start~start", "CT01_33~1~start~1000~08:00:01.00~0~0F2A38~1"]
    wire.feed("stop")
    assert wire.take() == ["ack~stop"]
    wire.clock.advance(5)
    assert wire.take() == []
    wire.feed("start", "stop~start")
    assert wire.take()[0] == "ack~start"


def test_write_backpressure_pauses_and_resumes_streaming():
    """When the socket buffer is full the transport pauses us; nothing is lost."""
    wire = Wire(make_config(locations=("start",), reads=30, chunk_size=10))
    wire.feed("start")
    wire.transport.producer.pauseProducing()
    wire.clock.advance(0)
    assert sequences(wire.take()) == list(range(1, 11))
    wire.transport.producer.resumeProducing()
    wire.clock.advance(0)
    wire.clock.advance(0)
    assert sequences(wire.take()) == list(range(11, 31))


def test_pull_mode_answers_getdata():
    """getdata~<max>[~<loc>[~<seq>]] gives ack~getdata~<n> and n tag lines."""
    wire = Wire(make_config(reads=3), settings=("stream-mode=pull",))
    wire.feed("getdata~2")
    assert wire.take() == ["ack~getdata~2", "CT01_33~1~start~1000~08:00:01.00~0~0F2A38~1",
                           "CT01_33~2~start~1001~08:00:02.00~0~0F2A38~2"]
    wire.feed("getdata~2")
    lines = wire.take()
    assert lines[0] == "ack~getdata~2"
    assert [line.split("~")[1:3] for line in lines[1:]] == [["3", "start"], ["1", "finish"]]
    wire.feed("getdata~10~finish~3", "getdata~5~finish~9", "start")
    assert wire.take() == ["ack~getdata~1", "CT01_33~3~finish~1002~08:00:03.00~0~0F2A39~3",
                           "ack~getdata~0", "err~start~not in push mode"]


def test_malformed_every_k_injects_garbage_without_disturbing_reads():
    wire = Wire(make_config(locations=("start",), reads=7, malformed_every=3))
    wire.feed("start")
    lines = wire.take()
    good = [line for line in lines if line.startswith("CT01_33~") and line.count("~") == 7
            and line.split("~")[1].isdigit()]
    assert sequences(good) == list(range(1, 8))
    assert len(lines) == 9
    assert lines.index(good[3]) == 4 and lines.index(good[6]) == 8  # after reads 3 and 6
    assert wire.controller.malformed_sent == 2


def test_new_location_announced_mid_stream_then_listed_and_startable():
    """After K reads a newlocation line appears once; getlocations then names it."""
    config = make_config(locations=("start",), reads=4, new_location="30k",
                         new_location_after=2, gun_time=True)
    wire = Wire(config)
    wire.feed("getlocations", "start")
    lines = wire.take()
    assert lines[0] == "ack~getlocations~start"
    assert lines[3] == "CT01_33~1~30k~newlocation~08:00:01.00~0~0F2A39~0"
    assert sequences(lines[1:3] + lines[4:]) == [1, 2, 3, 4, 5]
    assert not wire.controller.all_sent
    wire.feed("getlocations", "start~30k")
    lines = wire.take()
    assert lines[0] == "ack~getlocations~start~30k"
    assert lines[1] == "CT01_33~2~30k~guntime~08:00:00.00~0~0F2A39~0"
    assert sequences(lines, "30k") == [2, 3, 4, 5, 6]
    assert wire.controller.all_sent and wire.controller.new_locations_announced == 1


def test_drop_after_k_closes_cleanly_after_exactly_k_reads():
    wire = Wire(make_config(locations=("start",), reads=10, drop_after=4))
    wire.feed("start")
    assert sequences(wire.take()) == [1, 2, 3, 4]
    assert wire.transport.disconnecting and wire.controller.faults_fired == ["drop"]


def test_vanish_after_k_goes_silent_without_closing():
    wire = Wire(make_config(locations=("start",), reads=10, vanish_after=3))
    wire.feed("start")
    assert sequences(wire.take()) == [1, 2, 3]
    wire.feed("ping", "start")
    assert wire.take() == []
    assert not wire.transport.disconnecting
    assert wire.transport.producerState == "paused"  # not reading any more
    assert wire.controller.commands_received == ["start"]


def test_authentication_answered_with_hmac_of_the_seed():
    import hashlib
    import hmac
    config = make_config(user_id="timer", password="s3cret")
    wire = Wire(config, settings=("stream-mode=push", "authentication=hmac-sha1",
                                  "authentication-seed=abc123"))
    expected = hmac.new(b"s3cret", b"abc123", hashlib.sha1).hexdigest()
    assert wire.take() == [f"authorize~timer~{expected}"]


def test_fleet_controllers_have_own_ids_readers_and_locations():
    config = make_config(controllers=3, distinct_locations=True, connection_id_prefix="box")
    clock = task.Clock()
    fleet = [SimulatedController(config, clock, index) for index in range(3)]
    assert [c.connection_id for c in fleet] == ["box-0", "box-1", "box-2"]
    assert [c.locations for c in fleet][2] == ["start-2", "finish-2"]
    readers = [reader for c in fleet for reader in c.reader_ids.values()]
    assert len(set(readers)) == 6 and all(len(reader) == 6 for reader in readers)
    shared = SimulatedController(dataclasses.replace(config, distinct_locations=False), clock, 2)
    assert shared.locations == ["start", "finish"]


@pytest.mark.parametrize("overrides", [
    dict(locations=("bad~name",)), dict(locations=("x" * 17,)), dict(reader_id="12345"),
    dict(separator_format="CT01_93"), dict(drop_after=0), dict(locations=()),
    dict(base_time=datetime(2024, 6, 1)),
])
def test_config_rejects_values_a_controller_cannot_send(overrides):
    with pytest.raises(ValueError):
        make_config(**overrides)


# --- Exit conditions, under a Clock ----------------------------------------------------------


@implementer(IStreamClientEndpoint)
class StringEndpoint:
    """Connects each attempt to a fresh StringTransport, so a whole run fits on a Clock."""

    def __init__(self) -> None:
        self.connections: list[tuple[ControllerProtocol, StringTransport]] = []

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.connections.append((protocol, transport))
        return succeed(protocol)


def test_exit_waits_for_linger_of_quiet_and_a_resume_during_it_postpones_exit():
    clock, endpoint = task.Clock(), StringEndpoint()
    config = make_config(locations=("finish",), reads=3, linger=2.0)
    controller = SimulatedController(config, clock, endpoint=endpoint)
    done = drive_controllers(clock, config, [controller])
    protocol, transport = endpoint.connections[0]
    protocol.dataReceived(b"Fake~1~1\r\nstream-mode=push\r\nstart\r\n")
    clock.advance(1.5)
    protocol.dataReceived(b"start~finish~2\r\n")  # the server asks again mid-linger
    clock.advance(1.75)
    assert not done.called and not transport.disconnecting
    clock.advance(0.25)  # 2 s after the last read
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionDone()))
    assert done.result == [controller]


def test_exit_waits_while_a_controller_is_reconnecting():
    clock, endpoint = task.Clock(), StringEndpoint()
    config = make_config(locations=("finish",), reads=2, linger=1.0, reconnect_delay=3.0)
    controller = SimulatedController(config, clock, endpoint=endpoint)
    done = drive_controllers(clock, config, [controller])
    first, _ = endpoint.connections[0]
    first.dataReceived(b"Fake~1~1\r\nstream-mode=push\r\nstart\r\n")
    first.connectionLost(Failure(ConnectionDone()))  # the collector restarts
    clock.advance(2.5)
    assert not done.called
    clock.advance(0.5)  # reconnected, but not yet greeted by the server
    second, transport = endpoint.connections[1]
    clock.advance(2)
    assert not done.called
    second.dataReceived(b"Fake~1~1\r\nstream-mode=push\r\nstart~finish~3\r\n")
    clock.advance(0.05)
    assert transport.disconnecting
    second.connectionLost(Failure(ConnectionDone()))
    assert done.result == [controller]


def test_exit_after_seconds_runs_exactly_that_long():
    clock, endpoint = task.Clock(), StringEndpoint()
    config = make_config(locations=("finish",), reads=1, exit_after_seconds=5.0)
    controller = SimulatedController(config, clock, endpoint=endpoint)
    done = drive_controllers(clock, config, [controller])
    protocol, transport = endpoint.connections[0]
    protocol.dataReceived(b"Fake~1~1\r\nstream-mode=push\r\nstart\r\n")
    clock.advance(4.75)
    assert controller.all_sent and not transport.disconnecting
    clock.advance(0.25)
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionDone()))
    assert done.result == [controller]


# --- Real TCP against a fake collector ------------------------------------------------------


class FakeConnection(LineReceiver):
    """The server side of one controller connection: greets, issues a script, records."""

    def connectionMade(self) -> None:
        self.lines: list[str] = []
        self.greeting: str | None = None
        self.open = True
        self.number = len(self.factory.connections)
        self.factory.connections.append(self)

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if self.greeting is None:
            self.greeting = text
            settings = self.factory.settings
            commands = self.factory.script(self)
            self.sendLine(f"FakeCollector~1.0~{len(settings)}".encode())
            for entry in (*settings, *commands):
                self.sendLine(entry.encode())
            return
        self.lines.append(text)
        if text.startswith("CT01_"):
            fields = text.split("~")
            location, sequence = fields[2], int(fields[1])
            highest = self.factory.highest
            highest[location] = max(highest.get(location, 0), sequence)

    def connectionLost(self, reason: object = None) -> None:
        self.open = False

    def reads(self, location: str | None = None) -> list[int]:
        return sequences(self.lines, location)


class FakeCollector(Factory):
    protocol = FakeConnection

    def __init__(self, script: Callable[[FakeConnection], list[str]],
                 settings: tuple[str, ...] = PUSH) -> None:
        self.script = script
        self.settings = settings
        self.connections: list[FakeConnection] = []
        self.highest: dict[str, int] = {}


def resuming_script(collector_holder: list[FakeCollector]):
    """A collector that resumes: bare start first, then start~loc~<highest+1>."""
    def script(connection: FakeConnection) -> list[str]:
        highest = collector_holder[0].highest
        if not highest:
            return ["getconnectionid", "start"]
        return ["getconnectionid",
                *(f"start~{loc}~{seq + 1}" for loc, seq in sorted(highest.items()))]
    return script


async def listen(collector: FakeCollector):
    from twisted.internet import reactor
    return reactor.listenTCP(0, collector, interface="127.0.0.1")


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Bounded wait on real TCP: poll every 10 ms, fail after ``timeout`` seconds."""
    from twisted.internet import reactor
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out waiting for the condition")
        await task.deferLater(reactor, 0.01)


async def shut_down(port, collector: FakeCollector, *controllers: SimulatedController) -> None:
    for controller in controllers:
        await controller.stop()
    for connection in collector.connections:
        if connection.open:
            connection.transport.abortConnection()
    await port.stopListening()
    await wait_for(lambda: not any(c.open for c in collector.connections))


@pytest_twisted.ensureDeferred
async def test_drop_after_reconnects_keeps_session_and_resumes_from_server_seq():
    """After a clean drop the controller greets again; start~finish~8 resumes at 8."""
    from twisted.internet import reactor
    holder: list[FakeCollector] = []
    collector = FakeCollector(resuming_script(holder))
    holder.append(collector)
    port = await listen(collector)
    config = make_config(locations=("finish",), reads=20, drop_after=7,
                         port=port.getHost().port)
    controller = SimulatedController(config, reactor)
    try:
        controller.start()
        await controller.when_all_sent()
        await wait_for(lambda: collector.highest.get("finish") == 20)
        first, second = collector.connections
        assert first.greeting == second.greeting == "SimpleClient~0.5.0~CTP01"
        assert first.reads() == [1, 2, 3, 4, 5, 6, 7]
        assert second.reads() == list(range(8, 21))
        assert controller.commands_received == [
            "getconnectionid", "start", "getconnectionid", "start~finish~8"]
        assert controller.connections_made == 2 and controller.reconnects == 1
        assert controller.faults_fired == ["drop"]
    finally:
        await shut_down(port, collector, controller)


@pytest_twisted.ensureDeferred
async def test_abort_after_then_bare_start_replays_whole_session():
    """A collector that sends a bare start after a reset gets every read again."""
    from twisted.internet import reactor
    collector = FakeCollector(lambda connection: ["start"])
    port = await listen(collector)
    config = make_config(locations=("start",), reads=10, abort_after=4,
                         port=port.getHost().port)
    controller = SimulatedController(config, reactor)
    try:
        controller.start()
        await controller.when_all_sent()
        await wait_for(lambda: len(collector.connections) == 2
                       and len(collector.connections[1].reads()) == 10)
        assert collector.connections[1].reads() == list(range(1, 11))
        assert controller.faults_fired == ["abort"] and controller.connections_made == 2
    finally:
        await shut_down(port, collector, controller)


@pytest_twisted.ensureDeferred
async def test_vanish_after_reconnects_on_new_connection_while_old_stays_open_and_silent():
    from twisted.internet import reactor
    holder: list[FakeCollector] = []
    collector = FakeCollector(resuming_script(holder))
    holder.append(collector)
    port = await listen(collector)
    config = make_config(locations=("start",), reads=12, vanish_after=5,
                         port=port.getHost().port)
    controller = SimulatedController(config, reactor)
    try:
        controller.start()
        await controller.when_all_sent()
        await wait_for(lambda: collector.highest.get("start") == 12)
        old, new = collector.connections
        assert old.open and new.open
        assert old.reads() == [1, 2, 3, 4, 5] and new.reads() == list(range(6, 13))
        old.sendLine(b"ping")
        await task.deferLater(reactor, 0.2)
        assert old.lines == ["ack~getconnectionid~sim-0", *old.lines[1:6]]  # no ack~ping
        assert controller.commands_received[-1] == "start~start~6"
    finally:
        await shut_down(port, collector, controller)
    assert not old.open


@pytest_twisted.ensureDeferred
async def test_run_controllers_streams_every_controller_then_stops():
    """Several controllers in one process, each with its own id and locations."""
    from twisted.internet import reactor
    collector = FakeCollector(lambda connection: ["getconnectionid", "start"])
    port = await listen(collector)
    config = make_config(reads=200, chunk_size=20, distinct_locations=True,
                         port=port.getHost().port)
    try:
        controllers = await run_controllers(reactor, config, 3)
        await wait_for(lambda: not any(c.open for c in collector.connections))
        assert [c.total_reads_sent for c in controllers] == [400, 400, 400]
        by_location = {}
        for connection in collector.connections:
            for line in connection.lines:
                if line.startswith("CT01_"):
                    by_location.setdefault(line.split("~")[2], []).append(int(line.split("~")[1]))
        assert sorted(by_location) == ["finish-0", "finish-1", "finish-2",
                                       "start-0", "start-1", "start-2"]
        assert all(seqs == list(range(1, 201)) for seqs in by_location.values())
    finally:
        await shut_down(port, collector)


@pytest_twisted.ensureDeferred
async def test_cannot_connect_gives_up_after_retries():
    from twisted.internet import reactor
    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    config = make_config(port=number, connect_retries=2, reconnect_delay=0.01)
    with pytest.raises(CannotConnect, match="after 3 attempts"):
        await run_controllers(reactor, config)


# --- Command line ------------------------------------------------------------------------------


class _Captured(ProcessProtocol):
    def __init__(self) -> None:
        self.out, self.err = b"", b""
        self.ended: Deferred[int] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value.exitCode)


async def run_cli(*args: str, timeout: float = 30.0) -> tuple[str, str, int]:
    """Run ``python -m chronotrack.simulator``; kill it if it outlives ``timeout``."""
    from twisted.internet import reactor
    captured = _Captured()
    process = reactor.spawnProcess(captured, sys.executable,
                                   [sys.executable, "-m", "chronotrack.simulator", *args],
                                   env=dict(os.environ), path=str(REPO))
    killer = reactor.callLater(timeout, process.signalProcess, "KILL")
    code = await captured.ended
    if not killer.active():
        raise AssertionError(f"simulator still running after {timeout}s: {captured.out!r}")
    killer.cancel()
    return captured.out.decode(), captured.err.decode(), code


def test_cli_help_lists_the_options():
    import subprocess
    result = subprocess.run([sys.executable, "-m", "chronotrack.simulator", "--help"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0
    for flag in ("--host", "--port", "--locations", "--reads", "--rate", "--gun-time",
                 "--drop-after", "--vanish-after", "--controllers", "--linger",
                 "--exit-after-seconds", "--time-format-fallback", "--no-connection-id"):
        assert flag in result.stdout


@pytest_twisted.ensureDeferred
async def test_cli_prints_commands_received_and_a_summary():
    collector = FakeCollector(lambda connection: ["geteventinfo", "start~finish~3"])
    port = await listen(collector)
    try:
        output, err, code = await run_cli("--port", str(port.getHost().port),
                                          "--locations", "finish", "--reads", "5",
                                          "--linger", "0")
        assert code == 0, err
        assert "controller 0 received: geteventinfo\n" in output
        assert "controller 0 received: start~finish~3\n" in output
        assert "reads sent finish=3" in output
        assert collector.connections[0].reads() == [3, 4, 5]
    finally:
        await shut_down(port, collector)


@pytest_twisted.ensureDeferred
async def test_cli_exits_non_zero_with_a_message_when_it_cannot_connect():
    from twisted.internet import reactor
    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    out, err, code = await run_cli("--port", str(number), "--connect-retries", "1",
                                   "--reconnect-delay", "0.01")
    assert code == 2
    assert "could not connect to 127.0.0.1:" in err and "after 2 attempts" in err
