"""The CTP01 server: wires the pure core in ``chronotrack.ctp01`` to a TCP transport,
an injected clock and a ``ReadStore``.

One ``CTP01ServerProtocol`` per controller connection. It answers the client's
greeting with the handshake plan, resumes each location after the last read the store
kept, stores every read, pings to notice half-open connections, and never lets a bad
line or a failing store close a healthy connection.

With authentication on (a ``ControllerAuthenticator`` from the factory), nothing a
connection sends is stored and no command is sent until it has authorized; a failed
``authorize`` closes it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from chronotrack.accounts.authorization_gate import AuthorizationGate
from chronotrack.accounts.controller_auth import ControllerAuthenticator
from chronotrack.accounts.controller_logins import ControllerLogin
from chronotrack.admission import AdmissionPolicy
from chronotrack.ctp01 import (
    HANDSHAKE_COMMANDS,
    Greeting,
    HandshakeSettings,
    IncomingLine,
    LineKind,
    MalformedLine,
    classify_line,
    command_plan,
    decode_line,
    is_tag_line,
    loggable_line,
    parse_greeting,
    parse_common_tag_line,
    parse_tag_line,
    read_stream_id,
    reply_plan,
    start_commands,
    start_plan,
    stream_key,
    visible_text,
)
from chronotrack.line_guard import (
    REPLIES_PER_MINUTE,
    ConnectionLineGuard,
    LineLimits,
    RejectionTally,
)
from chronotrack.liveness import Deadline, IdleWatch
from chronotrack.reads import ReadSource, TagRead
from chronotrack.spaced_lines import SpacedLines
from chronotrack.storage.store import ReadStore

log = Logger()

LINE_END = b"\r\n"
_MAX_CACHED_SOURCES = 64


def describe_peer(address: IAddress) -> str:
    """``host:port`` for logs and ``ReadSource.peer``."""
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}"
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}"
    return str(address)


def peer_host(address: IAddress) -> str:
    """The address failures are counted against (the port changes on every connection)."""
    return getattr(address, "host", str(address))


class CTP01ServerProtocol(LineReceiver):
    """One controller connection, from greeting to disconnect.

    Receives lines ending in CR LF or a bare LF (some clients send either) and always
    sends CR LF.
    """

    delimiter = b"\n"
    MAX_LENGTH = 4096

    factory: CTP01ServerFactory

    def __init__(self) -> None:
        self.peer = "unknown"
        self.greeting: Greeting | None = None
        self.event_day: date | None = None
        self.connection_id: str | None = None
        self.event_name: str | None = None
        self.event_id: str | None = None
        self.reported_locations: list[str] = []
        self.stream_id: str | None = None  # set once the stream is resolved
        self.partner_id: int | None = None  # None: the default partner (no authentication)
        self.user_id: str | None = None  # the controller login, once authorized
        self._gate: AuthorizationGate | None = None  # set in connectionMade
        self._greeting_deadline: Deadline | None = None
        self._greeting_line = ""
        # Refused (err~authorize, blocked address) or closing for garbage: nothing more is read.
        self._refused = False
        self._row_requested = False
        self._closed = False
        self._paused = False
        self._awaiting_resume_points = False  # the store may wait for its database meanwhile
        self._discarding_overlong = False
        self._after_overlong: bytes | None = None
        self._row_id: int | None = None
        self._row_known = False
        self._row_waiters: list[Callable[[int | None], Any]] = []
        self._lines: SpacedLines | None = None  # what we send, on the clock; set in connectionMade
        self._idle: IdleWatch | None = None
        self._handshake_sent = False
        self._answered: set[str] = set()
        self._reply_timer: IDelayedCall | None = None
        self._stream_resolved = False
        self._resume_points: dict[str, int] = {}
        self._started_locations: set[str] = set()
        self.admitted_as: str | None = None  # the admission policy's key, set by the factory
        self._line_guard: ConnectionLineGuard | None = None
        self._line_rejected = False
        # While a dataReceived chunk is handled: its arrival time, shared by its lines.
        self._receiving = False
        self._chunk_received_at: datetime | None = None
        # One ReadSource per reader id and connection state, shared by the reads it names.
        self._sources: dict[tuple, ReadSource] = {}
        self._watched_read_deferred: Deferred[Any] | None = None

    # --- shortcuts ------------------------------------------------------------------

    @property
    def _clock(self) -> IReactorTime:
        return self.factory.clock

    @property
    def _settings(self) -> HandshakeSettings:
        return self.factory.settings

    @property
    def _store(self) -> ReadStore:
        return self.factory.store

    @property
    def authorized(self) -> bool:
        return self._gate is None or self._gate.authorized

    # --- connection lifetime ----------------------------------------------------------

    def connectionMade(self) -> None:
        self.peer = describe_peer(self.transport.getPeer())
        self._line_guard = ConnectionLineGuard(self.factory.rejections)
        host = peer_host(self.transport.getPeer())
        if not self.factory.authenticator.admits(host):
            self._refused = True  # before reading anything; the authenticator logs it
            self.transport.loseConnection()
            return
        self._gate = AuthorizationGate(self.factory.authenticator, host, self.peer,
                                       self._on_authorized, self._close_refused)
        self._lines = SpacedLines(self._clock, self.send)
        self._idle = IdleWatch(self._clock, self._settings.idle_timeout, self._settings.ping_interval,
                               lambda: self.send("ping"), self._on_silence, self._not_listening, self.peer)
        self.factory.open_connections.add(self)
        log.info("controller connected from {peer}", peer=self.peer)
        self._idle.start()
        self._greeting_deadline = Deadline(self._clock, self._settings.greeting_timeout,
                                           self._missed_greeting_deadline, lambda: self._paused)
        self._greeting_deadline.start()
        if self.factory.paused:
            self.pause_reading()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closed = True
        self.factory.release(self)
        self._cancel_timers()
        if self not in self.factory.open_connections:
            return  # blocked at connectionMade: already logged, nothing recorded
        self.factory.open_connections.discard(self)
        why = reason.getErrorMessage() if reason is not None else "connection lost"
        log.info("controller {peer} disconnected: {why}", peer=self.peer, why=why)
        if self._row_requested:
            self._with_row_id(
                lambda row_id: self._call_store("controller_disconnected", row_id, why))

    def _cancel_timers(self) -> None:
        if self._reply_timer is not None and self._reply_timer.active():
            self._reply_timer.cancel()
        self._reply_timer = None
        if self._greeting_deadline is not None:
            self._greeting_deadline.met()
        if self._gate is not None:
            self._gate.abandon()
        if self._lines is not None:
            self._lines.stop()
        if self._idle is not None:
            self._idle.stop()

    def pause_reading(self) -> None:
        """Stop reading from this controller (the store's backlog is full).

        The controller keeps its reads; we ask for them again when we resume. The idle
        timeout is suspended meanwhile, since we are the ones not listening.
        """
        self._paused = True
        if not self.transport.disconnecting:
            self.transport.pauseProducing()

    def resume_reading(self) -> None:
        """Read from this controller again; silence while paused does not count as idle."""
        self._paused = False
        if self._idle is not None:
            self._idle.heard()
        if not self.transport.disconnecting:
            self.transport.resumeProducing()

    # --- framing ------------------------------------------------------------------

    def sendLine(self, line: bytes) -> None:
        """Always end our lines in CR LF, whatever line end the client uses."""
        self.transport.write(line + LINE_END)

    def send(self, line: str) -> None:
        self.sendLine(line.encode("utf-8"))

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._idle is not None:
            self._idle.heard()
        if self._discarding_overlong:
            _, line_end, data = data.partition(self.delimiter)
            if not line_end:
                return
            self._discarding_overlong = False
        self._receiving = True
        try:
            self._receive_lines(data)
            # Framing stops after an overlong line; carry on with the lines behind it.
            while self._after_overlong is not None and not self._closed and not self._refused:
                rest, self._after_overlong = self._after_overlong, None
                self._receive_lines(rest)
        finally:
            self._receiving = False
            self._chunk_received_at = None

    def _receive_lines(self, data: bytes) -> Any:
        """``LineReceiver.dataReceived`` with one split per chunk instead of one per line.

        LineReceiver splits its buffer once per line, copying everything behind the line each
        time: on a 64 KiB chunk of some 1,300 tag lines that copying cost more than a fast
        parse of the lines. The framing is LineReceiver's: a partial line waits in
        ``_buffer``; an overlong line goes to ``lineLengthExceeded`` with everything behind
        it; after a line that pauses, closes or returns a reason the rest stays in
        ``_buffer``; data arriving while lines are handled is appended and handled after them.
        """
        if self._busyReceiving:
            self._buffer += data
            return None
        delimiter = self.delimiter
        self._busyReceiving = True
        try:
            pending = self._buffer + data
            self._buffer = b""
            while pending and not self.paused:
                lines = pending.split(delimiter)
                partial = lines.pop()
                for index, line in enumerate(lines):
                    if self.paused:
                        self._buffer = _rejoin(lines, index, delimiter, partial) + self._buffer
                        return None
                    if len(line) > self.MAX_LENGTH:
                        exceeded = _rejoin(lines, index, delimiter, partial) + self._buffer
                        self._buffer = b""
                        return self.lineLengthExceeded(exceeded)
                    why = self.lineReceived(line)
                    if why or self.transport and self.transport.disconnecting:
                        self._buffer = _rejoin(lines, index + 1, delimiter, partial) + self._buffer
                        return why
                pending, self._buffer = partial + self._buffer, b""
                if delimiter not in pending:
                    if len(pending) >= self.MAX_LENGTH + len(delimiter):
                        return self.lineLengthExceeded(pending)
                    break
            self._buffer = pending + self._buffer
            return None
        finally:
            self._busyReceiving = False

    def _received_at(self) -> datetime:
        """When the line being handled arrived: one clock reading per chunk, not per line."""
        received = self._chunk_received_at
        if received is None:
            received = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
            if self._receiving:
                self._chunk_received_at = received
        return received

    def lineLengthExceeded(self, line: bytes) -> None:
        """Reject the overlong line alone instead of dropping the connection."""
        overlong, line_end, rest = line.partition(self.delimiter)
        if line_end:
            self._after_overlong = rest
        else:
            self._discarding_overlong = True
        self._reject_too_long(overlong)

    def _reject_too_long(self, line: bytes) -> None:
        limit = self.factory.limits.max_line_length
        self._reject(line[:limit], f"line longer than {limit} bytes", "too_long")

    def lineReceived(self, line: bytes) -> None:
        if self._refused:
            return
        self._line_rejected = False
        if len(line.rstrip(b"\r")) > self.factory.limits.max_line_length:
            self._reject_too_long(line)
            return
        try:
            text = decode_line(line)
        except MalformedLine as error:
            self._reject(line.rstrip(b"\r"), error.reason, error.kind)
            return
        if not text.strip():
            self._on_blank_line()
            return
        try:
            if self.greeting is not None and self.event_day is not None and self.authorized:
                # A started stream: the common tag line is parsed at once, without _dispatch's questions.
                read = parse_common_tag_line(text, self._settings.event_timezone, self.event_day,
                                             self._received_at())
                if read is not None:
                    self._on_read(read)
                elif is_tag_line(text):
                    self._on_tag_line(text)
                else:
                    self._dispatch(text)
            else:
                self._dispatch(text)
        except Exception:
            # A bug in handling one line must not close a controller's connection.
            log.failure("error handling line {line!r} from {peer}", line=loggable_line(text),
                        peer=self.peer)
        if not self._line_rejected and self._line_guard is not None:
            self._line_guard.accepted()

    def _dispatch(self, text: str) -> None:
        incoming = classify_line(text)
        if _costs_a_reply(incoming) and not self._reply_allowed():
            self._reject(text, f"more than {REPLIES_PER_MINUTE} pings and replies in a minute",
                         "reply_flood")
        elif incoming.kind is LineKind.PING:
            self.send("ack~ping")
        elif not self.authorized:
            self._before_authorized(text, incoming)
        elif incoming.kind is LineKind.ACK:
            self._on_ack(incoming)
        elif incoming.kind is LineKind.ERR:
            self._on_err(incoming)
        elif self.greeting is None:
            self._before_greeting(text, incoming)
        elif incoming.kind is LineKind.TAG:
            self._on_tag_line(text)
        else:
            self._reject(text, "not a CTP01 tag line or reply", "unknown_line")

    def _reply_allowed(self) -> bool:
        """Pings and replies make us write, log or query: a flood of them is garbage."""
        return self._line_guard is None or self._line_guard.allow_reply(self._clock.seconds())

    # --- greeting and handshake -----------------------------------------------------------

    def _before_greeting(self, text: str, incoming: IncomingLine) -> None:
        if incoming.kind is LineKind.TAG:
            self._reject(text, "tag line before the client's greeting", "before_greeting")
            return
        try:
            greeting = parse_greeting(text)
        except MalformedLine as error:
            self._reject(text, f"bad greeting: {error.reason}", error.kind)
            return
        self._on_greeting(text, greeting)

    def _on_greeting(self, text: str, greeting: Greeting) -> None:
        self.greeting = greeting
        self._greeting_line = text
        zone = self._settings.event_timezone
        self.event_day = datetime.fromtimestamp(self._clock.seconds(), tz=zone).date()
        log.info("{peer} greeted: {program} {version} ({protocol})", peer=self.peer,
                 program=greeting.program_name, version=greeting.program_version,
                 protocol=greeting.protocol)
        assert self._gate is not None
        if self.authorized:
            self._begin_stream()
        self._lines.queue(reply_plan(self._settings, self._gate.setting_lines()))
        if self.authorized:
            self._lines.queue(command_plan(self._settings), after=self._on_handshake_sent)

    def _begin_stream(self) -> None:
        """Greeted (and authorized, if asked): the deadline is met and the connection recorded."""
        if self._greeting_deadline is not None:
            self._greeting_deadline.met()
        self._row_requested = True
        connected = self._call_store("controller_connected", self.peer, self._greeting_line)
        connected.addCallback(self._on_row_id)
        connected.addErrback(self._internal_error, "recording the connection row id")

    def _missed_greeting_deadline(self) -> None:
        if not self._refused:
            missing = "greet" if self.greeting is None else "authorize"
            log.warn("{peer} did not {missing} within {timeout} s; closing the connection",
                     peer=self.peer, missing=missing, timeout=self._settings.greeting_timeout)
        self.transport.abortConnection()

    # --- authorization (the gate decides; these route lines and act on its answer) --------

    def _before_authorized(self, text: str, incoming: IncomingLine) -> None:
        """Until authorized only the greeting and ``authorize`` count; other replies are ignored."""
        assert self._gate is not None
        if incoming.kind is LineKind.AUTHORIZE:
            self._gate.authorize(self.greeting is not None, *incoming.fields)
        elif incoming.kind in (LineKind.ACK, LineKind.ERR):
            log.info("{peer}: ignoring {kind} before authorization", peer=self.peer,
                     kind=incoming.kind.value)
        elif self.greeting is None:
            self._before_greeting(text, incoming)
        else:
            self._reject(text, "sent data before authorizing")

    def _on_authorized(self, login: ControllerLogin) -> None:
        if self._closed:
            return
        self.partner_id, self.user_id = login.partner_id, login.user_id
        self._begin_stream()
        self._lines.queue([(0.0, "ack~authorize")] + command_plan(self._settings),
                    after=self._on_handshake_sent)

    def _close_refused(self, message: str) -> None:
        """Answer err~authorize and close; nothing this connection sent is kept."""
        self._refused = True
        if self._lines is not None:
            self._lines.clear()
        self.send(f"err~authorize~{message}")
        self.transport.loseConnection()

    def _on_row_id(self, row_id: int | None) -> None:
        self._row_id = row_id
        self._row_known = True
        waiters, self._row_waiters = self._row_waiters, []
        for waiter in waiters:
            waiter(row_id)

    def _with_row_id(self, action: Callable[[int | None], Any]) -> None:
        """Run ``action`` once the store has given this connection its row id."""
        if self._row_known:
            action(self._row_id)
        else:
            self._row_waiters.append(action)

    def _on_handshake_sent(self) -> None:
        self._handshake_sent = True
        self._reply_timer = self._clock.callLater(
            self._settings.reply_timeout, self._on_reply_timeout)
        self._resolve_stream_when_answered()

    def _on_reply_timeout(self) -> None:
        self._reply_timer = None
        missing = sorted(set(HANDSHAKE_COMMANDS) - self._answered)
        log.warn("{peer} did not answer {missing} within {timeout} s; starting anyway",
                 peer=self.peer, missing=", ".join(missing),
                 timeout=self._settings.reply_timeout)
        self._resolve_stream()

    def _resolve_stream_when_answered(self) -> None:
        if self._handshake_sent and self._answered >= set(HANDSHAKE_COMMANDS):
            self._resolve_stream()

    def _resolve_stream(self) -> None:
        """Name the data stream, then ask the store where to resume it."""
        if self._stream_resolved or self._closed:
            return
        self._stream_resolved = True
        if self._reply_timer is not None and self._reply_timer.active():
            self._reply_timer.cancel()
        self._reply_timer = None
        key = stream_key(self.connection_id, self.event_id)
        self.stream_id = key
        event_name = self.event_name
        partner_id, user_id = self.partner_id, self.user_id
        self._with_row_id(lambda row_id: self._call_store(
            "controller_identified", row_id, key, event_name, partner_id, user_id))
        self._awaiting_resume_points = True
        points = self._call_store("resume_points", key, partner_id)
        points.addBoth(self._resume_points_known)
        points.addCallback(self._start_stream)
        points.addErrback(self._internal_error, "starting the stream")

    def _not_listening(self) -> bool:
        """While we are the ones keeping the controller waiting, its silence is not idleness."""
        return self._paused or self._awaiting_resume_points

    def _resume_points_known(self, result: Any) -> Any:
        self._awaiting_resume_points = False
        if self._idle is not None:
            self._idle.heard()
        return result

    def _start_stream(self, points: dict[str, int] | None) -> None:
        if self._closed:
            return
        self._resume_points = dict(points or {})
        reported = [loc for loc in self.reported_locations
                    if loc not in self._started_locations]
        if self.reported_locations and not reported:
            commands = []
        else:
            commands = start_commands(reported, self._resume_points)
        self._started_locations.update(reported)
        log.info("{peer}: stream {stream} resuming with {commands}", peer=self.peer,
                 stream=self.stream_id, commands=", ".join(commands) or "nothing new")
        self._lines.queue(start_plan(commands, self._settings))
        self._idle.start_pinging()

    # --- replies -----------------------------------------------------------------------

    def _on_ack(self, incoming: IncomingLine) -> None:
        command, fields = incoming.command, incoming.fields
        if command == "ping":
            return  # liveness only; the timestamp is already updated
        if command == "geteventinfo":
            self._on_event_info(fields)
        elif command == "getlocations":
            self._on_locations(fields)
        elif command == "getconnectionid":
            self._on_connection_id(fields)
        else:
            log.info("{peer}: ignoring reply ack~{command}", peer=self.peer, command=command)
            return
        self._answered.add(command)
        self._resolve_stream_when_answered()

    def _on_err(self, incoming: IncomingLine) -> None:
        message = "~".join(incoming.fields)
        log.warn("{peer} answered {command!r} with an error: {message}", peer=self.peer,
                 command=incoming.command, message=message)
        if incoming.command in HANDSHAKE_COMMANDS:
            self._answered.add(incoming.command)
            self._resolve_stream_when_answered()

    def _on_event_info(self, fields: tuple[str, ...]) -> None:
        name = fields[0] if len(fields) > 0 else ""
        event_id = fields[1] if len(fields) > 1 else ""
        description = "~".join(fields[2:])
        if self.event_name is None:
            self.event_name, self.event_id = name, event_id or None
        self._call_store("record_event_info", name, event_id, description, self._source_for("*"))

    def _on_locations(self, fields: tuple[str, ...]) -> None:
        locations = list(dict.fromkeys(loc for loc in fields if loc))
        if not self._stream_resolved:
            self.reported_locations = locations
        if locations:
            self._call_store("record_locations", locations, self._source_for("*"))

    def _on_connection_id(self, fields: tuple[str, ...]) -> None:
        connection_id = fields[0] if fields else ""
        if self._stream_resolved or self.connection_id:
            if connection_id != self.connection_id:
                log.warn("{peer}: ignoring a late connection id {id!r}", peer=self.peer,
                         id=connection_id)
            return
        self.connection_id = connection_id or None

    # --- tag lines -----------------------------------------------------------------------

    def _on_tag_line(self, text: str) -> None:
        assert self.event_day is not None
        try:
            read = parse_tag_line(text, self._settings.event_timezone, self.event_day,
                                  self._received_at())
        except MalformedLine as error:
            self._reject(text, error.reason, error.kind)
            return
        self._on_read(read)

    def _on_read(self, read: TagRead) -> None:
        self.factory.rejections.check_clock(self.peer, read, self._clock.seconds())
        if read.is_new_location:
            self._on_new_location(read)
            return
        self.factory.reads_received += 1
        self._keep_read(read, self._source_for(read.reader_id))

    def _keep_read(self, read: TagRead, source: ReadSource) -> None:
        """``_call_store("record_read", ...)`` without a Deferred and an errback per read.

        A store may hand reads of one batch the same Deferred: it is watched once.
        """
        try:
            kept = self._store.record_read(read, source)
        except Exception:
            self._store_failed(Failure(), "record_read")
            return
        if kept is not self._watched_read_deferred and isinstance(kept, Deferred):
            self._watched_read_deferred = kept
            kept.addErrback(self._store_failed, "record_read")

    def _on_new_location(self, read: TagRead) -> None:
        """Ask for the new location's reads, once per location per connection."""
        location = read.location_name
        self._call_store("record_locations", [location], self._source_for(read.reader_id))
        if location in self._started_locations:
            return
        self._started_locations.add(location)
        log.info("{peer}: new location {location}", peer=self.peer, location=location)
        commands = ["getlocations"] + start_commands([location], self._resume_points)
        self._lines.queue(start_plan(commands, self._settings))

    def _source_for(self, reader_id: str) -> ReadSource:
        key = (reader_id, self.connection_id, self.event_id, self.event_name, self._row_id,
               self.partner_id)
        source = self._sources.get(key)
        if source is None:
            if len(self._sources) >= _MAX_CACHED_SOURCES:
                self._sources.clear()  # a client inventing reader ids gets no memory out of it
            stream_id = read_stream_id(self.connection_id, self.event_id, reader_id)
            source = self._sources[key] = ReadSource(
                stream_id=stream_id, peer=self.peer, connection_row_id=self._row_id,
                partner_id=self.partner_id, event_id=self.event_id, event_name=self.event_name)
        return source

    def _reject(self, text: str | bytes, reason: str, kind: str = "other") -> None:
        """Count a line we cannot use; keep a sample of them, with why.

        The line guard decides what it may cost (stored, logged, or the connection
        closed when it sends almost nothing else): see chronotrack.line_guard. Before
        authorization nothing is kept: the line ends the connection instead.
        """
        if self._gate is not None and not self._gate.authorized:
            self._gate.refuse(reason)
            return
        self._line_rejected = True
        self.factory.lines_rejected += 1
        if self._line_guard is None:
            self._line_guard = ConnectionLineGuard(self.factory.rejections)
        verdict = self._line_guard.rejected(kind, self._clock.seconds())
        if isinstance(text, str):
            text = loggable_line(text)
        shown = visible_text(text) if verdict.log or verdict.store else ""
        if verdict.log:
            log.warn("rejected line from {peer}: {reason}{suppressed}", peer=self.peer,
                     reason=reason, line=shown, suppressed=_suppressed(verdict.suppressed))
        if verdict.store:
            self._call_store("record_rejected_line", shown, reason, self._source_for("*"))
        if verdict.close_because:
            self._close_for_garbage(verdict.close_because)

    def _on_blank_line(self) -> None:
        if self._line_guard is not None:
            because = self._line_guard.blank(self._clock.seconds())
            if because:
                self._close_for_garbage(because)

    def _close_for_garbage(self, because: str) -> None:
        """Stop reading at once and drop the connection: its lines are nearly all garbage."""
        self._refused = True
        self.clearLineBuffer()
        self._after_overlong = None
        self.factory.rejections.closed_for_garbage += 1
        if self.admitted_as is not None:
            self.factory.admission.penalize(self.admitted_as, self._clock.seconds())
        if self.factory.rejections.warnings.allow(self._clock.seconds()):
            log.warn("closing {peer}: {because}", peer=self.peer, because=because)
        self.transport.abortConnection()

    def _on_silence(self, silent_for: float) -> None:
        """Abort a connection silent for idle_timeout: a half-open one never closes itself."""
        log.warn("{peer} sent nothing for {seconds:.0f} s; closing the connection",
                 peer=self.peer, seconds=silent_for)
        self.transport.abortConnection()

    # --- the store ---------------------------------------------------------------------

    def _call_store(self, method: str, *args: Any) -> Deferred[Any]:
        """Call a store method; failures are logged and become None, never exceptions."""
        result = maybeDeferred(getattr(self._store, method), *args)
        result.addErrback(self._store_failed, method)
        return result

    def _internal_error(self, failure: Failure, doing: str) -> None:
        log.failure("error {doing} for {peer}", failure, doing=doing, peer=self.peer)

    def _store_failed(self, failure: Failure, method: str) -> None:
        log.failure("store.{method} failed for {peer}", failure, method=method, peer=self.peer)
        return None


def _rejoin(lines: list[bytes], start: int, delimiter: bytes, partial: bytes) -> bytes:
    """The bytes of ``lines[start:]`` and the partial line after them, as they arrived."""
    return b"".join(line + delimiter for line in lines[start:]) + partial


def _costs_a_reply(incoming: IncomingLine) -> bool:
    """A ping we answer, or a reply we log or record; ``ack~ping`` (to our keepalive) costs nothing."""
    if incoming.kind is LineKind.ACK:
        return incoming.command != "ping"
    return incoming.kind in (LineKind.PING, LineKind.ERR)


def _suppressed(count: int) -> str:
    return f" ({count} similar warnings not logged)" if count else ""


class CTP01ServerFactory(Factory):
    """Builds one protocol per controller and holds what /status reports.

    ``pause_all``/``resume_all`` are how the store pushes back when its in-memory
    backlog is full: controllers keep their reads while we stop reading.
    """

    protocol = CTP01ServerProtocol

    def __init__(self, store: ReadStore, clock: IReactorTime,
                 settings: HandshakeSettings, limits: LineLimits | None = None,
                 admission: AdmissionPolicy | None = None,
                 authenticator: ControllerAuthenticator | None = None) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.limits = limits or LineLimits()
        self.admission = admission or AdmissionPolicy()
        self.rejections = RejectionTally(self.limits)
        self.authenticator = authenticator or ControllerAuthenticator.open(clock)
        self.open_connections: set[CTP01ServerProtocol] = set()
        self.reads_received = 0
        self.lines_rejected = 0
        self.paused = False

    @property
    def authentication_failures(self) -> int:
        """Failed authorize attempts (wrong or unknown login, data before authorizing)."""
        return self.authenticator.failures

    def buildProtocol(self, addr: IAddress) -> CTP01ServerProtocol | None:
        """Admit the connection or close it before reading anything (see chronotrack.admission)."""
        refused, key = self.admission.admit(addr, self.clock.seconds())
        if refused is not None:
            if self.rejections.warnings.allow(self.clock.seconds()):
                log.warn("refused a connection from {peer}: {why}", peer=describe_peer(addr),
                         why=key)
            return None
        protocol = super().buildProtocol(addr)
        protocol.admitted_as = key
        # One byte over the limit for the CR of a CR LF line end; lineReceived checks exactly.
        protocol.MAX_LENGTH = self.limits.max_line_length + 1
        return protocol

    def release(self, protocol: CTP01ServerProtocol) -> None:
        if protocol.admitted_as is not None:
            self.admission.release(protocol.admitted_as)
            protocol.admitted_as = None


    def pause_all(self) -> None:
        """Stop reading from every controller, and from those that connect meanwhile."""
        self.paused = True
        for connection in list(self.open_connections):
            connection.pause_reading()

    def resume_all(self) -> None:
        self.paused = False
        for connection in list(self.open_connections):
            connection.resume_reading()
