"""What 0014 changed on timing_reads keeps every guarantee, for any writer (plain SQL here):

- a read's session must exist and its partner must be the session's partner (one composite
  foreign key instead of two single ones);
- deleting a session deletes its reads; deleting a partner deletes its sessions and reads;
- a read sent twice is stored once (the unique key now leads with partner and stream);
- the stream watermarks and the operators' newest-reads query still walk an index;
- the indexes are ascending (0019), packed as reads arrive, and still serve newest-first reads.

Real PostgreSQL with the migrated schema.
"""

from __future__ import annotations

import psycopg2
import pytest

from tests.postgres import query
from web.queries import Scope

READ_COLUMNS = ("session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code, read_time,"
                " read_timestamp, lap_count, reader_id, gator_number, raw_data")


def insert_read(dsn: str, session_id: int, partner_id: int, sequence: int = 1, stream: str = "connection:c1",
                on_conflict: str = "") -> list:
    return query(dsn, f"INSERT INTO timing_reads ({READ_COLUMNS}) VALUES (%s, %s, %s, %s, 'finish', '101',"
                      f" '09:00:00.00', now(), 0, 'BE0001', 1, 'raw') {on_conflict} RETURNING id",
                 (session_id, partner_id, stream, sequence))


def open_session(dsn: str, partner_slug: str, event: str) -> tuple[int, int]:
    query(dsn, "INSERT INTO timing_partners (slug, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
          (partner_slug, partner_slug))
    [(partner,)] = query(dsn, "SELECT id FROM timing_partners WHERE slug = %s", (partner_slug,))
    [(session, _)] = query(dsn, "SELECT * FROM open_timing_session(%s, %s, %s)", (partner, event, event))
    return session, partner


@pytest.fixture
def schema(database, pg_dsn):
    return pg_dsn


