"""What one 5,000-read batch INSERT costs inside PostgreSQL, and which part of it is what.

    .venv/bin/python -m bench.insert_costs [--rows-before 200000] [--repeat 5] [--up-to 13] [--variants]

A private PostgreSQL, the schema migrated by the shipped files, a table already holding
``--rows-before`` reads, then the collector's own batch INSERT (``_INSERT_READS``,
arrays as the store builds them) timed:

- once under ``EXPLAIN ANALYZE``: PostgreSQL's own split into the insert itself, each
  foreign-key check and each statement trigger;
- then with one foreign key, index or trigger removed at a time, or without ON CONFLICT (0017's
  first attempt), or with times as microseconds (0017), each in a transaction that is rolled
  back: median of ``--repeat`` inserts each, each right after the median with everything on,
  so a change in the machine's load hits both alike.

Times are wall-clock on whatever machine runs it: a shared machine makes them noisy, so
read the differences between neighbouring lines, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta, timezone

import psycopg2

from chronotrack.storage.migrations import available_migrations
from chronotrack.storage.pg_arrays import int_array, micros_array, text_array
from chronotrack.storage.read_statements import DEFAULT_CLOCK_TOLERANCE
from tests.postgres import PostgresForTests

# The INSERT inside store_timing_reads (0014), as the store sent it on its own before, so the
# same statement can be timed on every schema version.
_INSERT_READS = """
INSERT INTO timing_reads (session_id, timing_partner_id, location_id, stream_id, sequence_number,
                          location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,
                          gator_number, raw_data, received_at, connection_id, clock_suspect)
SELECT %s, %s, locations.id, batch.stream_id, batch.sequence_number, batch.location_name, batch.tag_code,
       batch.read_time, batch.read_timestamp, batch.lap_count, batch.reader_id, batch.gator_number,
       batch.raw_data, batch.received_at, batch.connection_id,
       abs(extract(epoch FROM batch.read_timestamp - batch.received_at)) > %s
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
            %s::int[], %s::text[], %s::int[], %s::text[], %s::timestamptz[], %s::bigint[])
     WITH ORDINALITY AS batch (stream_id, sequence_number, location_name, tag_code, read_time, read_timestamp,
                               lap_count, reader_id, gator_number, raw_data, received_at, connection_id, arrival)
LEFT JOIN timing_locations AS locations
       ON locations.session_id = %s AND locations.location_name = batch.location_name
