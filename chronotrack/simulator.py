"""A ChronoTrack controller simulator: the client (SimpleClient) side of CTP01.

Timers point it at a collector to test their set-up; our end-to-end and fault-injection
tests drive it from Python. Everything it does is deterministic for a given
``SimulatorConfig``: the reads a controller holds (its "session"), the lines it writes and
when, and the faults it injects. It keeps its session across reconnects, exactly like a
controller, so the collector's ``start~<loc>~<seq>`` decides what is re-sent.

The pure parts (the session, time and line formatting) are plain functions; the
``ControllerProtocol`` wires them to a transport and an injected clock, and
``SimulatedController`` owns one controller's session, reconnects and fault state.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import hmac
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

GUN_TIME_TAG = "guntime"
NEW_LOCATION_TAG = "newlocation"
TIME_FORMATS = ("normal", "iso", "unix", "msecs")
MSECS_ORIGINS = ("epoch", "midnight")
# CTP01: the high digit after "_" in the format id names the field separator.
SEPARATORS = {"1": ",", "2": ";", "3": "~", "4": "|", "5": "\t", "6": " "}
FORBIDDEN_LOCATION_CHARACTERS = set(",;~|\t\0")
MAX_SEQUENCE = 999_999

# Garbage written by --malformed-every, in rotation: a bad sequence number, line noise,
# empty fields, bytes that are not UTF-8, a truncated tag line. None of them parses as
# a read, so a collector that stores them as reads has a bug.
MALFORMED_LINES: tuple[bytes, ...] = (
    b"CT01_33~not-a-number~nowhere~0~00:00:00.00~0~000000~1",
    b"%%% line noise %%%",
    b"CT01_33~~~~~~~",
    b"\xff\xfe garbage \xc3",
    b"CT01_33~7",
)


class CannotConnect(Exception):
    """A controller gave up after its connection attempts all failed."""


class ControllerStopped(Exception):
    """The controller was stopped before every read had been sent."""


def _default_base_time() -> datetime:
    return datetime(2024, 6, 1, 8, 0, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that decides what a simulated controller does; see ``main --help``.

    Per-controller values (connection id, reader ids, distinct location names) are
    derived from the controller's index, so one config describes a whole fleet.
    """

    host: str = "127.0.0.1"
    port: int = 61611
    endpoint: str | None = None  # a client endpoint string; overrides host and port
    program_name: str = "SimpleClient"
    program_version: str = "0.5.0"
    protocol_name: str = "CTP01"
    # The session
    locations: tuple[str, ...] = ("start", "finish")
    reads: int = 100  # runner reads per location (a gun time comes on top)
    bib_start: int = 1000
    bib_count: int = 500  # bibs cycle over bib_start .. bib_start + bib_count - 1
    base_time: datetime = field(default_factory=_default_base_time)  # aware; the gun time
    read_spacing: float = 0.25  # seconds between consecutive reads' timestamps
    gun_time: bool = False
    new_location: str | None = None  # announced with a newlocation line mid-stream
    new_location_after: int = 0  # ...once this many reads have been written in total
    reader_id: str = "0F2A38"  # 6 hex digits; location j of controller n gets +n*256+j
    # Identity and replies
    event_name: str = "Simulated Race"
    event_id: str = "sim-event"
    event_description: str = "ChronoTrack simulator"
    connection_id_prefix: str | None = "sim"  # None: answer getconnectionid with err
    user_id: str = ""
    password: str | None = None  # for servers that ask for authentication
    # Line format
    separator_format: str = "CT01_33"  # unless the server asks for a tagevent-format
    time_format_fallback: str = "normal"  # when the server sends no time-format
    msecs_origin: str = "epoch"  # CTP01 leaves the msecs origin open
    # Pace
    rate: float = 0.0  # reads per second per location; 0 = as fast as possible
    chunk_size: int = 100  # most lines written per location before yielding
    # Fleet
    controllers: int = 1
    distinct_locations: bool = False
    # Connection
    reconnect_delay: float = 1.0
    connect_timeout: float = 5.0
    connect_retries: int = 10  # consecutive failures allowed; negative = retry forever
    # Faults, each fired once per controller; counts are reads written in total
    drop_after: int | None = None
    abort_after: int | None = None
    vanish_after: int | None = None
    malformed_every: int | None = None
    # Exit
    linger: float = 2.0
    exit_after_seconds: float | None = None

    def __post_init__(self) -> None:
        problems = list(_config_problems(self))
        if problems:
            raise ValueError("; ".join(problems))


def _config_problems(config: SimulatorConfig) -> Sequence[str]:
    problems = []
    if not config.locations:
        problems.append("at least one location is needed")
    if len(set(config.locations)) != len(config.locations):
        problems.append("location names must be unique")
    names = list(config.locations) + ([config.new_location] if config.new_location else [])
    if config.new_location in config.locations:
        problems.append(f"new location {config.new_location!r} is already a location")
    suffix = len(f"-{config.controllers - 1}") if config.distinct_locations else 0
    for name in names:
        problem = _location_problem(name, suffix)
        if problem:
            problems.append(problem)
    if config.reads < 0:
        problems.append("reads must be zero or more")
    if config.reads + 2 > MAX_SEQUENCE:
        problems.append(f"at most {MAX_SEQUENCE - 2} reads per location")
    if config.bib_count < 1 or config.bib_start < 0:
        problems.append("bib range must hold at least one bib from 0 up")
    elif len(str(config.bib_start + config.bib_count - 1)) > 8:
        problems.append("tags are at most 8 characters")
    if config.base_time.tzinfo is None:
        problems.append("base time needs a time zone")
    if config.read_spacing < 0:
        problems.append("read spacing must be zero or more")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", config.reader_id):
        problems.append("reader id must be 6 hex digits")
    try:
        separator_for(config.separator_format)
    except ValueError as error:
        problems.append(str(error))
    if config.time_format_fallback not in TIME_FORMATS:
        problems.append(f"time format must be one of {', '.join(TIME_FORMATS)}")
    if config.msecs_origin not in MSECS_ORIGINS:
        problems.append(f"msecs origin must be one of {', '.join(MSECS_ORIGINS)}")
    if config.rate < 0:
        problems.append("rate must be zero or more")
    if config.chunk_size < 1:
        problems.append("chunk size must be at least 1")
    if config.controllers < 1:
        problems.append("at least one controller is needed")
    for name in ("reconnect_delay", "linger"):
        if getattr(config, name) < 0:
            problems.append(f"{name.replace('_', ' ')} must be zero or more")
    if config.connect_timeout <= 0:
        problems.append("connect timeout must be more than zero")
    if config.exit_after_seconds is not None and config.exit_after_seconds < 0:
        problems.append("exit after seconds must be zero or more")
    for name in ("drop_after", "abort_after", "vanish_after"):
        value = getattr(config, name)
        if value is not None and value < 1:
            problems.append(f"{name.replace('_', ' ')} must be at least 1")
    if config.malformed_every is not None and config.malformed_every < 1:
        problems.append("malformed every must be at least 1")
    if config.new_location_after < 0:
        problems.append("new location after must be zero or more")
    for name in ("program_name", "program_version", "event_name", "event_id",
                 "event_description", "connection_id_prefix", "user_id", "password"):
        value = getattr(config, name)
        if value is not None and ("~" in value or "\r" in value or "\n" in value):
            problems.append(f"{name.replace('_', ' ')} cannot contain '~' or line breaks")
    return problems


