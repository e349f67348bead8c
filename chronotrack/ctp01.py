"""The CTP01 protocol as pure functions and small values: no I/O, no reactor.

Parsing what a controller sends (greetings, tag lines, replies) and deciding what we
send and when (the handshake plan, the start commands) live here, so they can be tested
line by line. ``chronotrack.protocol`` wires them to a transport, a clock and a store.
Field numbers and the rules behind them are in CTP01.md.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chronotrack import __version__
from chronotrack.config import ConfigError
from chronotrack.reads import GUN_TIME_TAG, NEW_LOCATION_TAG, TagRead

FIELD_SEPARATOR = "~"
TAG_LINE_FIELDS = 8
MAX_SEQUENCE_NUMBER = 999_999
MAX_LOCATION_LENGTH = 16
MAX_TAG_LENGTH = 8
FORBIDDEN_LOCATION_CHARACTERS = frozenset(",;~|\t\0")
SPECIAL_TAGS = frozenset((GUN_TIME_TAG, NEW_LOCATION_TAG))

# The high digit of the pair after "_" in a format id names the field separator.
SEPARATORS = {"1": ",", "2": ";", "3": "~", "4": "|", "5": "\t", "6": " "}
SEPARATOR_NAMES = {",": "commas", ";": "semicolons", "~": "tildes", "|": "pipes",
                   "\t": "tabs", " ": "spaces"}
KNOWN_FILE_FORMATS = ("01",)

HANDSHAKE_COMMANDS = ("geteventinfo", "getlocations", "getconnectionid")

# How an integer time field is read, by size (see parse_read_time):
# below 10**9: milliseconds since midnight of the event day (up to 11.5 days);
# 10 digits, 10**9 to 10**10: whole unix seconds (2001-09-09 to 2286-11-20);
# 11 digits: neither (epoch seconds past 2286, epoch milliseconds in 1970-73): rejected;
# 10**11 to 10**13: milliseconds since the epoch (March 1973 to 2286).
UNIX_SECONDS_FROM = 10**9
EPOCH_MILLISECONDS_THRESHOLD = 10**11
EPOCH_MILLISECONDS_UNTIL = 10**13
# Absolute times must fall in these years (UTC): anything else is no clock's reading.
EARLIEST_YEAR = 1970
LATEST_YEAR = 9998

_FORMAT_ID = re.compile(r"CT([0-9]{2})_([0-9])([0-9])")
_READER_ID = re.compile(r"[A-Za-z0-9]{6}")
_LAP_COUNT = re.compile(r"[0-9]{1,3}")
_GATOR = re.compile(r"[0-9]{1,2}")
_SEQUENCE = re.compile(r"[0-9]{1,6}")
_NORMAL_TIME = re.compile(r"([0-9]{1,4}):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,6}))?")
_ISO_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?")
_UNIX_TIME = re.compile(r"([0-9]{1,11})\.([0-9]{1,6})")
_MSECS_TIME = re.compile(r"[0-9]{1,15}")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class MalformedLine(ValueError):
    """A line that breaks CTP01; ``reason`` says how, in words an operator can act on.

    ``kind`` is a short fixed name for the reason (``bad_time``, ``not_utf8``...): what
    /status counts by, since ``reason`` quotes what the client sent and has no bound.
    """

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# --- bytes to text ----------------------------------------------------------------------


def decode_line(data: bytes) -> str:
    """The text of one received line (without its line end), or MalformedLine.

    Strict UTF-8 and no NUL: replacing what a controller sent would store something it
    never said, and PostgreSQL text cannot hold NUL at all.
    """
    data = data.rstrip(b"\r")
    if b"\0" in data:
        raise MalformedLine("line contains a NUL byte", "nul_byte")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedLine(
            f"line is not valid UTF-8 (byte {error.start})", "not_utf8") from None


def visible_text(data: bytes | str) -> str:
    """A line as text that can be stored and logged safely, every odd byte shown.

    Bytes that are not UTF-8 become ``\\xNN`` and control characters other than tab
    (NUL included) become ``\\xNN`` or ``\\uNNNN``; everything else, backslashes
    included, is kept as sent, so a rejected line that was plain text is stored exactly.
    """
    if isinstance(data, bytes):
        text = data.decode("utf-8", errors="surrogateescape")
    else:
        text = data
    if text.isprintable():  # the usual case, at C speed
        return text
    return _ODD_CHARACTER.sub(_escape_character, text)


_ODD_CHARACTER = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape_character(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, from surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code > 0xFF:
        return f"\\u{code:04x}"
    return f"\\x{code:02x}"


# --- what the controller sends ------------------------------------------------------


@dataclass(frozen=True)
class Greeting:
    """The client's first line: ``<program-name>~<program-version>~<protocol>``."""

    program_name: str
    program_version: str
    protocol: str


