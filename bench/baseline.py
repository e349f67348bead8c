"""The two references the collector's ingest rate is compared with, fed the same reads.

- baseline: what the old system did, one new psycopg2 connection, one INSERT and one
  commit per read, into the real ``timing_reads`` (its indexes, unique key, foreign keys
  and NOTIFY trigger). A bounded number of reads; reads/s extrapolated from that.
- ceiling: one ``COPY`` of every row of the 4-controller ingest run into a scratch copy
  of ``timing_reads`` made with ``LIKE ... INCLUDING ALL`` (same columns, indexes and
  unique key; no foreign keys, no trigger), committed once.

Both run on the 4-controller run's database after its collector has stopped.
"""

from __future__ import annotations

import io
import time

import psycopg2

from bench.context import Context, connect
from bench.report import Row, Target, ratio

COLUMNS = ("session_id, timing_partner_id, location_id, stream_id, sequence_number, location_name, tag_code,"
           " read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data, received_at, connection_id")
CEILING_SHARE_TARGET = Target(">=", 0.30)


def run(ctx: Context) -> None:
    dsn = ctx.figures.get("ingest_4_dsn")
    if not dsn:
        ctx.note("baseline and COPY ceiling skipped: no 4-controller ingest database")
        return
    print("baseline (connect + INSERT + commit per read) and COPY ceiling, same reads", flush=True)
    admin = connect(dsn)
    try:
        rows = fetch_rows(admin, ctx.mode.baseline_reads)
        baseline = one_insert_per_read(dsn, rows)
        copied, seconds = copy_ceiling(admin)
    finally:
        admin.close()
    ceiling = copied / seconds
    collector = ctx.figures.get("ingest_4")
    ctx.figures.update(baseline=baseline, ceiling=ceiling)
    ctx.add(Row("ingest", f"baseline: connect+INSERT+commit per read ({len(rows):,} reads)", baseline, "reads/s"),
            Row("ingest", f"COPY ceiling ({copied:,} rows, one commit)", ceiling, "reads/s",
                note=f"{seconds:.2f} s"),
            Row("ingest", "collector(4) / baseline", ratio(collector, baseline), "x"),
            Row("ingest", "collector(4) / COPY ceiling", ratio(collector, ceiling), "", CEILING_SHARE_TARGET))
    print(f"  baseline {baseline:,.0f} reads/s, COPY ceiling {ceiling:,.0f} reads/s", flush=True)


def fetch_rows(connection, limit: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {COLUMNS} FROM timing_reads ORDER BY id LIMIT %s", (limit,))
        return cursor.fetchall()


def one_insert_per_read(dsn: str, rows: list[tuple]) -> float:
    """Each read as the old writer stored it; its stream id is prefixed so the unique key allows it."""
    placeholders = ", ".join(["%s"] * len(COLUMNS.split(",")))
    sql = f"INSERT INTO timing_reads ({COLUMNS}) VALUES ({placeholders})"
    started = time.perf_counter()
    for row in rows:
        connection = psycopg2.connect(dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, (*row[:3], "baseline:" + row[3], *row[4:]))
            connection.commit()
        finally:
            connection.close()
    return len(rows) / (time.perf_counter() - started)


def copy_ceiling(connection) -> tuple[int, float]:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_ceiling")
        cursor.execute("CREATE TABLE bench_copy_ceiling (LIKE timing_reads INCLUDING ALL)")
        data = io.StringIO()
        cursor.copy_expert(f"COPY (SELECT {COLUMNS} FROM timing_reads WHERE stream_id NOT LIKE 'baseline:%')"
                           " TO STDOUT", data)
        data.seek(0)
    count = data.getvalue().count("\n")
    connection.autocommit = False
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY bench_copy_ceiling ({COLUMNS}) FROM STDIN", data)
    connection.commit()
    seconds = time.perf_counter() - started
    connection.autocommit = True
    return count, seconds