def _location_problem(name: str, suffix_length: int) -> str | None:
    if not name:
        return "location names cannot be empty"
    if len(name) + suffix_length > 16:
        return f"location {name!r} is longer than 16 characters (with its controller suffix)"
    if FORBIDDEN_LOCATION_CHARACTERS & set(name) or "\r" in name or "\n" in name:
        return f"location {name!r} contains a separator character"
    return None


# --- The session: pure, deterministic -------------------------------------------------


@dataclass(frozen=True)
class SimulatedRead:
    """One read a controller holds; formatted into a tag line only when written."""

    sequence_number: int
    location_name: str
    tag_code: str
    timestamp: datetime  # aware, in the base time's zone
    lap_count: int
    reader_id: str
    gator_number: int

    @property
    def is_gun_time(self) -> bool:
        return self.tag_code == GUN_TIME_TAG


def connection_id_for(config: SimulatorConfig, index: int) -> str | None:
    """Each controller names its own data stream, so the collector can resume it."""
    if config.connection_id_prefix is None:
        return None
    return f"{config.connection_id_prefix}-{index}"


def locations_for(config: SimulatorConfig, index: int) -> tuple[str, ...]:
    """The controller's initial locations: shared names, or ``<name>-<index>``."""
    if config.distinct_locations:
        return tuple(f"{name}-{index}" for name in config.locations)
    return config.locations


def new_location_for(config: SimulatorConfig, index: int) -> str | None:
    if config.new_location is None:
        return None
    return f"{config.new_location}-{index}" if config.distinct_locations else config.new_location


def reader_id_for(config: SimulatorConfig, index: int, location_index: int) -> str:
    """A distinct 6-hex-digit reader id per controller and location."""
    value = (int(config.reader_id, 16) + index * 256 + location_index) % 0x1000000
    return f"{value:06X}"


