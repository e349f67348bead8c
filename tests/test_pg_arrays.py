"""Array literals built by chronotrack.storage.pg_arrays read back exactly on a real PostgreSQL,
and reads with awkward text go through the store's insert unchanged."""

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
import pytest_twisted

from chronotrack.reads import ReadSource, TagRead
from chronotrack.storage.pg_arrays import int_array, micros_array, text_array
from tests.postgres import query
from tests.test_pgstore import open_store  # noqa: F401 - fixture
from tests.waiting import wait_until

AWKWARD = ["", "plain", 'a "quoted" word', "back\\slash", "trailing\\", "{braces}", "a,b", "NULL",
           "  spaces  ", "Zieleinlauf \u00e9tape \u2603", "tab\there", "new\nline", "'single'"]


def test_text_array_reads_back_every_awkward_string_and_null(pg_dsn):
    values = AWKWARD + [None]
    [(back,)] = query(pg_dsn, "SELECT %s::text[]", (text_array(values),))
    assert back == values


@pytest.mark.parametrize("values", [
    [text for text in AWKWARD if '"' not in text and "\\" not in text],  # joined in one go
    ["plain", "NULL", "{braces}", 'one "quote"'],  # one quote: element by element
    ["", "x", None],
    [],
])
def test_text_array_reads_back_whichever_way_it_is_built(pg_dsn, values):
    [(back,)] = query(pg_dsn, "SELECT %s::text[]", (text_array(iter(values)),))
    assert back == values


def test_text_array_refuses_what_is_not_text():
    with pytest.raises((TypeError, AttributeError)):
        text_array(["a", 1])


def test_int_array_reads_back_and_refuses_what_is_not_an_integer(pg_dsn):
    values = [0, 1, -5, 2_147_483_647, None]
    [(back,)] = query(pg_dsn, "SELECT %s::bigint[]", (int_array(values),))
    assert back == values
    with pytest.raises(TypeError):
        int_array([True])
    with pytest.raises(TypeError):
        int_array(["1"])
    with pytest.raises(TypeError):
        int_array([1, 2.0])
    [(back, empty)] = query(pg_dsn, "SELECT %s::int[], %s::int[]", (int_array(iter([3, -4, 5])), int_array([])))
    assert back == [3, -4, 5] and empty == []


# The store sends times as microseconds since the epoch; the schema's timestamp_from_micros (0017)
# turns them back into instants.
_AS_INSTANTS = ("SELECT ARRAY(SELECT timestamp_from_micros(m)"
                " FROM unnest(%s::bigint[]) WITH ORDINALITY AS u (m, n) ORDER BY n)")


def test_micros_array_keeps_the_instant_of_every_zone_and_refuses_naive(database, pg_dsn):
    paris = datetime(2026, 3, 29, 1, 59, 59, 990000, tzinfo=ZoneInfo("Europe/Paris"))
    values = [paris, datetime(2026, 3, 29, 3, 0, 0, 10000, tzinfo=ZoneInfo("Europe/Paris")),
              datetime(1970, 1, 1, tzinfo=timezone.utc),
              datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=timezone.utc),
              datetime(2026, 11, 24, 9, 0, 7, 250000, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
              datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),  # past a double's exact microseconds
              None]
    [(back,)] = query(pg_dsn, _AS_INSTANTS, (micros_array(values),))
    assert back == values
    with pytest.raises(ValueError):
        micros_array([datetime(2026, 1, 1)])
    with pytest.raises(ValueError):
        micros_array([paris, datetime(2026, 1, 1, tzinfo=_NoOffset())])


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: the datetime is naive for every purpose."""

    def utcoffset(self, dt):
        return None


def test_micros_array_keeps_offsets_with_seconds_and_early_years(database, pg_dsn):
    values = [datetime(1900, 1, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam")),  # +00:19:32
              datetime(1, 1, 2, tzinfo=timezone(timedelta(hours=5, seconds=7)))]
    [(back,)] = query(pg_dsn, _AS_INSTANTS, (micros_array(values),))
    assert back == values


def test_micros_of_turns_instants_into_the_same_microseconds(database, pg_dsn):
    """The previous version's call (TIMESTAMPTZ[]) is converted by micros_of (0017)."""
    values = [datetime(2026, 11, 24, 9, 0, 7, 250001, tzinfo=ZoneInfo("Europe/Paris")),
              datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), None]
    [(micros,)] = query(pg_dsn, "SELECT micros_of(%s::timestamptz[])", (values,))
    assert "{" + ",".join("NULL" if m is None else str(m) for m in micros) + "}" == micros_array(values)


@pytest_twisted.ensureDeferred
async def test_reads_with_awkward_text_are_stored_exactly(pg_dsn, open_store):  # noqa: F811
    database, store = await open_store()
    stamp = datetime(2026, 11, 24, 9, 0, 0, tzinfo=timezone.utc)
    for seq, text in enumerate(AWKWARD, start=1):
        read = TagRead("CT01_33", seq, f"loc {text}", f"tag {text}", f"time {text}", stamp, 1,
                       f"reader {text}", 2, f"raw {text}", stamp)
        store.record_read(read, ReadSource(stream_id=f"stream {text}", peer="127.0.0.1:1"))
    await wait_until(lambda: store.reads_stored == len(AWKWARD))
    rows = query(pg_dsn, "SELECT stream_id, location_name, tag_code, read_time, reader_id, raw_data"
                         " FROM timing_reads ORDER BY sequence_number")
    assert rows == [(f"stream {t}", f"loc {t}", f"tag {t}", f"time {t}", f"reader {t}", f"raw {t}")
                    for t in AWKWARD]
    marks = query(pg_dsn, "SELECT stream_id, location_name FROM stream_watermarks ORDER BY 1")
    assert sorted(marks) == sorted((f"stream {t}", f"loc {t}") for t in AWKWARD)
