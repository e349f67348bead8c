"""store_timing_reads (0017) on a real PostgreSQL: a batch goes in as a plain INSERT, and again
with ON CONFLICT only when one of its reads is already stored. Either way every new read is
stored once, in arrival order, and the figures and the NOTIFY see each batch once. Times come
as microseconds since the epoch and are stored exactly; the previous version's call (times as
timestamptz) still works."""

from __future__ import annotations

import select
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from tests.postgres import query

START = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
STREAM = "connection:ctl-1"


@pytest.fixture
def schema(database, pg_dsn):
    return pg_dsn


def at(number: int) -> datetime:
    """Read ``number``'s time: whole microseconds, so a rounding anywhere would show."""
    return START + timedelta(seconds=number, microseconds=number)


def micros(stamp: datetime) -> int:
    return (stamp - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def store(dsn: str, sequences: list[int], location: str = "finish", *, received: datetime | None = None,
          previous_version: bool = False) -> tuple[int, int]:
    """One call as the collector makes it (times as microseconds since the epoch), or as the
    previous version did (``previous_version``: times as timestamptz), for reads ``sequences``
    of one stream at one location."""
    count = len(sequences)
    stamps = [at(number) for number in sequences]
    arrivals = [received or stamp for stamp in stamps]
    times = [stamp.strftime("%H:%M:%S.00") for stamp in stamps]
    raw = [f"CT01_33~{number}~{location}~{1000 + number}~{time}~0~0F2A38~1" for number, time in zip(sequences, times)]
    time_type = "timestamptz" if previous_version else "bigint"
    if not previous_version:
        stamps, arrivals = [micros(stamp) for stamp in stamps], [micros(arrival) for arrival in arrivals]
    [(session, inserted)] = query(
        dsn, "SELECT session_id, inserted FROM store_timing_reads(NULL, '42', 'Turkey Trot', 60,"
             " %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[],"
             f" %s::{time_type}[], %s::int[], %s::text[], %s::int[], %s::text[], %s::{time_type}[],"
             " %s::bigint[], %s::text[], %s::text[])",
        ([location], ["0F2A38"], [STREAM] * count, sequences, [location] * count,
         [str(1000 + number) for number in sequences], times, stamps, [0] * count, ["0F2A38"] * count,
         [1] * count, raw, arrivals, [None] * count, [STREAM], [location]))
    return session, inserted


def stored_in_id_order(dsn: str) -> list[int]:
    return [number for (number,) in query(dsn, "SELECT sequence_number FROM timing_reads ORDER BY id")]


def figures(dsn: str) -> int:
    [(reads,)] = query(dsn, "SELECT coalesce(sum(reads), 0) FROM read_figures")
    return reads


def test_a_new_batch_is_stored_whole_in_arrival_order(schema):
    arrival = [5, 3, 9, 1, 7]
    _, inserted = store(schema, arrival)
    assert inserted == 5
    assert stored_in_id_order(schema) == arrival
    assert figures(schema) == 5


def test_a_batch_sent_again_stores_nothing_and_counts_nothing(schema):
    store(schema, [1, 2, 3])
    _, inserted = store(schema, [1, 2, 3])
    assert inserted == 0
    assert stored_in_id_order(schema) == [1, 2, 3]
    assert figures(schema) == 3


def test_a_batch_ending_with_a_stored_read_keeps_its_new_reads_once(schema):
    """The plain attempt inserts the new reads, then meets the stored one and is rolled back as a
    whole: the second attempt stores the new reads once, and the figures count them once."""
    store(schema, [4])
    _, inserted = store(schema, [1, 2, 3, 5, 4])
    assert inserted == 4
    assert stored_in_id_order(schema) == [4, 1, 2, 3, 5]
    assert figures(schema) == 5
    assert query(schema, "SELECT sum(reads) FROM read_minutes") == [(5,)]


def test_times_are_stored_exactly_and_a_read_far_from_its_arrival_is_marked(schema):
    late = START + timedelta(minutes=5)
    store(schema, [1, 2])
    store(schema, [3], received=late)
    rows = query(schema, "SELECT sequence_number, read_timestamp, received_at, clock_suspect FROM timing_reads"
                         " ORDER BY sequence_number")
    assert rows == [(1, at(1), at(1), False), (2, at(2), at(2), False),
                    (3, at(3), late, True)]  # 297 s off, the tolerance is 60 s


def test_the_previous_version_s_call_stores_the_same_reads(schema):
    """A collector of the previous version sharing the database sends times as timestamptz."""
    store(schema, [1, 2], previous_version=True)
    store(schema, [3], received=START + timedelta(minutes=5), previous_version=True)
    _, inserted = store(schema, [2, 4], previous_version=True)
    assert inserted == 1
    rows = query(schema, "SELECT sequence_number, read_timestamp, clock_suspect FROM timing_reads ORDER BY id")
    assert rows == [(1, at(1), False), (2, at(2), False), (3, at(3), True), (4, at(4), False)]


def test_a_read_repeated_within_one_batch_is_stored_once(schema):
    _, inserted = store(schema, [1, 2, 1])
    assert inserted == 2
    assert stored_in_id_order(schema) == [1, 2]


def test_the_display_is_woken_once_per_batch_with_its_lowest_and_highest_new_id(schema):
    listener = psycopg2.connect(schema)
    listener.autocommit = True
    try:
        listener.cursor().execute("LISTEN timing_reads")
        store(schema, [1])
        store(schema, [2, 3, 1])  # the plain attempt's NOTIFY is rolled back with it
        payloads = []
        while select.select([listener], [], [], 0.5)[0]:  # both are committed: all are queued
            listener.poll()
            payloads += [notify.payload for notify in listener.notifies]
            listener.notifies.clear()
        [(low, high)] = query(schema, "SELECT min(id), max(id) FROM timing_reads WHERE sequence_number > 1")
        assert payloads[-1] == f"{low}:{high}"  # the stored reads' ids (0018), not the rolled-back attempt's
        assert len(payloads) == 2
    finally:
        listener.close()