def build_location_reads(config: SimulatorConfig, location: str, reader_id: str,
                         first_sequence: int = 1) -> list[SimulatedRead]:
    """A location's reads: the gun time first (if any), then runners in time order."""
    reads = []
    sequence = first_sequence
    if config.gun_time:
        reads.append(SimulatedRead(sequence, location, GUN_TIME_TAG, config.base_time,
                                   0, reader_id, 0))
        sequence += 1
    for k in range(config.reads):
        centiseconds = round((k + 1) * config.read_spacing * 100)
        reads.append(SimulatedRead(
            sequence_number=sequence + k,
            location_name=location,
            tag_code=str(config.bib_start + k % config.bib_count),
            timestamp=config.base_time + timedelta(milliseconds=10 * centiseconds),
            lap_count=(k // config.bib_count) % 1000,
            reader_id=reader_id,
            gator_number=k % 4 + 1,
        ))
    return reads


def build_session(config: SimulatorConfig, index: int = 0) -> dict[str, list[SimulatedRead]]:
    """Every read controller ``index`` holds, per location, in sequence order.

    The new location (if configured) is included; its sequence 1 is taken by the
    ``newlocation`` announcement, so its reads start at 2 and never share a sequence
    number with the announcement.
    """
    session = {}
    names = locations_for(config, index)
    for location_index, name in enumerate(names):
        session[name] = build_location_reads(config, name,
                                             reader_id_for(config, index, location_index))
    extra = new_location_for(config, index)
    if extra is not None:
        session[extra] = build_location_reads(
            config, extra, reader_id_for(config, index, len(names)), first_sequence=2)
    return session


# --- Line formatting: pure ------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def separator_for(format_id: str) -> str:
    """The field separator a ``CTff_ss`` format id names (``CT01_13`` is commas); asked per line."""
    match = re.fullmatch(r"CT\d\d_(\d)\d", format_id)
    if not match or match.group(1) not in SEPARATORS:
        raise ValueError(f"unknown tag line format {format_id!r} (expected e.g. CT01_33)")
    return SEPARATORS[match.group(1)]


_CENTISECOND = timedelta(milliseconds=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def format_read_time(timestamp: datetime, time_format: str, *, day_start: datetime,
                     msecs_origin: str = "epoch") -> str:
    """A read's time as CTP01 sends it; ``day_start`` is midnight of the event's day.

    ``normal`` counts hours from that midnight, so a multi-day event shows
    ``102:12:32.37`` as the protocol describes.
    """
    if time_format == "normal":
        centiseconds = (timestamp - day_start) // _CENTISECOND
        hours, rest = divmod(centiseconds, 360_000)
        minutes, rest = divmod(rest, 6_000)
        seconds, hundredths = divmod(rest, 100)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{hundredths:02d}"
    if time_format == "iso":
        zone = day_start.tzinfo
        local = (timestamp if timestamp.tzinfo is zone else timestamp.astimezone(zone)).replace(tzinfo=None)
        # Milliseconds are cut, not rounded; one digit less is the hundredth, cut as well.
        return local.isoformat(timespec="milliseconds")[:-1]
    if time_format == "unix":
        centiseconds = (timestamp - _EPOCH) // _CENTISECOND
        return f"{centiseconds // 100}.{centiseconds % 100:02d}"
    if time_format == "msecs":
        origin = _EPOCH if msecs_origin == "epoch" else day_start
        return str((timestamp - origin) // timedelta(milliseconds=1))
    raise ValueError(f"unknown time format {time_format!r}")


@functools.lru_cache(maxsize=1 << 14)
def _read_time_text(timestamp: datetime, time_format: str, day_start: datetime, msecs_origin: str) -> str:
    """``format_read_time``, remembered: every location of every controller of a run reads the
    same runners' times (``build_location_reads``), so formatting each once spares most of the
    simulator's cost on the machine it measures."""
    return format_read_time(timestamp, time_format, day_start=day_start, msecs_origin=msecs_origin)


def day_start_of(base_time: datetime) -> datetime:
    return base_time.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class LineFormat:
    """How one connection writes tag lines, settled after the server's settings."""

    separator_format: str = "CT01_33"
    time_format: str = "normal"
    day_start: datetime = field(default_factory=lambda: day_start_of(_default_base_time()))
    msecs_origin: str = "epoch"

    def tag_line(self, read: SimulatedRead) -> str:
        return self._line(read.sequence_number, read.location_name, read.tag_code,
                          read.timestamp, read.lap_count, read.reader_id, read.gator_number)

    def new_location_line(self, sequence: int, location: str, timestamp: datetime,
                          reader_id: str) -> str:
        return self._line(sequence, location, NEW_LOCATION_TAG, timestamp, 0, reader_id, 0)

    def _line(self, sequence: int, location: str, tag: str, timestamp: datetime, lap: int,
              reader_id: str, gator: int) -> str:
        when = _read_time_text(timestamp, self.time_format, self.day_start, self.msecs_origin)
        parts = (self.separator_format, str(sequence), location, tag, when, str(lap),
                 reader_id, str(gator))
        return separator_for(self.separator_format).join(parts)


def authorization_string(method: str, password: str, seed: str) -> str | None:
    """The ``authorize`` proof CTP01 defines for ``method``; None if it is unknown."""
    secret, message = password.encode("utf-8"), seed.encode("utf-8")
    if method == "plaintext":
        return password
    if method in ("hmac-sha1", "hmac-md5"):
        return hmac.new(secret, message, method.split("-")[1]).hexdigest()
    if method in ("seed-sha1", "seed-md5"):
        return hashlib.new(method.split("-")[1], message + secret).hexdigest()
    return None


# --- The wire ---------------------------------------------------------------------------


@dataclass
class _LocationStream:
    """Push-mode progress of one started location on one connection."""

    location: str
    next_index: int
    started_at: float
    sent: int = 0
    call: IDelayedCall | None = None


@implementer(IPushProducer)
class _WriteThrottle:
    """Pauses streaming when the socket's send buffer is full.

    A separate object because ``LineReceiver``'s own pause methods stop *reading*.
    """

    def __init__(self, protocol: ControllerProtocol) -> None:
        self._protocol = protocol

    def pauseProducing(self) -> None:
        self._protocol._set_write_paused(True)

    def resumeProducing(self) -> None:
        self._protocol._set_write_paused(False)

    def stopProducing(self) -> None:
        self._protocol._stop_streams()


class ControllerProtocol(LineReceiver):
    """One TCP connection of a simulated controller: handshake, commands, streaming."""

    delimiter = b"\n"  # tolerate servers that end lines with a bare LF
    MAX_LENGTH = 65536

    def __init__(self, controller: SimulatedController) -> None:
        self._controller = controller
        self._clock = controller.reactor
        self._phase = "greeting"
        self._settings_left = 0
        self.settings: dict[str, str] = {}
        self.server_greeting: str | None = None
        self.line_format = LineFormat()
        self.stream_mode = "pull"
        self.pushmode_ack = False
        self._streams: dict[str, _LocationStream] = {}
        self._pull_next: dict[str, int] = {}  # pull mode: next sequence per location
        self._write_paused = False
        self._read_lines: list[str] = []  # tag lines not yet handed to the transport (see _write_read)
        self._connected = False
        self.closing = False
        self.vanished = False
        self.lost: Deferred[None] = Deferred()

    # Connection events

    def connectionMade(self) -> None:
        self._connected = True
        self.transport.registerProducer(_WriteThrottle(self), True)
        self._controller._connection_made(self)
        config = self._controller.config
        self._send(f"{config.program_name}~{config.program_version}~{config.protocol_name}")

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._connected = False
        self._stop_streams()
        self._controller._connection_lost(self, reason)
        self.lost.callback(None)

    def lineReceived(self, raw: bytes) -> None:
        if self.vanished or self.closing:
            return
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        if self._phase == "greeting":
            self._greeting_received(line)
        elif self._phase == "settings":
            self._setting_received(line)
        elif line.strip():
            self._command_received(line)

    # Handshake

    def _greeting_received(self, line: str) -> None:
        parts = line.rsplit("~", 2)
        try:
            count = int(parts[-1])
            if len(parts) != 3 or count < 0:
                raise ValueError(line)
        except ValueError:
            log.error("controller {index}: server greeting {line!r} is not "
                      "<name>~<version>~<N>; closing", index=self._controller.index, line=line)
            self.close()
            return
        self.server_greeting = line
        self._controller.server_greetings.append(line)
        self._settings_left = count
        self._phase = "settings"
        if count == 0:
            self._handshake_done()

    def _setting_received(self, line: str) -> None:
        key, equals, value = line.partition("=")
        if equals:
            self.settings[key.strip()] = value.strip()
        else:
            log.warn("controller {index}: setting line {line!r} has no '='",
                     index=self._controller.index, line=line)
        self._settings_left -= 1
        if self._settings_left == 0:
            self._handshake_done()

    def _handshake_done(self) -> None:
        controller, config = self._controller, self._controller.config
        self._phase = "commands"
        controller.settings_received.append(dict(self.settings))
        time_format = self.settings.get("time-format", config.time_format_fallback)
        if time_format not in TIME_FORMATS:
            log.warn("controller {index}: unknown time-format {value!r}; using {fallback}",
                     index=controller.index, value=time_format,
                     fallback=config.time_format_fallback)
            time_format = config.time_format_fallback
        separator_format = self.settings.get("tagevent-format", config.separator_format)
        try:
            separator_for(separator_format)
        except ValueError:
            log.warn("controller {index}: unknown tagevent-format {value!r}; using {fallback}",
                     index=controller.index, value=separator_format,
                     fallback=config.separator_format)
            separator_format = config.separator_format
        self.line_format = LineFormat(separator_format, time_format,
                                      day_start_of(config.base_time), config.msecs_origin)
        self.stream_mode = self.settings.get("stream-mode", "pull").lower()
        self.pushmode_ack = self.settings.get("pushmode-ack", "false").lower() == "true"
        method = self.settings.get("authentication", "none").lower()
        if method != "none":
            self._authorize(method)

    def _authorize(self, method: str) -> None:
        config = self._controller.config
        if config.password is None:
            log.warn("controller {index}: server asks for {method} authentication but no "
                     "password is configured", index=self._controller.index, method=method)
            return
        proof = authorization_string(method, config.password,
                                     self.settings.get("authentication-seed", ""))
        if proof is None:
            log.warn("controller {index}: unknown authentication {method!r}",
                     index=self._controller.index, method=method)
            return
        self._send(f"authorize~{config.user_id}~{proof}")

    # Commands

    def _command_received(self, line: str) -> None:
        name, *args = line.split("~")
        if name in ("ack", "err"):
            self._controller.replies_received.append(line)
            if line.startswith("err~authorize"):
                log.warn("controller {index}: authorization refused: {line}",
                         index=self._controller.index, line=line)
            return
        self._controller._command_received(line)
        handler = getattr(self, f"_command_{name}", None)
        if handler is None:
            self._send(f"err~{name}~unknown command")
            return
        handler(args)

    def _command_ping(self, args: list[str]) -> None:
        self._send("ack~ping")

    def _command_geteventinfo(self, args: list[str]) -> None:
        config = self._controller.config
        self._send(f"ack~geteventinfo~{config.event_name}~{config.event_id}"
                   f"~{config.event_description}")

    def _command_getlocations(self, args: list[str]) -> None:
        self._send("~".join(["ack", "getlocations", *self._controller.locations]))

    def _command_getconnectionid(self, args: list[str]) -> None:
        connection_id = self._controller.connection_id
        if connection_id is None:
            self._send("err~getconnectionid~not supported")
        else:
            self._send(f"ack~getconnectionid~{connection_id}")

    def _command_start(self, args: list[str]) -> None:
        if self.stream_mode != "push":
            self._send("err~start~not in push mode")
            return
        targets = self._targets("start", args)
        if targets is None:
            return
        first_sequence = self._sequence_argument("start", args)
        if first_sequence is None:
            return
        self._send_command_ack("start", args)
        for location in targets:
            self._start_stream(location, first_sequence)
        self._controller._announce_if_due(self)  # one that appeared while disconnected

    def _command_stop(self, args: list[str]) -> None:
        if self.stream_mode != "push":
            self._send("err~stop~not in push mode")
            return
        targets = self._targets("stop", args)
        if targets is None:
            return
        for location in targets:
            stream = self._streams.pop(location, None)
            if stream is not None and stream.call is not None and stream.call.active():
                stream.call.cancel()
        self._send_command_ack("stop", args)

    def _command_getdata(self, args: list[str]) -> None:
        if self.stream_mode != "pull":
            self._send("err~getdata~not in pull mode")
            return
        try:
            most = int(args[0])
            if most < 0:
                raise ValueError(most)
        except (IndexError, ValueError):
            self._send("err~getdata~invalid count")
            return
        targets = self._targets("getdata", args[1:])
        if targets is None:
            return
        explicit = self._sequence_argument("getdata", args[1:]) if len(args) > 2 else None
        if len(args) > 2 and explicit is None:
            return
        session = self._controller.session
        batch: list[SimulatedRead] = []
        finished: list[str] = []  # locations this answer takes to their last read
        for location in targets:
            room = most - len(batch)
            if room <= 0:
                break
            first = explicit if explicit is not None else self._pull_next.get(location, 1)
            reads = session[location]
            start = bisect.bisect_left([read.sequence_number for read in reads], first)
            chunk = reads[start:start + room]
            batch.extend(chunk)
            if chunk:
                self._pull_next[location] = chunk[-1].sequence_number + 1
            if start + len(chunk) >= len(reads):
                finished.append(location)
        self._send(f"ack~getdata~{len(batch)}")
        try:
            for read in batch:
                if not self._can_write():
                    return
                self._write_read(read)
        finally:
            self._flush_reads()
        for location in finished:
            self._controller._location_caught_up(location)

    def _targets(self, command: str, args: list[str]) -> list[str] | None:
        """The locations a command names: all known now, or the one given."""
        if not args or args[0] == "":
            return list(self._controller.locations)
        if args[0] not in self._controller.locations:
            self._send(f"err~{command}~unknown location {args[0]}")
            return None
        return [args[0]]

    def _sequence_argument(self, command: str, args: list[str]) -> int | None:
        if len(args) < 2 or args[1] == "":
            return 1
        try:
            sequence = int(args[1])
            if sequence < 1:
                raise ValueError(sequence)
        except ValueError:
            self._send(f"err~{command}~invalid sequence number {args[1]}")
            return None
        return sequence

    def _send_command_ack(self, command: str, args: list[str]) -> None:
        if self.pushmode_ack:
            self._send(f"ack~{command}~{args[0]}" if args and args[0] else f"ack~{command}")

    # Streaming (push mode)

    def _start_stream(self, location: str, first_sequence: int) -> None:
        """(Re)start a location at ``first_sequence``, inclusive, as a controller does."""
        old = self._streams.get(location)
        if old is not None and old.call is not None and old.call.active():
            old.call.cancel()
        reads = self._controller.session[location]
        start = bisect.bisect_left([read.sequence_number for read in reads], first_sequence)
        stream = _LocationStream(location, start, self._clock.seconds())
        self._streams[location] = stream
        self._pump(stream)

    def _pump(self, stream: _LocationStream) -> None:
        """Write what is due now, then yield to the reactor and come back for more."""
        stream.call = None
        config = self._controller.config
        reads = self._controller.session[stream.location]
        budget = config.chunk_size
        if config.rate > 0:
            elapsed = self._clock.seconds() - stream.started_at
            due = int(elapsed * config.rate + 1e-9) + 1 - stream.sent
            budget = min(budget, due)
        try:
            if self._controller.watches_each_read:
                while budget > 0 and stream.next_index < len(reads):
                    if not self._can_stream() or self._streams.get(stream.location) is not stream:
                        return
                    self._write_read(reads[stream.next_index])
                    stream.next_index += 1
                    stream.sent += 1
                    budget -= 1
            elif self._can_stream() and self._streams.get(stream.location) is stream:
                run = reads[stream.next_index:stream.next_index + max(budget, 0)]
                self._write_reads(stream.location, run)
                stream.next_index += len(run)
                stream.sent += len(run)
        finally:
            self._flush_reads()
        if self._streams.get(stream.location) is not stream:
            return
        if stream.next_index >= len(reads):
            self._controller._location_caught_up(stream.location)
        elif self._can_stream():
            self._schedule(stream)

    def _schedule(self, stream: _LocationStream) -> None:
        rate = self._controller.config.rate
        delay = 0.0
        if rate > 0:
            due_at = stream.started_at + stream.sent / rate
            delay = max(0.0, due_at - self._clock.seconds())
        stream.call = self._clock.callLater(delay, self._pump, stream)

    def _stop_streams(self) -> None:
        for stream in self._streams.values():
            if stream.call is not None and stream.call.active():
                stream.call.cancel()
            stream.call = None

    def _set_write_paused(self, paused: bool) -> None:
        self._write_paused = paused
        if paused or not self._can_stream():
            return
        reads = self._controller.session
        for stream in self._streams.values():
            if stream.call is None and stream.next_index < len(reads[stream.location]):
                self._schedule(stream)

    def _can_write(self) -> bool:
        return self._connected and not self.closing and not self.vanished

    def _can_stream(self) -> bool:
        return self._can_write() and not self._write_paused and self._phase == "commands"

    @property
    def is_streaming(self) -> bool:
        """Whether unsolicited tag lines may go out now (push mode, after a start)."""
        return self._can_write() and self.stream_mode == "push" and bool(self._streams)

    @property
    def is_idle(self) -> bool:
        """Connected past the handshake with nothing left to send on started locations."""
        session = self._controller.session
        return (self._can_write() and self._phase == "commands"
                and all(stream.next_index >= len(session[stream.location])
                        for stream in self._streams.values()))

    # Writing

    def _send(self, line: str) -> None:
        self._flush_reads()
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def _write_read(self, read: SimulatedRead) -> None:
        """Tag lines are handed to the transport a chunk at a time (``_flush_reads``), one write
        instead of one per line: at full speed the simulator shares the machine with the
        collector it measures. Anything else written, and any ending, flushes them first, so
        the order on the wire is the order of the calls."""
        self._read_lines.append(self.line_format.tag_line(read))
        self._controller._read_written(self, read)

    def _write_reads(self, location: str, reads: list[SimulatedRead]) -> None:
        """``_write_read`` for a run of one location's reads when nothing is due between two of
        them (no fault, malformed line or new location to slip in): one bookkeeping step for
        the run, as cheap as the simulator can be while it shares the machine it measures."""
        self._read_lines.extend(map(self.line_format.tag_line, reads))
        self._controller._reads_written(location, reads)

    def _flush_reads(self) -> None:
        if self._read_lines:
            lines, self._read_lines = self._read_lines, []
            lines.append("")
            self.transport.write("\r\n".join(lines).encode("utf-8"))

    def send_new_location(self, location: str, timestamp: datetime, reader_id: str) -> None:
        self._send(self.line_format.new_location_line(1, location, timestamp, reader_id))

    def send_malformed(self, number: int) -> None:
        self._flush_reads()
        self.transport.write(MALFORMED_LINES[number % len(MALFORMED_LINES)] + b"\r\n")

    # Ending (also the injected faults)

    def close(self) -> None:
        """Close cleanly: buffered lines are flushed first."""
        if self.closing or not self._connected:
            return
        self._release()
        self.transport.loseConnection()

    def abort(self) -> None:
        """Reset the connection at once; buffered lines may be lost."""
        if not self._connected:
            return
        self._release()
        self.transport.abortConnection()

    def _release(self) -> None:
        """Stop streaming and let the transport close (a registered producer blocks it)."""
        self._flush_reads()
        if not self.closing:
            self.closing = True
            self._stop_streams()
            self.transport.unregisterProducer()

    def vanish(self) -> None:
        """Go silent without closing: a half-open controller, as a cut cable leaves it."""
        self._flush_reads()
        self.vanished = True
        self._stop_streams()
        self.transport.pauseProducing()  # stop reading; nothing more is written


class _ControllerFactory(Factory):
    noisy = False  # one "Starting factory" line per reconnect says nothing useful

    def __init__(self, controller: SimulatedController) -> None:
        self._controller = controller

    def buildProtocol(self, addr: Any) -> ControllerProtocol:
        return ControllerProtocol(self._controller)


# --- One controller ---------------------------------------------------------------------


class _Condition:
    """Deferreds waiting for a condition that, once true, stays true."""

    def __init__(self, holds: Callable[[], bool]) -> None:
        self._holds = holds
        self._waiters: list[Deferred[None]] = []
        self._failure: Failure | None = None

    def wait(self) -> Deferred[None]:
        if self._failure is not None:
            return Deferred.fromFailure(self._failure)
        if self._holds():
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def check(self) -> None:
        if self._waiters and self._holds():
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def fail(self, reason: Failure, *, for_good: bool) -> None:
        """Fail current waiters (and, ``for_good``, later ones) unless it already holds."""
        if self._holds():
            return
        if for_good:
            self._failure = reason
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(reason)


class SimulatedController:
    """One simulated controller: its session, connections, reconnects and faults.

    ``reactor`` must provide ``callLater``/``seconds`` (a ``task.Clock`` is enough for
    driving ``build_protocol()`` over a ``StringTransport``) and, for ``start()``, TCP
    and name resolution, unless an ``endpoint`` is given.
    """

    def __init__(self, config: SimulatorConfig, reactor: Any, index: int = 0, *,
                 endpoint: IStreamClientEndpoint | None = None,
                 on_command: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.reactor = reactor
        self.index = index
        self.on_command = on_command
        self._endpoint = endpoint
        self.connection_id = connection_id_for(config, index)
        self.session = build_session(config, index)
        self.locations: list[str] = list(locations_for(config, index))
        self.reader_ids = {
            name: reads[0].reader_id if reads else reader_id_for(config, index, position)
            for position, (name, reads) in enumerate(self.session.items())}
        self._new_location = new_location_for(config, index)
        self._announce_pending = False
        self._announce_time = config.base_time
        self._unsent = {name: {read.sequence_number for read in self.session[name]}
                        for name in self.locations}
        # What happened, for tests and the summary
        self.commands_received: list[str] = []
        self.replies_received: list[str] = []
        self.server_greetings: list[str] = []
        self.settings_received: list[dict[str, str]] = []
        self.reads_sent: dict[str, int] = {name: 0 for name in self.locations}
        self.total_reads_sent = 0
        self.last_read_at: float | None = None  # reactor time of the latest read written
        self.malformed_sent = 0
        self.new_locations_announced = 0
        self.connections_made = 0
        self.connection_failures = 0
        self.faults_fired: list[str] = []
        # Machinery
        self._pending_faults = [(name, getattr(config, f"{name}_after"))
                                for name in ("drop", "abort", "vanish")
                                if getattr(config, f"{name}_after") is not None]
        self._current: ControllerProtocol | None = None
        self._open: set[ControllerProtocol] = set()
        self._running = False
        self._consecutive_failures = 0
        self._connect_call: IDelayedCall | None = None
        self._connecting: Deferred[Any] | None = None
        self._caught_up: set[str] = set()  # locations streamed through to the end
        self._all_sent_condition = _Condition(lambda: self.all_sent)
        self._caught_up_condition = _Condition(lambda: self.caught_up)

    @property
    def is_idle(self) -> bool:
        """Connected, and the server has been sent everything it asked for so far."""
        return self._current is not None and self._current.is_idle

    @property
    def reconnects(self) -> int:
        return max(0, self.connections_made - 1)

    @property
    def current_protocol(self) -> ControllerProtocol | None:
        return self._current

    @property
    def distinct_reads_sent(self) -> dict[str, int]:
        """Reads per location written at least once (re-sends counted once)."""
        return {name: len(self.session[name]) - len(self._unsent[name])
                for name in self.locations}

    @property
    def all_sent(self) -> bool:
        if self._new_location is not None and self._new_location not in self.locations:
            return False
        return not any(self._unsent.values())

    @property
    def caught_up(self) -> bool:
        if self._new_location is not None and self._new_location not in self.locations:
            return False
        return all(name in self._caught_up for name in self.locations)

    def when_all_sent(self) -> Deferred[None]:
        """Fires once every read of every location has been written at least once.

        Fails with CannotConnect if the controller gives up, or ControllerStopped if it
        is stopped first.
        """
        return self._all_sent_condition.wait()

    def when_caught_up(self) -> Deferred[None]:
        """Fires once every location has been sent through to its last read.

        Unlike ``when_all_sent`` this also holds when the server resumed past reads it
        already had (``start~finish~101``): the controller has nothing more to send.
        Fails like ``when_all_sent``.
        """
        return self._caught_up_condition.wait()

    def build_protocol(self) -> ControllerProtocol:
        """A protocol for one connection; tests attach it to a StringTransport."""
        return ControllerProtocol(self)

    # Connecting

    def start(self) -> None:
        """Connect, and keep reconnecting after drops until stopped or out of retries."""
        if self._running:
            return
        self._running = True
        self._connect()

    def _make_endpoint(self) -> IStreamClientEndpoint:
        if self._endpoint is None:
            if self.config.endpoint:
                self._endpoint = clientFromString(self.reactor, self.config.endpoint)
            else:
                self._endpoint = HostnameEndpoint(self.reactor, self.config.host,
                                                  self.config.port,
                                                  timeout=self.config.connect_timeout)
        return self._endpoint

    def _connect(self) -> None:
        self._connect_call = None
        if not self._running:
            return
        attempt = self._make_endpoint().connect(_ControllerFactory(self))
        self._connecting = attempt
        attempt.addCallbacks(self._connected, self._connect_failed)

    def _connected(self, protocol: ControllerProtocol) -> None:
        self._connecting = None
        self._consecutive_failures = 0

    def _connect_failed(self, reason: Failure) -> None:
        self._connecting = None
        if not self._running:
            return
        self.connection_failures += 1
        self._consecutive_failures += 1
        retries = self.config.connect_retries
        where = self.config.endpoint or f"{self.config.host}:{self.config.port}"
        if 0 <= retries < self._consecutive_failures:
            message = (f"controller {self.index} could not connect to {where} after "
                       f"{self._consecutive_failures} attempts: {reason.getErrorMessage()}")
            log.error("{message}", message=message)
            self._give_up(Failure(CannotConnect(message)))
            return
        log.warn("controller {index}: cannot connect to {where} ({reason}); retrying in "
                 "{delay}s", index=self.index, where=where, reason=reason.getErrorMessage(),
                 delay=self.config.reconnect_delay)
        self._schedule_connect()

    def _schedule_connect(self) -> None:
        if self._running and self._connect_call is None and self._connecting is None:
            self._connect_call = self.reactor.callLater(self.config.reconnect_delay,
                                                        self._connect)

    def _connection_made(self, protocol: ControllerProtocol) -> None:
        self._current = protocol
        self._open.add(protocol)
        self.connections_made += 1
        log.info("controller {index} connected (connection {number})", index=self.index,
                 number=self.connections_made)

    def _connection_lost(self, protocol: ControllerProtocol, reason: Failure | None) -> None:
        self._open.discard(protocol)
        if protocol is not self._current:
            return  # a vanished connection finally closed; its successor is in charge
        self._current = None
        log.info("controller {index} disconnected: {reason}", index=self.index,
                 reason=reason.getErrorMessage() if reason is not None else "closed")
        self._schedule_connect()

    def _give_up(self, reason: Failure) -> None:
        self._running = False
        self._all_sent_condition.fail(reason, for_good=True)
        self._caught_up_condition.fail(reason, for_good=True)

    def stop(self) -> Deferred[None]:
        """Stop reconnecting and close every connection (vanished ones included)."""
        self._running = False
        if self._connect_call is not None and self._connect_call.active():
            self._connect_call.cancel()
        self._connect_call = None
        if self._connecting is not None:
            attempt, self._connecting = self._connecting, None
            attempt.addErrback(lambda _: None)
            attempt.cancel()
        closing = []
        for protocol in list(self._open):
            closing.append(protocol.lost)
            if protocol.vanished:
                protocol.abort()  # a dead controller does not say goodbye
            else:
                protocol.close()  # no-op when already closing
        stopped = Failure(ControllerStopped(f"controller {self.index} stopped"))
        self._all_sent_condition.fail(stopped, for_good=False)
        self._caught_up_condition.fail(stopped, for_good=False)
        return gatherResults(closing).addCallback(lambda _: None)

    # Bookkeeping the protocol reports

    def _command_received(self, line: str) -> None:
        self.commands_received.append(line)
        log.info("controller {index} received: {command}", index=self.index, command=line)
        if self.on_command is not None:
            self.on_command(line)

    def _read_written(self, protocol: ControllerProtocol, read: SimulatedRead) -> None:
        self._count_sent(read.location_name, (read.sequence_number,))
        total = self.total_reads_sent
        every = self.config.malformed_every
        if every is not None and total % every == 0:
            protocol.send_malformed(self.malformed_sent)
            self.malformed_sent += 1
        self._announce_if_due(protocol, read.timestamp)
        for fault in list(self._pending_faults):
            name, threshold = fault
            if total >= threshold and protocol._can_write():
                self._pending_faults.remove(fault)
                self._fire_fault(name, protocol)
        self._all_sent_condition.check()

    @property
    def watches_each_read(self) -> bool:
        """Whether something may have to happen between two reads: a malformed line, a fault or
        the new location's appearance is counted in reads written."""
        return (self.config.malformed_every is not None or bool(self._pending_faults)
                or (self._new_location is not None
                    and (self._new_location not in self.locations or self._announce_pending)))

    def _reads_written(self, location: str, reads: list[SimulatedRead]) -> None:
        """``_read_written`` for a run of reads when ``watches_each_read`` is false."""
        if not reads:
            return
        self._count_sent(location, [read.sequence_number for read in reads])
        self._all_sent_condition.check()

    def _count_sent(self, location: str, sequences: Sequence[int]) -> None:
        self.total_reads_sent += len(sequences)
        self.last_read_at = self.reactor.seconds()
        self.reads_sent[location] += len(sequences)
        self._unsent[location].difference_update(sequences)

    def _location_caught_up(self, location: str) -> None:
        self._caught_up.add(location)
        self._caught_up_condition.check()

    def _fire_fault(self, name: str, protocol: ControllerProtocol) -> None:
        self.faults_fired.append(name)
        log.info("controller {index}: injected fault {fault} after {count} reads",
                 index=self.index, fault=name, count=self.total_reads_sent)
        if name == "drop":
            protocol.close()
        elif name == "abort":
            protocol.abort()
        else:
            protocol.vanish()
            self._current = None
            self._schedule_connect()  # a new connection; the old socket stays open

    def _announce_if_due(self, protocol: ControllerProtocol,
                         timestamp: datetime | None = None) -> None:
        """Let the new location appear once enough reads are out, and announce it."""
        name = self._new_location
        if name is None:
            return
        if name not in self.locations:
            if self.total_reads_sent < self.config.new_location_after:
                return
            self.locations.append(name)
            self.reads_sent[name] = 0
            self._unsent[name] = {read.sequence_number for read in self.session[name]}
            self._announce_pending = True
            self._announce_time = timestamp or self.config.base_time
        if self._announce_pending and protocol.is_streaming:
            self._announce_pending = False
            self.new_locations_announced += 1
            protocol.send_new_location(name, self._announce_time, self.reader_ids[name])

    def summary(self) -> str:
        sent = ", ".join(f"{name}={count}" for name, count in self.reads_sent.items())
        distinct = sum(self.distinct_reads_sent.values())
        return (f"controller {self.index} ({self.connection_id or 'no connection id'}): "
                f"reads sent {sent} ({distinct} distinct), connections "
                f"{self.connections_made}, reconnects {self.reconnects}"
                + (f", malformed {self.malformed_sent}" if self.malformed_sent else "")
                + (f", faults {'+'.join(self.faults_fired)}" if self.faults_fired else ""))


# --- A fleet ------------------------------------------------------------------------------


def make_controllers(reactor: Any, config: SimulatorConfig, count: int | None = None, *,
                     on_command: Callable[[int, str], None] | None = None
                     ) -> list[SimulatedController]:
    """``count`` (default ``config.controllers``) independent controllers, not started."""
    total = config.controllers if count is None else count
    controllers = []
    for index in range(total):
        callback = None
        if on_command is not None:
            callback = (lambda i: lambda line: on_command(i, line))(index)
        controllers.append(SimulatedController(config, reactor, index, on_command=callback))
    return controllers


def drive_controllers(reactor: Any, config: SimulatorConfig,
                      controllers: list[SimulatedController]
                      ) -> Deferred[list[SimulatedController]]:
    """Start the controllers, wait for the exit condition, stop them all.

    With ``exit_after_seconds`` the run lasts exactly that long (controllers keep
    serving reconnects and resumes until then). Otherwise it ends once every
    controller has sent every location through to its last read (``when_caught_up``)
    and then ``linger`` quiet seconds have passed with every controller connected and
    idle: a reconnect or a resume during the linger postpones the exit, so the server
    always gets time to store. Fails with CannotConnect as soon as any controller gives
    up.
    """
    outcome: Deferred[None] = Deferred()
    timers: list[IDelayedCall] = []

    def succeed_once(_: object = None) -> None:
        if not outcome.called:
            outcome.callback(None)

    def fail_once(reason: Failure) -> None:
        if not outcome.called:
            outcome.errback(reason)

    remaining = len(controllers)

    caught_up_at = 0.0

    def one_caught_up(_: object) -> None:
        nonlocal remaining, caught_up_at
        remaining -= 1
        if remaining == 0 and config.exit_after_seconds is None:
            caught_up_at = reactor.seconds()
            settle()

    def settle() -> None:
        if outcome.called:
            return
        now = reactor.seconds()
        last_activity = max([caught_up_at] + [c.last_read_at for c in controllers
                                              if c.last_read_at is not None])
        quiet_until = last_activity + config.linger
        if now >= quiet_until - 1e-9 and all(c.is_idle for c in controllers):
            succeed_once()
            return
        timers[:] = [timer for timer in timers if timer.active()]
        timers.append(reactor.callLater(max(quiet_until - now, 0.05), settle))

    for controller in controllers:
        controller.when_caught_up().addCallbacks(one_caught_up, fail_once)
    if config.exit_after_seconds is not None:
        timers.append(reactor.callLater(config.exit_after_seconds, succeed_once))

    def finish(result: object) -> Deferred[Any]:
        for timer in timers:
            if timer.active():
                timer.cancel()
        stopping = gatherResults([controller.stop() for controller in controllers])
        return stopping.addCallback(lambda _: result)

    outcome.addBoth(finish)
    outcome.addCallback(lambda _: controllers)
    for controller in controllers:
        controller.start()
    return outcome


def run_controllers(reactor: Any, config: SimulatorConfig, count: int | None = None, *,
                    on_command: Callable[[int, str], None] | None = None
                    ) -> Deferred[list[SimulatedController]]:
    """Run a fleet to completion; fires with the (stopped) controllers."""
    controllers = make_controllers(reactor, config, count, on_command=on_command)
    return drive_controllers(reactor, config, controllers)


# --- Command line ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number above zero")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _aware_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return value if value.tzinfo is not None else value.astimezone()


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="chronotrack-simulate",
        description="Simulate ChronoTrack controllers (the SimpleClient side of CTP01) "
                    "against a collector, with scriptable faults.")
    add = parser.add_argument
    connection = parser.add_argument_group("connection")
    connection.add_argument("--host", default=defaults.host,
                            help="collector host (default %(default)s)")
    connection.add_argument("--port", type=int, default=defaults.port,
                            help="collector port (default %(default)s)")
    connection.add_argument("--endpoint", default=None,
                            help="client endpoint string, e.g. tls:host=h:port=61611; "
                                 "overrides --host/--port")
    connection.add_argument("--reconnect-delay", type=_non_negative_float,
                            default=defaults.reconnect_delay,
                            help="seconds before reconnecting (default %(default)s)")
    connection.add_argument("--connect-timeout", type=float,
                            default=defaults.connect_timeout,
                            help="seconds per connection attempt (default %(default)s)")
    connection.add_argument("--connect-retries", type=int, default=defaults.connect_retries,
                            help="consecutive failed attempts retried before giving up; "
                                 "negative retries forever (default %(default)s)")
    identity = parser.add_argument_group("identity")
    identity.add_argument("--program-name", default=defaults.program_name,
                          help="program name in the greeting (default %(default)s)")
    identity.add_argument("--program-version", default=defaults.program_version)
    identity.add_argument("--event-name", default=defaults.event_name)
    identity.add_argument("--event-id", default=defaults.event_id)
    identity.add_argument("--event-description", default=defaults.event_description)
    ids = identity.add_mutually_exclusive_group()
    ids.add_argument("--connection-id", metavar="PREFIX", default=defaults.connection_id_prefix,
                     help="controllers answer getconnectionid with PREFIX-<n> "
                          "(default %(default)s)")
    ids.add_argument("--no-connection-id", action="store_true",
                     help="answer getconnectionid with err~getconnectionid~not supported")
    identity.add_argument("--reader-id", default=defaults.reader_id,
                          help="6 hex digits; location j of controller n uses this + n*256 + j "
                               "(default %(default)s)")
    identity.add_argument("--user-id", "--user", dest="user_id", default=defaults.user_id,
                          help="user id for servers that ask for authentication")
    identity.add_argument("--password", default=None,
                          help="password for servers that ask for authentication")
    session = parser.add_argument_group("session")
    session.add_argument("--locations", default=",".join(defaults.locations),
                         help="comma-separated location names (default %(default)s)")
    session.add_argument("--reads", type=_non_negative_int, default=defaults.reads,
                         help="runner reads per location (default %(default)s)")
    session.add_argument("--bib-start", type=_non_negative_int, default=defaults.bib_start,
                         help="first bib (default %(default)s)")
    session.add_argument("--bib-count", type=_positive_int, default=defaults.bib_count,
                         help="bibs cycle over this many numbers (default %(default)s)")
    session.add_argument("--gun-time", action="store_true",
                         help="send a guntime read as sequence 1 of every location")
    session.add_argument("--base-time", type=_aware_datetime, default=None,
                         help="ISO time of the gun (default: now, local time)")
    session.add_argument("--read-spacing", type=_non_negative_float,
                         default=defaults.read_spacing,
                         help="seconds between reads' timestamps (default %(default)s)")
    session.add_argument("--new-location", default=None,
                         help="announce this location with a newlocation line mid-stream")
    session.add_argument("--new-location-after", type=_non_negative_int,
                         default=defaults.new_location_after,
                         help="...after this many reads in total (default %(default)s)")
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--controllers", type=_positive_int, default=defaults.controllers,
                       help="independent controllers in this process (default %(default)s)")
    fleet.add_argument("--distinct-locations", action="store_true",
                       help="controller n names its locations <name>-<n>")
    output = parser.add_argument_group("line format and pace")
    output.add_argument("--separator-format", default=defaults.separator_format,
                        help="tag line format id, e.g. CT01_13 for commas, unless the server "
                             "asks for one (default %(default)s)")
    output.add_argument("--time-format-fallback", choices=TIME_FORMATS,
                        default=defaults.time_format_fallback,
                        help="time format when the server sends none (default %(default)s)")
    output.add_argument("--msecs-origin", choices=MSECS_ORIGINS,
                        default=defaults.msecs_origin,
                        help="what time-format=msecs counts from (default %(default)s)")
    output.add_argument("--rate", type=_non_negative_float, default=defaults.rate,
                        help="reads per second per location; 0 = as fast as possible "
                             "(default %(default)s)")
    faults = parser.add_argument_group("faults (each once per controller)")
    faults.add_argument("--drop-after", type=_positive_int, metavar="K",
                        help="close the connection cleanly after K reads in total")
    faults.add_argument("--abort-after", type=_positive_int, metavar="K",
                        help="reset the connection after K reads in total")
    faults.add_argument("--vanish-after", type=_positive_int, metavar="K",
                        help="go silent without closing after K reads (half-open), then "
                             "reconnect on a new connection")
    faults.add_argument("--malformed-every", type=_positive_int, metavar="K",
                        help="write a garbage line after every K reads")
    ending = parser.add_argument_group("exit")
    ending.add_argument("--linger", type=_non_negative_float, default=defaults.linger,
                        help="seconds to stay connected after every read is sent "
                             "(default %(default)s)")
    ending.add_argument("--exit-after-seconds", type=_non_negative_float, default=None,
                        metavar="S", help="run exactly S seconds instead")
    add("--quiet", action="store_true", help="do not print each command received")
    add("--verbose", action="store_true", help="log connection events to stderr")
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> SimulatorConfig:
    """Raises ValueError with every problem when the options do not fit together."""
    base_time = arguments.base_time or datetime.now().astimezone().replace(microsecond=0)
    return SimulatorConfig(
        host=arguments.host, port=arguments.port, endpoint=arguments.endpoint,
        program_name=arguments.program_name, program_version=arguments.program_version,
        locations=tuple(name.strip() for name in arguments.locations.split(",")),
        reads=arguments.reads, bib_start=arguments.bib_start, bib_count=arguments.bib_count,
        base_time=base_time, read_spacing=arguments.read_spacing,
        gun_time=arguments.gun_time, new_location=arguments.new_location,
        new_location_after=arguments.new_location_after, reader_id=arguments.reader_id,
        event_name=arguments.event_name, event_id=arguments.event_id,
        event_description=arguments.event_description,
        connection_id_prefix=None if arguments.no_connection_id else arguments.connection_id,
        user_id=arguments.user_id, password=arguments.password,
        separator_format=arguments.separator_format,
        time_format_fallback=arguments.time_format_fallback,
        msecs_origin=arguments.msecs_origin, rate=arguments.rate,
        controllers=arguments.controllers, distinct_locations=arguments.distinct_locations,
        reconnect_delay=arguments.reconnect_delay, connect_timeout=arguments.connect_timeout,
        connect_retries=arguments.connect_retries, drop_after=arguments.drop_after,
        abort_after=arguments.abort_after, vanish_after=arguments.vanish_after,
        malformed_every=arguments.malformed_every, linger=arguments.linger,
        exit_after_seconds=arguments.exit_after_seconds,
    )


def _start_logging(verbose: bool) -> None:
    from twisted.logger import (FilteringLogObserver, LogLevel, LogLevelFilterPredicate,
                                globalLogBeginner, textFileLogObserver)
    level = LogLevel.info if verbose else LogLevel.warn
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr),
                                    [LogLevelFilterPredicate(defaultLogLevel=level)])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


