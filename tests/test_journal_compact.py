"""The journal's compact format 2: a read its raw tag line describes exactly is journaled as
that line plus a little metadata, and read back by splitting it, with every guarantee of
the JSON format 1: exact round trip, damaged or cut lines refused, old journals still read.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from twisted.internet import reactor

from chronotrack.ctp01 import parse_tag_line
from chronotrack.reads import ReadSource, TagRead
from chronotrack.storage.journal import ReadJournal
from chronotrack.storage.journal_lines import EntryDecoder, JournalEntry, encode_entries

ZONE = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 26)
RECEIVED = datetime(2026, 11, 26, 8, 0, 1, 250000, tzinfo=timezone.utc)
SOURCE = ReadSource("connection:c\t1 \u00e9", "10.0.0.1:5000", connection_row_id=7, partner_id=3,
                    event_id="E~1", event_name="Caf\u00e9 \"run\"\n")


def parsed(line: str, received: datetime | None = RECEIVED) -> JournalEntry:
    """An entry as the collector makes it: the line parsed, the source as the connection has it."""
    return JournalEntry(parse_tag_line(line, ZONE, DAY, received), SOURCE)


COMMON_LINES = [
    "CT01_33~1~finish~1234~2026-11-26T09:00:00.123~0~ABC001~1",
    "CT01_33~007~start~guntime~09:00:00~12~ABC001~03",  # leading zeros, a special tag
    "CT01_33~999999~Split 5 km~ 7 x~25:59:59.999999~999~zz99ZZ~99",
    "CT01_33~4~finish~1234~1795503600~0~ABC001~1",  # unix seconds: a UTC timestamp
    "CT01_33~5~finish~\\x\"{~2026-11-26T09:00:00+05:30~0~ABC001~1",  # a zone, JSON's special characters
]


def lines_of(entries: list[JournalEntry]) -> list[bytes]:
    """The lines written for ``entries``, without their newlines, as the journal reads them."""
    written = encode_entries(entries)
    assert written.endswith(b"\n") and written.count(b"\n") == len(entries)
    return written.split(b"\n")[:-1]


@pytest.mark.parametrize("line", COMMON_LINES)
def test_a_parsed_tag_line_is_journaled_compactly_and_read_back_exactly(line):
    entry = parsed(line)
    (written,) = lines_of([entry])
    assert written.startswith(b"2\t") and written.endswith(b"\t")
    assert line.encode() in written
    decoded = EntryDecoder().decode(written)
    assert decoded == entry
    assert decoded.read.read_timestamp.utcoffset() == entry.read.read_timestamp.utcoffset()
    assert type(decoded.read.sequence_number) is int and type(decoded.read.gator_number) is int


def test_a_read_without_arrival_time_round_trips_as_none():
    entry = parsed(COMMON_LINES[0], received=None)
    (written,) = lines_of([entry])
    assert written.startswith(b"2\t\t")
    assert EntryDecoder().decode(written) == entry


def _changed(entry: JournalEntry, **changes) -> JournalEntry:
    return JournalEntry(dataclasses.replace(entry.read, **changes), entry.source)


BASE = parsed(COMMON_LINES[0])
NOT_DESCRIBED_BY_THEIR_LINE = {
    "another location": _changed(BASE, location_name="start"),
    "another sequence number": _changed(BASE, sequence_number=2),
    "another gator": _changed(BASE, gator_number=11),
    "another lap": _changed(BASE, lap_count=1),
    "another tag": _changed(BASE, tag_code="1235"),
    "another reader": _changed(BASE, reader_id="ABC002"),
    "another time text": _changed(BASE, read_time="2026-11-26T09:00:00.124"),
    "another format id": _changed(BASE, format_id="CT01_34"),
    "commas": parsed("CT01_13,1,finish,1234,09:00:00,0,ABC001,1"),
    "tabs": parsed("CT01_53\t1\tfinish\t1234\t09:00:00\t0\tABC001\t1"),
    "non-ASCII": parsed("CT01_33~1~Z\u00fcrich~1234~09:00:00~0~ABC001~1"),
    "a line end kept in the raw line": parsed("CT01_33~1~finish~1234~09:00:00~0~ABC001~1\r\n"),
    "seven fields": _changed(BASE, raw_data="CT01_33~1~finish~1234~09:00:00~0~ABC001"),
    "a number that is not one": _changed(BASE, raw_data="CT01_33~x~finish~1234~2026-11-26T09:00:00.123~0~ABC001~1"),
}


@pytest.mark.parametrize("name", NOT_DESCRIBED_BY_THEIR_LINE)
def test_a_read_its_raw_line_does_not_describe_is_journaled_as_json_and_round_trips(name):
    entry = NOT_DESCRIBED_BY_THEIR_LINE[name]
    (written,) = lines_of([entry])
    assert written.startswith(b'{"v":1,')
    assert EntryDecoder().decode(written) == entry


@pytest.mark.parametrize("changes", [
    {"sequence_number": True}, {"lap_count": 0.0}, {"read_timestamp": datetime(2026, 11, 26, 9)},
    {"received_at": datetime(2026, 11, 26, 9)}, {"gator_number": "1"},
])
def test_a_read_that_would_not_survive_either_format_fails_the_batch(changes):
    with pytest.raises(ValueError):
        encode_entries([BASE, _changed(BASE, **changes)])


def test_a_source_that_would_not_survive_fails_the_batch():
    with pytest.raises(ValueError):
        encode_entries([JournalEntry(BASE.read, dataclasses.replace(SOURCE, connection_row_id="7"))])


def test_every_line_cut_short_is_refused():
    (written,) = lines_of([parsed(COMMON_LINES[2])])
    decode = EntryDecoder().decode
    for end in range(len(written)):  # up to the tab before the newline, which ends the entry
        with pytest.raises(ValueError):
            decode(written[:end])
    assert decode(written) == parsed(COMMON_LINES[2])


@pytest.mark.parametrize("damage", [
    lambda line: line.replace(b"~ABC001~", b"~ABC\xff01~"),  # not ASCII
    lambda line: line.replace(b"~ABC001~", b"~ABC\x0001~"),  # a control character
    lambda line: line.replace(b"~ABC001~", b"~ABC001~~"),  # nine fields
    lambda line: line.replace(b"~0~ABC001", b"~zero~ABC001"),  # a number that is not one
    lambda line: line.replace(b"+01:00\t", b"\t"),  # the time without its offset
    lambda line: line.replace(b"2026-11-26T09", b"2026-13-26T09", 1),  # no such date
    lambda line: line.replace(b'"peer"', b'"peer_"'),  # the source lacks a field
    lambda line: line.replace(b":7,", b":7.0,"),  # a row id that is not a whole number
    lambda line: b"3" + line[1:],  # an unknown version
    lambda line: line.replace(b"\t", b"\t\t", 1),  # a field too many
])
def test_a_damaged_compact_line_is_refused(damage):
    (written,) = lines_of([BASE])
    decode = EntryDecoder().decode
    assert decode(written) == BASE
    damaged = damage(written)
    assert damaged != written
    with pytest.raises(ValueError):
        decode(damaged)
    with pytest.raises(ValueError):
        decode(damaged.decode("latin-1"))


def test_the_source_of_the_lines_of_a_batch_is_decoded_once_and_shared():
    entries = [parsed(f"CT01_33~{n}~finish~1234~09:00:0{n}~0~ABC001~1") for n in range(1, 5)]
    decode = EntryDecoder().decode
    decoded = [decode(line) for line in lines_of(entries)]
    assert decoded == entries
    assert decoded[0].source is decoded[3].source
    assert decoded[0].read.received_at is decoded[3].read.received_at


# -- through the journal, on disk ----------------------------------------------------------


def batch(first: int, count: int) -> list[JournalEntry]:
    return [parsed(f"CT01_33~{n}~finish~{1000 + n}~2026-11-26T09:00:{n % 60:02d}.5~0~ABC001~1")
            for n in range(first, first + count)]


@pytest_twisted.ensureDeferred
async def test_read_back_and_recovery_give_back_compact_batches_exactly(tmp_path):
    journal = ReadJournal(tmp_path, reactor)
    await journal.open()
    first = await journal.append(batch(1, 50))
    second = await journal.append(batch(51, 3) + [NOT_DESCRIBED_BY_THEIR_LINE["non-ASCII"]])
    assert await journal.read_back(first) == batch(1, 50)
    assert await journal.read_back(second) == batch(51, 3) + [NOT_DESCRIBED_BY_THEIR_LINE["non-ASCII"]]
    await journal.close()
    assert await _reopen(tmp_path) == batch(1, 53) + [NOT_DESCRIBED_BY_THEIR_LINE["non-ASCII"]]


@pytest_twisted.ensureDeferred
async def test_a_damaged_line_read_back_costs_only_that_read(tmp_path):
    journal = ReadJournal(tmp_path, reactor)
    await journal.open()
    position = await journal.append(batch(1, 5))
    (segment,) = sorted(tmp_path.glob("segment-*.jsonl"))
    data = segment.read_bytes()
    third = data.index(b"~3~finish~")
    segment.write_bytes(data[:third] + b"~3~fin\xe9sh~" + data[third + len(b"~3~finish~"):])
    back = await journal.read_back(position)
    assert back == [entry for entry in batch(1, 5) if entry.read.sequence_number != 3]
    await journal.close()


@pytest_twisted.ensureDeferred
async def test_a_journal_written_before_the_compact_format_is_recovered_after_an_upgrade(tmp_path):
    """Segments holding only format 1 lines (what every earlier version wrote), one of them
    partly released and one ending in a torn line, come back as before, ahead of new reads."""
    old = batch(1, 6)
    (tmp_path / "segment-00000000000000000001.jsonl").write_text(
        "".join(entry.to_json() + "\n" for entry in old[:3]))
    released_offset = len(old[3].to_json()) + 1
    (tmp_path / "segment-00000000000000000002.jsonl").write_text(
        "".join(entry.to_json() + "\n" for entry in old[3:]) + old[0].to_json()[:40])
    (tmp_path / "released.json").write_text(
        '{"first_segment": 2, "segment": 2, "offset": %d}\n' % released_offset)
    journal = ReadJournal(tmp_path, reactor)
    recovered = await journal.open()
    assert recovered == old[:3] + old[4:]
    await journal.append(batch(7, 2))
    await journal.close()
    assert await _reopen(tmp_path) == old[:3] + old[4:] + batch(7, 2)


async def _reopen(directory: Path) -> list[JournalEntry]:
    journal = ReadJournal(directory, reactor)
    entries = await journal.open()
    await journal.close()
    return entries