def parse_greeting(line: str) -> Greeting:
    """Read a client greeting; any program name is accepted, spaces included."""
    fields = _strip_line_end(line).split(FIELD_SEPARATOR)
    if len(fields) < 3:
        raise MalformedLine(
            f"a greeting is name~version~protocol, got {len(fields)} field(s)", "bad_greeting")
    name, version, protocol = fields[0], fields[1], fields[2]
    if not name.strip():
        raise MalformedLine("the greeting has an empty program name", "bad_greeting")
    return Greeting(program_name=name, program_version=version, protocol=protocol)


class LineKind(enum.Enum):
    TAG = "tag"
    ACK = "ack"
    ERR = "err"
    PING = "ping"
    AUTHORIZE = "authorize"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class IncomingLine:
    """What kind of line arrived; for replies, which command it answers and the rest.

    For ``authorize~<user-id>~<string>``, ``fields`` is (user id, string) with the string
    kept whole even if it holds the separator (a plaintext password may).
    """

    kind: LineKind
    command: str = ""
    fields: tuple[str, ...] = ()


def classify_line(line: str) -> IncomingLine:
    """Sort an incoming line so the protocol can dispatch on it without parsing it twice.

    Tag lines are recognised by their ``CTnn_nn`` prefix only; ``parse_tag_line`` then
    decides whether they are well formed.
    """
    text = _strip_line_end(line)
    if _FORMAT_ID.match(text):
        return IncomingLine(LineKind.TAG)
    if text.lower() == "ping":
        return IncomingLine(LineKind.PING)
    parts = text.split(FIELD_SEPARATOR)
    keyword = parts[0].lower()
    if keyword == "authorize" and len(parts) >= 2:
        user_id, _, proof = text.partition(FIELD_SEPARATOR)[2].partition(FIELD_SEPARATOR)
        return IncomingLine(LineKind.AUTHORIZE, command="authorize", fields=(user_id, proof))
    if len(parts) >= 2 and keyword in ("ack", "err"):
        kind = LineKind.ACK if keyword == "ack" else LineKind.ERR
        return IncomingLine(kind, command=parts[1].lower(), fields=tuple(parts[2:]))
    return IncomingLine(LineKind.UNKNOWN)


def is_tag_line(text: str) -> bool:
    """What ``classify_line`` calls a TAG line, for a line without its line end, at less cost."""
    return _FORMAT_ID.match(text) is not None


def loggable_line(line: str) -> str:
    """``line`` as it may appear in a log: an ``authorize`` line loses its password or proof."""
    incoming = classify_line(line)
    if incoming.kind is LineKind.AUTHORIZE:
        return f"authorize~{incoming.fields[0]}~(hidden)"
    return line


def parse_tag_bytes(data: bytes, event_timezone: tzinfo, event_day: date) -> TagRead:
    """``parse_tag_line`` for a line as received: any bytes give a read or MalformedLine."""
    return parse_tag_line(decode_line(data), event_timezone, event_day)