-- Ids in arrival order: the planner may hash the batch side of the join, which loses it.
ORDER BY batch.arrival
ON CONFLICT ON CONSTRAINT timing_reads_once DO NOTHING
"""

BATCH = 5000
LOCATIONS = ("start", "finish")


def migrate(connection, up_to: int | None) -> None:
    with connection.cursor() as cursor:
        for migration in available_migrations():
            if up_to is None or migration.version <= up_to:
                cursor.execute(migration.sql)
    connection.commit()


def setup(connection) -> tuple[int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_id, partner_id FROM open_timing_session(NULL, 'bench', 'Bench')")
        session_id, partner_id = cursor.fetchone()
        cursor.execute("INSERT INTO timing_locations (session_id, timing_partner_id, location_name)"
                       " SELECT %s, %s, unnest(%s::text[])", (session_id, partner_id, list(LOCATIONS)))
        cursor.execute("INSERT INTO controller_connections (peer) VALUES ('127.0.0.1:1') RETURNING id")
        connection_id = cursor.fetchone()[0]
    connection.commit()
    return session_id, partner_id, connection_id


def _timestamps(values) -> str:
    """A timestamptz[] literal, as the store sent times before 0017."""
    return "{" + ",".join(value.isoformat() for value in values) + "}"


def batch_params(session_id: int, partner_id: int, connection_id: int, stream: str, first: int,
                 micros: bool = False) -> tuple:
    """The store's parameters for BATCH reads, alternating the two locations, as a simulator sends
    them; with ``micros``, times as microseconds since the epoch (0017)."""
    now = datetime.now(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for offset in range(BATCH):
        number = first + offset // 2
        location = LOCATIONS[offset % 2]
        stamp = midnight + timedelta(seconds=number % 80000, microseconds=offset % 7 * 10000)
        read_time = stamp.strftime("%H:%M:%S.%f")[:11]
        tag = str(1000 + number % 5000)
        raw = f"CT01_33~{number}~{location}~{tag}~{read_time}~0~BE0001~1"
        rows.append((stream, number, location, tag, read_time, stamp, 0, "BE0001", 1, raw, now, connection_id))
    columns = list(zip(*rows))
    times = micros_array if micros else _timestamps
    arrays = (text_array(columns[0]), int_array(columns[1]), text_array(columns[2]), text_array(columns[3]),
              text_array(columns[4]), times(columns[5]), int_array(columns[6]), text_array(columns[7]),
              int_array(columns[8]), text_array(columns[9]), times(columns[10]), int_array(columns[11]))
    return (session_id, partner_id, DEFAULT_CLOCK_TOLERANCE, *arrays, session_id)


class Batches:
    """Fresh reads for every insert: a new stream id each time, so none conflicts."""

    def __init__(self, session_id: int, partner_id: int, connection_id: int) -> None:
        self.ids = (session_id, partner_id, connection_id)
        self.count = 0

    def next(self, micros: bool = False) -> tuple:
        self.count += 1
        return batch_params(*self.ids, stream=f"connection:bench-{self.count}", first=1, micros=micros)


def fill(connection, batches: Batches, rows: int) -> None:
    with connection.cursor() as cursor:
        for _ in range(rows // BATCH):
            cursor.execute(_INSERT_READS, batches.next())
            connection.commit()


# 0017 tries a batch without ON CONFLICT first (no speculative insertion), and with it only
# when a read of the batch is already stored.
_PLAIN_INSERT = "plain INSERT"
_PLAIN_INSERT_READS = _INSERT_READS.replace("ON CONFLICT ON CONSTRAINT timing_reads_once DO NOTHING", "")


# 0017 also sends read and arrival times as microseconds since the epoch (bigint[]), turned back
# into instants as timestamp_from_micros does (written out here, for schemas before 0017).
_MICROS = "times as microseconds"
_FROM_MICROS = "(to_timestamp({0} / 1000000) + ({0} %% 1000000) * INTERVAL '1 microsecond')"
_MICROS_INSERT_READS = (
    _INSERT_READS.replace("%s::timestamptz[]", "%s::bigint[]")
    .replace("batch.read_time, batch.read_timestamp,",
             "batch.read_time, " + _FROM_MICROS.format("batch.read_timestamp") + ",")
    .replace("batch.raw_data, batch.received_at,", "batch.raw_data, " + _FROM_MICROS.format("batch.received_at") + ",")
    .replace("abs(extract(epoch FROM batch.read_timestamp - batch.received_at)) > %s",
             "abs(batch.read_timestamp - batch.received_at) > %s * 1000000"))
_STATEMENTS = {_PLAIN_INSERT: _PLAIN_INSERT_READS, _MICROS: _MICROS_INSERT_READS}


def timed_inserts(connection, batches: Batches, repeat: int, change: str | None) -> float:
    """Median milliseconds of one batch INSERT (plus its triggers), with ``change`` applied first
    (or, for ``_PLAIN_INSERT`` and ``_MICROS``, that form of the INSERT)."""
    times = []
    statement = _STATEMENTS.get(change, _INSERT_READS)
    with connection.cursor() as cursor:
        if change and change not in _STATEMENTS:
            cursor.execute(change)
        for _ in range(repeat):
            params = batches.next(micros=change == _MICROS)
            started = time.perf_counter()
            cursor.execute(statement, params)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            times.append((time.perf_counter() - started) * 1000)
    connection.rollback()
    return statistics.median(times)


def explain(connection, batches: Batches) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + _INSERT_READS, batches.next())
        lines = [row[0] for row in cursor.fetchall()]
    connection.rollback()
    return lines


def variants(connection) -> list[tuple[str, str | None]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'timing_reads'::regclass"
                       " AND contype = 'f' ORDER BY conname")
        foreign_keys = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT indexrelid::regclass::text FROM pg_index i"
                       " LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid"
                       " WHERE indrelid = 'timing_reads'::regclass AND c.oid IS NULL ORDER BY 1")
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'timing_reads'::regclass"
                       " AND NOT tgisinternal ORDER BY 1")
        triggers = [row[0] for row in cursor.fetchall()]
    connection.rollback()
    result: list[tuple[str, str | None]] = [("without ON CONFLICT (0017's first attempt)", _PLAIN_INSERT),
                                            ("times as microseconds (0017)", _MICROS)]
    result += [(f"without FK {name}", f"ALTER TABLE timing_reads DROP CONSTRAINT {name}") for name in foreign_keys]
    result.append(("without every FK", "; ".join(f"ALTER TABLE timing_reads DROP CONSTRAINT {name}"
                                                  for name in foreign_keys)))
    result += [(f"without index {name}", f"DROP INDEX {name}") for name in indexes]
    result += [(f"without trigger {name}", f"ALTER TABLE timing_reads DISABLE TRIGGER {name}")
               for name in triggers if name.endswith("_insert") or name.endswith("_notify")]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-before", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--up-to", type=int, default=None,
                        help="apply the schema files up to this version only (the schema before a change)")
    parser.add_argument("--variants", action="store_true",
                        help="also time the insert without each foreign key, index and trigger")
    args = parser.parse_args(argv)
    postgres = PostgresForTests()
    try:
        dsn = postgres.create_database()
        connection = psycopg2.connect(dsn)
        migrate(connection, args.up_to)
        batches = Batches(*setup(connection))
        fill(connection, batches, args.rows_before)
        connection.autocommit = True
        connection.cursor().execute("VACUUM ANALYZE")
        connection.autocommit = False
        print(f"timing_reads holds {args.rows_before:,} reads; one INSERT of {BATCH:,} reads:")
        for line in explain(connection, batches):
            print("  " + line)
        timed_inserts(connection, batches, args.repeat, None)  # warm up
        everything = timed_inserts(connection, batches, args.repeat * 2, None)
        print(f"  median of {args.repeat * 2} inserts: {everything:.1f} ms", flush=True)
        for name, change in variants(connection) if args.variants else ():
            # Back to back with everything on, so a change of machine load hits both alike.
            everything = timed_inserts(connection, batches, args.repeat, None)
            median = timed_inserts(connection, batches, args.repeat, change)
            print(f"  {name:<45} {median:7.1f} ms, everything on {everything:7.1f} ms"
                  f" ({median - everything:+6.1f})", flush=True)
        connection.close()
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