async def _run_command_line(reactor: Any, config: SimulatorConfig, quiet: bool) -> None:
    def print_command(index: int, line: str) -> None:
        print(f"controller {index} received: {line}", flush=True)

    controllers = make_controllers(reactor, config, on_command=None if quiet else print_command)
    printed = False

    def print_summary() -> None:
        nonlocal printed
        if printed:
            return
        printed = True
        for controller in controllers:
            print(controller.summary())
        total = sum(controller.total_reads_sent for controller in controllers)
        reconnects = sum(controller.reconnects for controller in controllers)
        print(f"total: {total} reads sent by {len(controllers)} controller(s), "
              f"{reconnects} reconnect(s)", flush=True)

    def on_interrupt() -> Deferred[Any]:
        # Ctrl-C: close the connections and still say what was sent.
        stopping = gatherResults([controller.stop() for controller in controllers])
        return stopping.addBoth(lambda _: print_summary())

    trigger = reactor.addSystemEventTrigger("before", "shutdown", on_interrupt)
    try:
        await drive_controllers(reactor, config, controllers)
    except CannotConnect as error:
        print(f"chronotrack-simulate: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from error
    except ControllerStopped as error:
        print("chronotrack-simulate: interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from error
    finally:
        reactor.removeSystemEventTrigger(trigger)
    print_summary()


def main(argv: Sequence[str] | None = None) -> None:
    """``chronotrack-simulate``: exits 0 on success, 2 if a controller cannot connect."""
    from twisted.internet import task

    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        config = config_from_arguments(arguments)
    except ValueError as error:
        parser.error(str(error))
    _start_logging(arguments.verbose)

    def run(reactor: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(_run_command_line(reactor, config, arguments.quiet))

    task.react(run)


__all__ = [
    "CannotConnect", "ControllerProtocol", "ControllerStopped", "LineFormat",
    "SimulatedController", "SimulatedRead", "SimulatorConfig", "build_session",
    "drive_controllers", "format_read_time", "main", "make_controllers", "run_controllers",
    "separator_for",
]

if __name__ == "__main__":
    main()