def parse_tag_line(line: str, event_timezone: tzinfo, event_day: date,
                   received_at: datetime | None = None) -> TagRead:
    """Parse one tag line in any ``CT01_ss`` separator, checking every field.

    Local times (``normal``, ``iso`` without a zone, ``msecs`` since midnight) are read
    in ``event_timezone`` on ``event_day``, because the protocol never says which zone
    a controller's clock is in. ``received_at`` (when the line arrived) is kept as is.
    """
    common = parse_common_tag_line(line, event_timezone, event_day, received_at)
    if common is not None:
        return common
    text = _strip_line_end(line)
    if "\0" in text:
        raise MalformedLine("line contains a NUL byte", "nul_byte")
    format_id, separator = _format_and_separator(text)
    fields = text.split(separator)
    if fields[0] != format_id:
        raise MalformedLine(
            f"format id {format_id} must be followed by its separator {separator!r}",
            "bad_format_id")
    if len(fields) != TAG_LINE_FIELDS:
        raise MalformedLine(
            f"expected {TAG_LINE_FIELDS} fields separated by {SEPARATOR_NAMES[separator]}, "
            f"got {len(fields)}", "field_count")
    _, sequence, location, tag, read_time, lap, reader_id, gator = fields
    return TagRead(
        format_id=format_id,
        sequence_number=_sequence_number(sequence),
        location_name=_location(location),
        tag_code=_tag(tag),
        read_time=read_time,
        read_timestamp=parse_read_time(read_time, event_timezone, event_day),
        lap_count=_small_number(lap, _LAP_COUNT, "lap count (field 5)", "up to 3 digits",
                                "bad_lap"),
        reader_id=_reader_id(reader_id),
        gator_number=_small_number(gator, _GATOR, "gator (field 7)", "up to 2 digits",
                                   "bad_gator"),
        raw_data=line,
        received_at=received_at,
    )


# The tag line nearly every controller sends: tildes (CT01_3x), a time in ``normal`` or in
# ``iso`` (what the handshake asks for) without a zone, and fields that are plainly valid
# (ASCII location, positive sequence number). One regular expression checks all of it at C
# speed; any other line, valid or not, takes the field-by-field path below, which alone
# words the reasons for rejecting a line. Every class here is a subset of the field rules
# there, so a line matched here is one the full path would accept with the same values.
_COMMON_TAG_LINE = re.compile(
    r"(CT01_3[0-9])~([0-9]{1,6})~([\x20-\x2b\x2d-\x3a\x3c-\x7b\x7d]{1,16})~([\x20-\x7d]{1,8})~"
    r"([0-9]{1,4}:[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?)"
    r"~([0-9]{1,3})~([A-Za-z0-9]{6})~([0-9]{1,2})")

_from_iso = datetime.fromisoformat


def parse_common_tag_line(line: str, event_timezone: tzinfo, event_day: date,
                           received_at: datetime | None) -> TagRead | None:
    """``parse_tag_line`` for the common shape of line in one pass, or None for any other.

    A line this returns a read for is a TAG line (``classify_line``) and a valid one. The
    expression has checked the time's shape, so an ``iso`` time (a dash after its year) is
    read by ``datetime.fromisoformat`` at C speed, which gives exactly what ``_iso_time``
    would for that shape and refuses the same impossible dates.
    """
    match = _COMMON_TAG_LINE.fullmatch(line)
    if match is None:
        return None
    format_id, sequence, location, tag, read_time, lap, reader_id, gator = match.groups()
    number = int(sequence)
    if not number:
        return None  # sequence 0: the full path words the rejection
    if read_time[4:5] == "-":
        try:
            stamp = _from_iso(read_time).replace(tzinfo=event_timezone)
        except ValueError:
            return None  # not a real date: the full path words the rejection
    else:
        clock, _, fraction = read_time.partition(".")
        hours, minutes, seconds = clock.split(":")
        stamp = _local_midnight(event_day, event_timezone) + timedelta(
            hours=int(hours), minutes=int(minutes), seconds=int(seconds),
            microseconds=int(fraction.ljust(6, "0")) if fraction else 0)
    if not EARLIEST_YEAR < stamp.year < LATEST_YEAR:
        return None  # near the limits the full path checks the year in UTC
    return TagRead(format_id, number, location, tag, read_time, stamp, int(lap),
                   reader_id, int(gator), line, received_at)


def detect_time_format(text: str) -> str:
    """Which ``time-format`` a time field is in: normal, iso, unix or msecs.

    Detected from the text rather than from what we asked for, so a controller that
    ignores our ``time-format=iso`` request is still read correctly.
    """
    if _NORMAL_TIME.fullmatch(text):
        return "normal"
    if _ISO_TIME.fullmatch(text):
        return "iso"
    if _UNIX_TIME.fullmatch(text):
        return "unix"
    if _MSECS_TIME.fullmatch(text):
        return "unix" if UNIX_SECONDS_FROM <= int(text) < 10 * UNIX_SECONDS_FROM else "msecs"
    raise MalformedLine(
        f"time {text!r} (field 4) is not in a CTP01 time format (normal, iso, unix, msecs)",
        "bad_time")


