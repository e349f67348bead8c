"""How a journal entry (a received read and its source) is written as one line, and read back.

Two formats, both read back (see ``journal``'s docstring): a JSON document (format 1,
``JournalEntry.to_json``: any read), and for the usual read whose fields are exactly those of
its raw tilde-separated CTP01 line, the compact format 2 (``2<TAB>received_at<TAB>source
JSON<TAB>read_timestamp<TAB>raw line<TAB>``), read back with a split instead of a JSON parse.
Pure functions and values, no I/O: ``journal`` owns the files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from chronotrack.reads import ReadSource, TagRead

_FORMAT_VERSION = 1
_COMPACT_VERSION = "2"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, init=False)
class JournalEntry:
    """One received read and where it came from: what the journal keeps per line.

    Its own ``__init__`` for the reason TagRead has one: one is built per read received.
    """

    read: TagRead
    source: ReadSource

    def __init__(self, read: TagRead, source: ReadSource) -> None:
        _set_entry_read(self, read)
        _set_entry_source(self, source)

    def to_json(self) -> str:
        """One line of JSON (no newline inside), ASCII only.

        ValueError for a naive timestamp, which could not be recovered exactly.
        """
        read = self.read
        return json.dumps(
            {
                "v": _FORMAT_VERSION,
                "read": {
                    "format_id": read.format_id,
                    "sequence_number": read.sequence_number,
                    "location_name": read.location_name,
                    "tag_code": read.tag_code,
                    "read_time": read.read_time,
                    "read_timestamp": _aware_isoformat(read.read_timestamp, "read_timestamp"),
                    "lap_count": read.lap_count,
                    "reader_id": read.reader_id,
                    "gator_number": read.gator_number,
                    "raw_data": read.raw_data,
                    "received_at": (
                        None if read.received_at is None
                        else _aware_isoformat(read.received_at, "received_at")
                    ),
                },
                "source": {
                    "stream_id": self.source.stream_id,
                    "peer": self.source.peer,
                    "connection_row_id": self.source.connection_row_id,
                    "partner_id": self.source.partner_id,
                    "event_id": self.source.event_id,
                    "event_name": self.source.event_name,
                },
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> JournalEntry:
        """Parse a line written by to_json (or in the compact format 2); ValueError for anything else.

        Strict on purpose: recovery must skip a damaged line, never turn it into a
        plausible but wrong read.
        """
        return EntryDecoder().decode(line)


_set_entry_read = JournalEntry.__dict__["read"].__set__
_set_entry_source = JournalEntry.__dict__["source"].__set__

_COMPACT_PREFIXES = (_COMPACT_VERSION + "\t", (_COMPACT_VERSION + "\t").encode("ascii"))
_SOURCE_KEYS = ("stream_id", "peer", "connection_row_id", "partner_id", "event_id", "event_name")
_MISSING = object()


class EntryDecoder:
    """``JournalEntry.from_json`` for the many lines of one batch or segment.

    A batch's reads come from a few controllers in a few chunks, so most lines repeat their
    source and arrival time: those are checked and built once per distinct value (keyed by
    value and type, so ``7``, ``7.0`` and ``true`` stay different), and the reads that
    share them share one object. Every line is as strictly checked as on its own.
    """

    def __init__(self) -> None:
        self._sources: dict[tuple, ReadSource] = {}
        self._compact_sources: dict[str, ReadSource] = {}
        self._times: dict[str, datetime] = {}

    def decode(self, line: str | bytes) -> JournalEntry:
        """One line of either format (see the module docstring); ValueError if damaged."""
        if line[:2] in _COMPACT_PREFIXES:
            return self.decode_compact(line)
        try:
            document = json.loads(line)
            if not isinstance(document, dict) or document.get("v") != _FORMAT_VERSION:
                raise ValueError("not a version 1 journal entry")
            read = document["read"]
            timestamp = _aware_datetime(typed_value(read, "read_timestamp", str), "read_timestamp")
            # Lines journaled before received_at existed still recover, as None.
            received_at = read.get("received_at")
            if received_at is not None:
                received_at = self._time(received_at)
            return JournalEntry(
                read=TagRead(
                    format_id=typed_value(read, "format_id", str),
                    sequence_number=typed_value(read, "sequence_number", int),
                    location_name=typed_value(read, "location_name", str),
                    tag_code=typed_value(read, "tag_code", str),
                    read_time=typed_value(read, "read_time", str),
                    read_timestamp=timestamp,
                    lap_count=typed_value(read, "lap_count", int),
                    reader_id=typed_value(read, "reader_id", str),
                    gator_number=typed_value(read, "gator_number", int),
                    raw_data=typed_value(read, "raw_data", str),
                    received_at=received_at,
                ),
                source=self._source(document["source"]),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed journal entry: {error!r}") from error

    def decode_compact(self, line: str | bytes) -> JournalEntry:
        """A format 2 line: the read's fields come from its raw line, split on tildes.

        As strict as format 1 where a value has a type to check: an aware timestamp, whole
        numbers, a source that format 1 would accept; and a raw line that is printable ASCII
        with exactly eight fields, as the writer makes sure.
        """
        try:
            if type(line) is bytes:
                line = line.decode("ascii")
            parts = line.split("\t")
            # The empty last field is the tab that ends the line: a line cut short lacks it.
            if len(parts) != 6 or parts[0] != _COMPACT_VERSION or parts[5]:
                raise ValueError("not a complete version 2 journal entry")
            _, received_text, source_text, stamp_text, raw, _ = parts
            source = self._compact_sources.get(source_text)
            if source is None:
                source = self._compact_source(source_text)
            stamp = datetime.fromisoformat(stamp_text)
            if stamp.tzinfo is None:
                raise ValueError("read_timestamp has no UTC offset")
            fields = raw.split("~")
            if len(fields) != 8 or not raw.isascii() or not raw.isprintable():
                raise ValueError("the raw line is not a tilde-separated tag line")
            format_id, sequence, location, tag, read_time, lap, reader_id, gator = fields
            return JournalEntry(
                TagRead(format_id, int(sequence), location, tag, read_time, stamp, int(lap), reader_id,
                        int(gator), raw, self._time(received_text) if received_text else None),
                source)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed journal entry: {error!r}") from error

    def _compact_source(self, text: str) -> ReadSource:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("the source is not an object")
        source = self._compact_sources[text] = self._source(document)
        return source

    def _time(self, text: object) -> datetime:
        if type(text) is not str:
            return _aware_datetime(text, "received_at")
        value = self._times.get(text)
        if value is None:
            value = self._times[text] = _aware_datetime(text, "received_at")
        return value

    def _source(self, source: dict[str, Any]) -> ReadSource:
        values = tuple(source.get(name, _MISSING) for name in _SOURCE_KEYS)
        try:
            key = (*map(type, values), *values)
            known = self._sources.get(key)
        except TypeError:  # a list or an object where a value belongs: refused below
            key, known = None, None
        if known is not None:
            return known
        row_id = source["connection_row_id"]
        row_id = None if row_id is None else typed_value(source, "connection_row_id", int)
        built = ReadSource(
            stream_id=typed_value(source, "stream_id", str),
            peer=typed_value(source, "peer", str),
            connection_row_id=row_id,
            # Lines journaled before partners existed recover into the default partner.
            partner_id=_optional(source, "partner_id", int),
            event_id=_optional(source, "event_id", str),
            event_name=_optional(source, "event_name", str),
        )
        if key is not None:
            self._sources[key] = built
        return built


def _aware_isoformat(value: datetime, name: str) -> str:
    # A naive timestamp would be written fine and then refused by recovery: a lost
    # read. Refuse it here, where the caller still holds the read.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")
    return value.isoformat()


def _aware_datetime(text: object, name: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{name} is not a string")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} has no UTC offset")
    return value


def typed_value(mapping: dict[str, Any], key: str, kind: type[_T]) -> _T:
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key} is not a {kind.__name__}")
    return value


def _optional(mapping: dict[str, Any], key: str, kind: type[_T]) -> _T | None:
    """A key that older journal lines lack, or that may be null."""
    return None if mapping.get(key) is None else typed_value(mapping, key, kind)


def encode_entries(entries: Sequence[JournalEntry]) -> bytes:
    """The batch's lines, cheaply: format 2 for a read its raw line describes exactly
    (``_compact_line``), else format 1 exactly as ``JournalEntry.to_json`` writes it.

    An acknowledged read must be recoverable: a value that would not survive the round
    trip (a wrong type, a naive timestamp) fails the append with ValueError, while the
    caller still holds the read, instead of being skipped as corrupt at the next start-up.
    That is checked field by field rather than by parsing every line back, which cost more
    than writing it. Reads of one chunk share their source and arrival time, so those parts
    are checked and encoded once per run of equal values.
    """
    encode = _ENCODER.encode
    lines = []
    last_source: ReadSource | None = None
    source_json = ""
    last_received: object = _MISSING
    received_text = ""
    received_json = "null"
    for entry in entries:
        read, source = entry.read, entry.source
        if source is not last_source:
            _check_source(source)
            last_source = source
            source_json = encode({
                "stream_id": source.stream_id,
                "peer": source.peer,
                "connection_row_id": source.connection_row_id,
                "partner_id": source.partner_id,
                "event_id": source.event_id,
                "event_name": source.event_name,
            })
        received = read.received_at
        if received is not last_received:
            if received is not None and (type(received) is not datetime or received.utcoffset() is None):
                raise ValueError(f"received_at must be an aware datetime, got {received!r}")
            last_received = received
            received_text = "" if received is None else received.isoformat()
            received_json = "null" if received is None else encode(received_text)
        line = _compact_line(read, received_text, source_json)
        if line is None:
            _check_recoverable(read, source)
            line = (
                '{"v":%d,"read":{"format_id":%s,"sequence_number":%d,"location_name":%s,'
                '"tag_code":%s,"read_time":%s,"read_timestamp":%s,"lap_count":%d,"reader_id":%s,'
                '"gator_number":%d,"raw_data":%s,"received_at":%s},"source":%s}\n' % (
                    _FORMAT_VERSION, encode(read.format_id), read.sequence_number,
                    encode(read.location_name), encode(read.tag_code), encode(read.read_time),
                    encode(read.read_timestamp.isoformat()), read.lap_count, encode(read.reader_id),
                    read.gator_number, encode(read.raw_data), received_json, source_json))
        lines.append(line)
    return "".join(lines).encode("ascii")


def _compact_line(read: TagRead, received_text: str, source_json: str) -> str | None:
    """The format 2 line of ``read``, or None if its raw line does not give back every field.

    The raw line must be printable ASCII (no tab, no line end) of eight tilde-separated
    fields that equal the read's, the numbers as ``int()`` reads them back: then the
    read-back split rebuilds exactly this read. Anything else (another separator, a read
    built by hand) is left to format 1, which can hold any read.
    """
    raw = read.raw_data
    if type(raw) is not str or not raw.isascii() or not raw.isprintable():
        return None
    fields = raw.split("~")
    if len(fields) != 8:
        return None
    format_id, sequence, location, tag, read_time, lap, reader_id, gator = fields
    sequence_number, lap_count, gator_number = read.sequence_number, read.lap_count, read.gator_number
    stamp = read.read_timestamp
    if not (format_id == read.format_id and location == read.location_name and tag == read.tag_code
            and read_time == read.read_time and reader_id == read.reader_id
            and type(sequence_number) is int and type(lap_count) is int and type(gator_number) is int
            and type(stamp) is datetime and stamp.utcoffset() is not None):
        return None
    try:
        if int(sequence) != sequence_number or int(lap) != lap_count or int(gator) != gator_number:
            return None
    except ValueError:
        return None
    return f"2\t{received_text}\t{source_json}\t{stamp.isoformat()}\t{raw}\t\n"


# The same output as json.dumps(..., separators=(",", ":")), built once instead of per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _check_source(source: ReadSource) -> None:
    """ValueError unless the decoder would give back exactly this source."""
    if not (type(source.stream_id) is str and type(source.peer) is str
            and (source.connection_row_id is None or type(source.connection_row_id) is int)
            and (source.partner_id is None or type(source.partner_id) is int)
            and (source.event_id is None or type(source.event_id) is str)
            and (source.event_name is None or type(source.event_name) is str)):
        raise ValueError(f"entry does not survive the journal round trip: {source!r}")


def _check_recoverable(read: TagRead, source: ReadSource) -> None:
    """ValueError unless ``from_json`` would give back exactly this read and source."""
    _check_source(source)
    if not (type(read.format_id) is str and type(read.sequence_number) is int
            and type(read.location_name) is str and type(read.tag_code) is str
            and type(read.read_time) is str and type(read.lap_count) is int
            and type(read.reader_id) is str and type(read.gator_number) is int
            and type(read.raw_data) is str and type(read.read_timestamp) is datetime):
        raise ValueError(f"entry does not survive the journal round trip: {read!r} {source!r}")
    # A naive timestamp would be written fine and then refused by recovery: a lost read.
    if read.read_timestamp.utcoffset() is None:
        raise ValueError(f"read_timestamp must be an aware datetime, got {read.read_timestamp!r}")
    received = read.received_at
    if received is not None and (type(received) is not datetime or received.utcoffset() is None):
        raise ValueError(f"received_at must be an aware datetime, got {received!r}")
