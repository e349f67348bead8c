"""Reading many journal lines at once shares the sources and arrival times lines repeat,
and stays exactly as strict as reading each line on its own (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chronotrack.reads import ReadSource, TagRead
from chronotrack.storage.journal_lines import EntryDecoder, JournalEntry

RECEIVED = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
SOURCE = ReadSource("connection:c1", "10.0.0.1:1", connection_row_id=7, partner_id=3, event_id="E", event_name="E")


def entry(number: int) -> JournalEntry:
    read = TagRead("CT01_33", number, "finish", str(100 + number), "09:00:00.00", RECEIVED, 0, "BE0001", 1,
                   f"CT01_33~{number}~finish~{100 + number}~09:00:00.00~0~BE0001~1", RECEIVED)
    return JournalEntry(read, SOURCE)


def with_source(line: str, **changes) -> str:
    document = json.loads(line)
    for key, value in changes.items():
        if value is KeyError:
            del document["source"][key]
        else:
            document["source"][key] = value
    return json.dumps(document)


def test_lines_of_one_batch_decode_to_the_entries_written_sharing_their_source():
    decode = EntryDecoder().decode
    entries = [decode(entry(number).to_json()) for number in (1, 2, 3)]
    assert entries == [entry(1), entry(2), entry(3)]
    assert entries[0].source is entries[1].source is entries[2].source
    assert entries[0].read.received_at is entries[2].read.received_at


@pytest.mark.parametrize("changes", [
    {"connection_row_id": 7.0}, {"connection_row_id": True}, {"connection_row_id": "7"},
    {"connection_row_id": KeyError}, {"partner_id": [3]}, {"stream_id": None}, {"event_id": {"a": 1}},
])
def test_a_source_that_differs_only_in_type_or_presence_is_refused_after_a_good_one(changes):
    decode = EntryDecoder().decode
    good = entry(1).to_json()
    assert decode(good) == entry(1)
    with pytest.raises(ValueError):
        decode(with_source(good, **changes))
    with pytest.raises(ValueError):
        JournalEntry.from_json(with_source(good, **changes))
    assert decode(good) == entry(1)


def test_optional_source_fields_may_be_missing_or_null_as_before():
    decode = EntryDecoder().decode
    line = with_source(entry(1).to_json(), partner_id=KeyError, event_id=None)
    decoded = decode(line)
    assert decoded.source.partner_id is None and decoded.source.event_id is None
    assert decoded == JournalEntry.from_json(line)