def parse_read_time(text: str, event_timezone: tzinfo, event_day: date) -> datetime:
    """Resolve a time field to an aware timestamp.

    - ``normal`` (``14:02:15.31``, hours may pass 24 on multi-day events): wall-clock
      time in ``event_timezone``, counted from midnight of ``event_day``.
    - ``iso`` (``2008-10-16T14:02:15.31``): in ``event_timezone`` unless it names a zone.
    - ``unix`` (``1224165735.31``): seconds since the epoch, returned in UTC.
    - A bare integer is decided by its size, because CTP01's own ``msecs`` example is
      inconsistent about the origin and some controllers send whole unix seconds:

      * below 10**9: milliseconds since midnight of ``event_day`` in ``event_timezone``
        (10**9 ms is 11.5 days, longer than any event);
      * exactly 10 digits (10**9 to 10**10 - 1): **whole unix seconds** such as
        ``1795503600`` (2001-09-09 to 2286-11-20), returned in UTC;
      * 11 digits: rejected, since it is no plausible reading in any unit (seconds past
        2286, milliseconds in 1970-1973, or four months after midnight);
      * 10**11 to 10**13 - 1: milliseconds since the epoch (March 1973 to 2286), in UTC.

    Absolute times outside the years 1970-9998 are rejected (no clock reads them, and
    they do not fit the database or the journal); a plausible time far from the server's
    clock is the caller's business (it is flagged, not rejected).

    Local wall-clock arithmetic is deliberate: midnight plus 14 h on a DST change day is
    14:00 on the controller's clock, which is what the controller meant.
    """
    kind = detect_time_format(text)
    try:
        if kind == "normal":
            stamp = _normal_time(text, event_timezone, event_day)
        elif kind == "iso":
            stamp = _iso_time(text, event_timezone)
        elif kind == "unix":
            seconds, _, fraction = text.partition(".")
            if int(seconds) >= 10 * UNIX_SECONDS_FROM:
                raise MalformedLine(f"time {text!r} (field 4) is unix seconds past 2286",
                                    "bad_time")
            stamp = _EPOCH + timedelta(seconds=int(seconds), microseconds=_microseconds(fraction))
        else:
            milliseconds = int(text)
            if milliseconds < UNIX_SECONDS_FROM:
                stamp = (_local_midnight(event_day, event_timezone)
                         + timedelta(milliseconds=milliseconds))
            elif EPOCH_MILLISECONDS_THRESHOLD <= milliseconds < EPOCH_MILLISECONDS_UNTIL:
                stamp = _EPOCH + timedelta(milliseconds=milliseconds)
            else:
                raise MalformedLine(
                    f"time {text!r} (field 4) is an integer of no plausible unit: 10 digits are "
                    "unix seconds, 12-13 digits epoch milliseconds, up to 9 digits "
                    "milliseconds since midnight", "bad_time")
        year = stamp.astimezone(timezone.utc).year
    except (OverflowError, ValueError) as error:
        if isinstance(error, MalformedLine):
            raise
        raise MalformedLine(f"time {text!r} (field 4) is out of range: {error}",
                            "bad_time") from None
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise MalformedLine(
            f"time {text!r} (field 4) is in the year {year}, outside "
            f"{EARLIEST_YEAR}-{LATEST_YEAR}", "bad_time")
    return stamp


# --- what we send -------------------------------------------------------------------