def test_a_read_must_carry_its_sessions_partner(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    _, other_partner = open_session(schema, "beta", "Beta 5K")
    insert_read(schema, session, partner)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        insert_read(schema, session, other_partner, sequence=2)


def test_a_read_must_name_an_existing_session_and_partner(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        insert_read(schema, session + 1000, partner)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        insert_read(schema, session, partner + 1000)


def test_deleting_a_session_or_a_partner_deletes_their_reads(schema):
    first, alpha = open_session(schema, "alpha", "Alpha 10K")
    second, beta = open_session(schema, "beta", "Beta 5K")
    insert_read(schema, first, alpha)
    insert_read(schema, second, beta)
    query(schema, "DELETE FROM timing_sessions WHERE id = %s", (first,))
    assert query(schema, "SELECT session_id FROM timing_reads") == [(second,)]
    query(schema, "DELETE FROM timing_partners WHERE id = %s", (beta,))
    assert query(schema, "SELECT count(*) FROM timing_reads") == [(0,)]


def test_a_read_sent_twice_is_stored_once(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    assert len(insert_read(schema, session, partner, on_conflict="ON CONFLICT ON CONSTRAINT timing_reads_once"
                                                                 " DO NOTHING")) == 1
    assert insert_read(schema, session, partner, on_conflict="ON CONFLICT ON CONSTRAINT timing_reads_once"
                                                             " DO NOTHING") == []
    with pytest.raises(psycopg2.errors.UniqueViolation):
        insert_read(schema, session, partner)
    # Another stream, or the next session of the event, is another read.
    assert len(insert_read(schema, session, partner, stream="connection:c2")) == 1
    query(schema, "UPDATE timing_sessions SET status = 'closed' WHERE id = %s", (session,))
    next_session, _ = open_session(schema, "alpha", "Alpha 10K")
    assert len(insert_read(schema, next_session, partner)) == 1


def plan(dsn: str, sql: str, params=()) -> str:
    query(dsn, "ANALYZE timing_reads")
    rows = query(dsn, "EXPLAIN " + sql, params)
    return "\n".join(row[0] for row in rows)


def test_the_watermark_range_scan_and_the_newest_reads_walk_an_index(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    query(schema, f"INSERT INTO timing_reads ({READ_COLUMNS})"
                  " SELECT %s, %s, 'connection:c' || (n %% 50), n, 'finish', '101', '09:00:00.00',"
                  " now() - n * interval '1 second', 0, 'BE0001', 1, 'raw' FROM generate_series(1, 20000) AS n",
          (session, partner))
    watermark = plan(schema, "SELECT DISTINCT sequence_number FROM timing_reads WHERE timing_partner_id = %s"
                             " AND stream_id = 'connection:c7' AND location_name = 'finish'"
                             " AND sequence_number > 100 AND sequence_number <= 1100", (partner,))
    assert "timing_reads_once" in watermark, watermark
    newest = plan(schema, "SELECT * FROM timing_reads ORDER BY read_timestamp DESC LIMIT 3")
    assert "timing_reads_by_time" in newest and "Sort" not in newest, newest
    assert query(schema, "SELECT advance_stream_watermark(%s, 'connection:c7', 'finish')", (partner,)) == [(0,)]
    # connection:c1 holds 1, 51, 101...: only 1 is contiguous from the start.
    assert query(schema, "SELECT advance_stream_watermark(%s, 'connection:c1', 'finish')", (partner,)) == [(1,)]


def fill_in_arrival_order(dsn: str, session: int, partner: int, count: int) -> None:
    """``count`` reads as a controller sends them: ids, times and sequence numbers all rising."""
    query(dsn, f"INSERT INTO timing_reads ({READ_COLUMNS})"
               " SELECT %s, %s, 'connection:c', n, 'finish', (100 + n %% 500)::text, '09:00:00.00',"
               " timestamptz '2026-11-26 09:00' + n * interval '1 millisecond', 0, 'BE0001', 1, 'raw'"
               " FROM generate_series(1, %s) AS n ORDER BY n", (session, partner, count))


def test_no_index_of_timing_reads_is_descending(schema):
    """Reads arrive in ascending order of every indexed key, and a descending index puts each
    one at its first page, which splits in half and leaves the older half for good (0019)."""
    descending = query(schema, """
        SELECT i.indexrelid::regclass::text FROM pg_index i
        WHERE i.indrelid = 'timing_reads'::regclass
          AND EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) AS option WHERE option & 1 = 1)
        ORDER BY 1""")
    assert descending == []


def test_the_time_and_partner_indexes_stay_packed_as_reads_arrive(schema):
    """Filled as tightly as the primary key (which only ever grows at its end), against twice
    the pages and more when they were descending: 20,000 reads, as the bench's 200,000 showed."""
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    fill_in_arrival_order(schema, session, partner, 20_000)
    [(primary, by_time, by_partner)] = query(schema, """
        SELECT pg_relation_size('timing_reads_pkey'), pg_relation_size('timing_reads_by_time'),
               pg_relation_size('timing_reads_by_partner')""")
    # Entries of 8 bytes of key like the primary key's, and of 16 for (partner, id): 1.4 times.
    assert by_time <= 1.15 * primary, (by_time, primary)
    assert by_partner <= 1.6 * primary, (by_partner, primary)


def test_a_partners_newest_reads_walk_its_index_backward_without_sorting(schema):
    """The order Scope.newest_first gives for one partner is the partner index read backward."""
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    other_session, other = open_session(schema, "beta", "Beta 5K")
    fill_in_arrival_order(schema, session, partner, 10_000)
    fill_in_arrival_order(schema, other_session, other, 10_000)
    scope = Scope.of_partners([partner])
    conditions, params = scope.conditions("r.timing_partner_id", newest_first=True)
    sql = (f"SELECT r.id FROM timing_reads r WHERE {' AND '.join(conditions)}"
           f" ORDER BY {scope.newest_first('r.timing_partner_id', 'r.id')} LIMIT 50")
    newest = plan(schema, sql, params)
    assert "Scan Backward using timing_reads_by_partner" in newest and "Sort" not in newest, newest
    expected = query(schema, "SELECT id FROM timing_reads WHERE timing_partner_id = %s ORDER BY id DESC LIMIT 50",
                     (partner,))
    assert query(schema, sql, params) == expected


def test_the_tag_bitmap_has_exactly_the_bits_of_its_slots(schema):
    slots = [0, 1, 7, 8, 4095, 8190, 8191, 7]
    [(built, expected)] = query(schema, """
        SELECT tags_bitmap(%s::int[])::text,
               (SELECT bit_or(set_bit(B'0'::bit(8192), slot, 1)) FROM unnest(%s::int[]) AS slot)::text""",
                                (slots, slots))
    assert built == expected
    assert [index for index, bit in enumerate(built) if bit == "1"] == sorted(set(slots))
    assert query(schema, "SELECT bit_count(tags_bitmap('{}'::int[]))") == [(0,)]


def test_store_timing_reads_stores_a_batch_with_its_session_locations_and_watermarks_once(schema):
    _, partner = open_session(schema, "alpha", "Alpha 10K")
    call = ("SELECT session_id, inserted FROM store_timing_reads(%s, 'E9', 'Relay', 86400, %s, %s,"
            " %s, %s, %s, %s, %s, %s::timestamptz[], %s, %s, %s, %s, %s::timestamptz[], %s, %s, %s)")
    numbers = [1, 2, 3, 5]
    arguments = (partner, ["finish"], ["BE0001"], ["connection:r"] * 4, numbers, ["finish"] * 4,
                 [str(100 + n) for n in numbers], ["09:00:00.00"] * 4, ["2026-11-26 09:00:00+00"] * 4, [0] * 4,
                 ["BE0001"] * 4, [1] * 4, [f"raw {n}" for n in numbers], ["2026-11-26 09:00:01+00"] * 4,
                 [None] * 4, ["connection:r"], ["finish"])
    [(session, inserted)] = query(schema, call, arguments)
    assert inserted == 4
    assert query(schema, "SELECT event_name FROM timing_sessions WHERE id = %s", (session,)) == [("Relay",)]
    assert query(schema, "SELECT sequence_number, location_id IS NOT NULL FROM timing_reads ORDER BY id") == [
        (n, True) for n in numbers]
    assert query(schema, "SELECT contiguous_through FROM stream_watermarks WHERE stream_id = 'connection:r'") == [
        (3,)]
    assert query(schema, call, arguments) == [(session, 0)]  # sent again: stored once