def local_timezone() -> tzinfo:
    """The server's own time zone, as a DST-aware zone where the system allows it."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with open(localtime, "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    fallback = datetime.now().astimezone().tzinfo
    return fallback if fallback is not None else timezone.utc


@dataclass(frozen=True)
class HandshakeSettings:
    """Everything that shapes one connection's conversation with a controller.

    The delays default to the system being replaced; zero is allowed for every one of
    them (CTP01 itself lets a server send at once).
    """

    greeting_delay: float = 0.5
    setting_delay: float = 0.1
    command_delay: float = 0.2
    ping_interval: float = 30.0
    idle_timeout: float = 90.0
    reply_timeout: float = 5.0
    greeting_timeout: float = 10.0
    pushmode_ack: bool = False
    event_timezone: tzinfo = field(default_factory=local_timezone)
    server_name: str = "ChronoTrackHub"
    server_version: str = __version__


def settings_from_config(values: Mapping[str, Any]) -> HandshakeSettings:
    """Build HandshakeSettings from ``chronotrack.config.resolve_settings`` output.

    Keys that are absent keep their defaults; ``event_timezone`` is an IANA name.
    """
    names = ("greeting_delay", "setting_delay", "command_delay", "ping_interval",
             "idle_timeout", "reply_timeout", "greeting_timeout", "pushmode_ack")
    chosen: dict[str, Any] = {name: values[name] for name in names
                              if values.get(name) is not None}
    zone_name = values.get("event_timezone")
    if zone_name:
        try:
            chosen["event_timezone"] = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigError(
                f"event-timezone: {zone_name!r} is not a known IANA time zone") from error
    return HandshakeSettings(**chosen)


def server_settings(settings: HandshakeSettings, extra: Sequence[str] = ()) -> list[str]:
    """The ``key=value`` request lines we send after our greeting.

    ``stream-mode=push`` always: CTP01's default is pull, and we are a push server.
    ``extra`` are per-connection lines (the authentication request and its seed).
    """
    lines = [
        "stream-mode=push",
        "time-format=iso",
        "location=multi",
        "guntimes=true",
        "newlocations=true",
        "connection-id=true",
    ]
    if settings.pushmode_ack:
        lines.append("pushmode-ack=true")
    lines.extend(extra)
    return lines


def server_greeting(settings: HandshakeSettings, setting_count: int) -> str:
    """Our reply to the client greeting: name, version and how many settings follow."""
    return FIELD_SEPARATOR.join(
        (settings.server_name, settings.server_version, str(setting_count)))


def handshake_plan(settings: HandshakeSettings,
                   extra_settings: Sequence[str] = ()) -> list[tuple[float, str]]:
    """Which lines go out after a greeting, each as (seconds after the previous line, line).

    The first delay counts from the greeting. Delays are relative rather than absolute
    so that lines are sent in order even when some delays are zero.
    """
    return reply_plan(settings, extra_settings) + command_plan(settings)


def reply_plan(settings: HandshakeSettings,
               extra_settings: Sequence[str] = ()) -> list[tuple[float, str]]:
    """Our greeting reply and its settings: the part of the handshake sent at once.

    Split from ``command_plan`` because with authentication on the commands wait until
    the controller has authorized.
    """
    lines = server_settings(settings, extra_settings)
    plan = [(settings.greeting_delay, server_greeting(settings, len(lines)))]
    plan += [(settings.setting_delay, line) for line in lines]
    return plan


def command_plan(settings: HandshakeSettings) -> list[tuple[float, str]]:
    """The handshake commands (event info, locations, connection id), spaced out."""
    return [(settings.command_delay, command) for command in HANDSHAKE_COMMANDS]


def start_commands(reported_locations: Iterable[str],
                   resume_points: Mapping[str, int]) -> list[str]:
    """The ``start`` lines that resume each location after the last read we kept.

    A bare ``start`` makes the controller replay its whole session, so it is only sent
    when the controller reported no locations. The controller may or may not re-send
    ``<seq>`` itself; the store keeps reads idempotently either way.
    """
    locations = list(dict.fromkeys(loc for loc in reported_locations if loc))
    if not locations:
        return ["start"]
    commands = []
    for location in locations:
        if location in resume_points:
            commands.append(f"start~{location}~{resume_points[location] + 1}")
        else:
            commands.append(f"start~{location}")
    return commands


def start_plan(commands: Iterable[str], settings: HandshakeSettings) -> list[tuple[float, str]]:
    """Space the start commands like every other command (see ``handshake_plan``)."""
    return [(settings.command_delay, command) for command in commands]


def stream_key(connection_id: str | None, event_id: str | None) -> str:
    """The key to ask the store for resume points of this connection's data stream.

    Without a connection id the stream is every reader of the event: the store treats
    a key ending in ``/reader:*`` as a prefix.
    """
    return read_stream_id(connection_id, event_id, "*")


def read_stream_id(connection_id: str | None, event_id: str | None, reader_id: str) -> str:
    """The stream id stored with each read (``ReadSource.stream_id``).

    The connection id is stable across reconnects; without it, event and reader id are
    the closest stable name for the data stream.
    """
    if connection_id:
        return f"connection:{connection_id}"
    return f"event:{event_id or 'unknown'}/reader:{reader_id}"


# --- helpers --------------------------------------------------------------------------


def _strip_line_end(line: str) -> str:
    return line.rstrip("\r\n")


def _format_and_separator(text: str) -> tuple[str, str]:
    match = _FORMAT_ID.match(text)
    if not match:
        raise MalformedLine("does not start with a CTff_ss format id", "bad_format_id")
    format_id = match.group(0)
    if match.group(1) not in KNOWN_FILE_FORMATS:
        raise MalformedLine(f"unknown format id {format_id}: only CT01_ss is known",
                            "bad_format_id")
    separator = SEPARATORS.get(match.group(2))
    if separator is None:
        raise MalformedLine(
            f"unknown format id {format_id}: separator digit {match.group(2)} is not 1-6",
            "bad_format_id")
    return format_id, separator


def _sequence_number(text: str) -> int:
    if not _SEQUENCE.fullmatch(text) or not 1 <= int(text) <= MAX_SEQUENCE_NUMBER:
        raise MalformedLine(
            f"sequence number {text!r} (field 1) must be 1 to {MAX_SEQUENCE_NUMBER}",
            "bad_sequence")
    return int(text)


def _location(text: str) -> str:
    if not 1 <= len(text) <= MAX_LOCATION_LENGTH:
        raise MalformedLine(
            f"location {text!r} (field 2) must be 1 to {MAX_LOCATION_LENGTH} characters",
            "bad_location")
    if FORBIDDEN_LOCATION_CHARACTERS & set(text):
        raise MalformedLine(
            f"location {text!r} (field 2) contains one of , ; ~ | tab NUL", "bad_location")
    if not text.isprintable():
        raise MalformedLine(
            f"location {text!r} (field 2) contains a control character", "bad_location")
    return text


def _tag(text: str) -> str:
    if text in SPECIAL_TAGS:  # "newlocation" is longer than any real tag
        return text
    if not 1 <= len(text) <= MAX_TAG_LENGTH or not text.isprintable():
        raise MalformedLine(
            f"tag {text!r} (field 3) must be 1 to {MAX_TAG_LENGTH} printable characters",
            "bad_tag")
    return text


def _reader_id(text: str) -> str:
    if not _READER_ID.fullmatch(text):
        raise MalformedLine(f"reader id {text!r} (field 6) must be 6 letters or digits",
                            "bad_reader")
    return text


def _small_number(text: str, pattern: re.Pattern[str], name: str, rule: str, kind: str) -> int:
    if not pattern.fullmatch(text):
        raise MalformedLine(f"{name} {text!r} must be {rule}", kind)
    return int(text)


def _microseconds(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0"))


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    key = (day, zone)
    midnight = _MIDNIGHTS.get(key)
    if midnight is None:
        if len(_MIDNIGHTS) > 64:
            _MIDNIGHTS.clear()
        midnight = _MIDNIGHTS[key] = datetime.combine(day, time(0), tzinfo=zone)
    return midnight


# Midnight of an event day in its zone, asked for by every ``normal`` time of that day.
_MIDNIGHTS: dict[tuple[date, tzinfo], datetime] = {}


def _normal_time(text: str, zone: tzinfo, event_day: date) -> datetime:
    match = _NORMAL_TIME.fullmatch(text)
    assert match is not None
    hours, minutes, seconds, fraction = match.groups()
    elapsed = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                        microseconds=_microseconds(fraction))
    return _local_midnight(event_day, zone) + elapsed


def _iso_time(text: str, event_timezone: tzinfo) -> datetime:
    match = _ISO_TIME.fullmatch(text)
    assert match is not None
    year, month, day, hour, minute, second, fraction, zone_text = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        _microseconds(fraction), tzinfo=_iso_zone(zone_text, event_timezone))
    except ValueError as error:
        raise MalformedLine(f"time {text!r} (field 4) is not a real date and time: {error}",
                            "bad_time") from None


def _iso_zone(zone_text: str | None, event_timezone: tzinfo) -> tzinfo:
    if not zone_text:
        return event_timezone
    if zone_text in ("Z", "z"):
        return timezone.utc
    sign = -1 if zone_text[0] == "-" else 1
    digits = zone_text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if offset >= timedelta(hours=24):
        raise ValueError("zone offset must be under 24 hours")
    return timezone(sign * offset)
