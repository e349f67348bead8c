"""The web endpoints on a big ``timing_reads`` (10 million rows; 1 million in quick mode).

The rows are made ONCE with set-based SQL and kept between runs, in the server named by
``CHRONOTRACK_BENCH_DSN`` (a database for the bench alone: generating empties its timing
tables) or else in an embedded server
under ``bench/.data/`` (git-ignored), one database per size (``bench_rows_<n>``). A
``bench_dataset`` table records what was generated; a matching one is reused.

The data: 3 partners x 2 events x 2 sessions (one closed, one active), 4 locations per
session (start, split-5k, split-10k, finish), one controller stream per session, sequential
ids, reads received about 10 ms apart up to now (so the last hour holds about 360,000 reads).
Shaped like a real race, so results are scored as they would be on race day: each session
is one wave of its event's runners (about 24,500 tags per wave in full mode, so about 49,000
runners per event, each in the roster), opening with a few mat tests (the first wave also
with the gun read); then
each runner crosses each mat in turn, read 3-14 times over about a second, with the next
runner 85 ms behind (so a dozen chips are on the mat at once).
The collector (real twistd, web on) serves the pages; each
endpoint gets N sequential requests, then N more from 4 concurrent clients; the JSON feeds are
measured a second time as one partner sees them (an API token of bench-1), with the reads
page's location and bib filters. A non-200
answer or a timeout is a failure, marked FAIL. Slow statements (>= 100 ms) are logged
with their plans by auto_explain to the server log (path printed) when the server allows.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import psycopg2.extensions

from bench.context import Context, connect, rss_mb, scalar, start_collector, wait_for_schema
from bench.report import Row, Target, summary_ms
from chronotrack.accounts.tokens import new_api_token, token_hash
from chronotrack.storage.embedded_db import EmbeddedPostgres

DATA_DIR = Path(__file__).resolve().parent / ".data"
WEB_TARGET = Target("<", 50, "ms")
ENDPOINTS = ("/api/timing/stats", "/api/timing/sessions", "/api/timing/recent-reads", "/", "/reads",
             "/api/results", "/api/results?limit=500", "/results")  # the results last: see run()
# The same feeds as one partner sees them (an API token of bench-1, whose reads are the oldest:
# the hard case for "newest first"), and the filters of the reads page.
PARTNER_ENDPOINTS = ("/api/timing/stats", "/api/timing/sessions", "/api/timing/recent-reads",
                     "/api/timing/recent-reads?location=finish", "/api/timing/recent-reads?bib=12345")
FIRST_REQUEST_SHOWN = ("/api/results",)  # their first request builds a cache: shown on its own
PARTNER = "bench-1"
CHUNK = 250_000  # one INSERT per chunk: the figure triggers fold each chunk in as one statement
CONCURRENCY = 4
DATASET_VERSION = 2
LOCATIONS = ("start", "split-5k", "split-10k", "finish")
MAT_TEST_READS = 40  # each session opens with these (a test chip walked over the mats), then the gun read
PAIR_READS = 17  # two runners in a row are read 3+k and 14-k times at a mat (k = pair number % 12)


def run(ctx: Context) -> None:
    rows_wanted = ctx.mode.web_rows
    print(f"web at scale: {rows_wanted:,} rows in timing_reads", flush=True)
    server, dsn = _database(rows_wanted)
    collector = None
    try:
        collector = start_collector(ctx.work / "web-at-scale", dsn=dsn, web=True)  # migrates
        wait_for_schema(dsn)
        connection = connect(dsn)
        try:
            generated = ensure_rows(connection, rows_wanted)
            total = scalar(connection, "SELECT count(*) FROM timing_reads")
            token = partner_token(connection, PARTNER)
            _enable_auto_explain(connection, ctx)
        finally:
            connection.close()
        collector.stop()
        earlier_log = collector.log_path.stat().st_size  # the same log file: this start's lines come after
        collector = start_collector(ctx.work / "web-at-scale", dsn=dsn, web=True)  # new pool: auto_explain
        ctx.note(f"web at scale: {total:,} rows in timing_reads" +
                 (f" (generated now in {generated:.0f} s)" if generated else " (reused)") +
                 (f"; server log {server.cluster / 'server.log'}" if server else ""))
        base = f"http://127.0.0.1:{collector.web_port}"
        _wait_for_results_warm_up(ctx, collector, earlier_log)
        # The results last: their first request builds the newest event's results from all its reads,
        # which would slow whatever is measured meanwhile.
        results = [path for path in ENDPOINTS if "results" in path]
        for path in ENDPOINTS:
            if path not in results:
                measure_endpoint(ctx, base, path)
        for path in PARTNER_ENDPOINTS:
            measure_endpoint(ctx, base, path, {"Authorization": f"Bearer {token}"}, f" ({PARTNER} token)")
        before = rss_mb(collector.process.pid)
        for path in results:  # the first builds the newest event's results; the page (first rows) and
            measure_endpoint(ctx, base, path)  # the page's own feed (limit=500) reuse them
        after = rss_mb(collector.process.pid)
        ctx.add(Row("web", "collector resident before the results", before, "MB"),
                Row("web", "collector resident with one event's results cached", after, "MB"))
        print(f"  collector resident: {before:.0f} MB before the results, {after:.0f} MB after", flush=True)
    finally:
        if collector is not None:
            collector.stop()
        if server is not None and server.started_here:
            server.stop_blocking()


def _database(rows: int) -> tuple[EmbeddedPostgres | None, str]:
    configured = os.environ.get("CHRONOTRACK_BENCH_DSN")
    if configured:
        return None, configured
    server = EmbeddedPostgres(DATA_DIR, owner=True)
    admin_dsn = server.start_blocking()
    name = f"bench_rows_{rows}"
    admin = psycopg2.connect(admin_dsn)
    admin.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    try:
        if not scalar(admin, "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)):
            admin.cursor().execute(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    params = psycopg2.extensions.parse_dsn(admin_dsn)
    params["dbname"] = name
    return server, " ".join(f"{key}={value}" for key, value in params.items())


def ensure_rows(connection, rows: int) -> float:
    """Generate the data set unless a matching one is there; returns seconds spent (0 if reused)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_dataset (rows BIGINT NOT NULL, version INT NOT NULL,"
                       " made_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        cursor.execute("SELECT rows, version FROM bench_dataset")
        if cursor.fetchall() == [(rows, DATASET_VERSION)]:
            return 0.0
    started = time.monotonic()
    print(f"  generating {rows:,} rows (once; kept for later runs)", flush=True)
    with connection.cursor() as cursor:
        for statement in SETUP_SQL:
            cursor.execute(statement)
        sessions = scalar(connection, "SELECT count(*) FROM timing_sessions WHERE event_id LIKE 'bench-%%'")
        per_session = -(-rows // sessions)
        layout = wave_layout(per_session)
        cursor.execute(ROSTER_SQL, {"runners": 2 * layout["tags"]})
        for low in range(0, rows, CHUNK):
            high = min(rows, low + CHUNK) - 1
            cursor.execute(READS_SQL, {"low": low, "high": high, "rows": rows, **layout})
            print(f"    {high + 1:,} rows ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("INSERT INTO bench_dataset (rows, version) VALUES (%s, %s)", (rows, DATASET_VERSION))
    return time.monotonic() - started


SETUP_SQL = (
    "TRUNCATE timing_reads, timing_locations, controller_connections, rejected_lines, bench_dataset",
    "DELETE FROM participants",
    "DELETE FROM timing_sessions",
    "DELETE FROM timing_events",
    "DELETE FROM timing_partners WHERE slug <> 'default'",
    "ALTER SEQUENCE timing_reads_id_seq RESTART WITH 1",
    """INSERT INTO timing_partners (slug, name)
       SELECT 'bench-' || p, 'Bench timing partner ' || p FROM generate_series(1, 3) AS p""",
    """INSERT INTO timing_events (timing_partner_id, event_key, event_name, public_display)
       SELECT tp.id, 'bench-' || tp.id || '-' || e, 'Bench race ' || tp.id || '-' || e, true
       FROM timing_partners tp CROSS JOIN generate_series(1, 2) AS e WHERE tp.slug LIKE 'bench-%'
       ORDER BY tp.id, e""",
    """INSERT INTO timing_sessions (session_name, event_name, event_id, status, created_at, closed_at,
                                   timing_partner_id, timing_event_id)
       SELECT 'Session ' || ev.id || '/' || s, ev.event_name, ev.event_key,
              CASE WHEN s = 2 AND ev.id = (SELECT max(id) FROM timing_events) THEN 'active' ELSE 'closed' END,
              now() - interval '2 days', NULL, ev.timing_partner_id, ev.id
       FROM timing_events ev CROSS JOIN generate_series(1, 2) AS s WHERE ev.event_key LIKE 'bench-%'
       ORDER BY ev.id, s""",
    """INSERT INTO timing_locations (session_id, timing_partner_id, location_name, reader_id)
       SELECT s.id, s.timing_partner_id, loc.name, 'BE000' || loc.n
       FROM timing_sessions s
       CROSS JOIN unnest(ARRAY['start', 'split-5k', 'split-10k', 'finish']) WITH ORDINALITY AS loc(name, n)""",
    """INSERT INTO controller_connections (peer, greeting, stream_id, event_name, connected_at, disconnected_at,
                                          disconnect_reason, timing_partner_id)
       SELECT '127.0.0.1:' || (40000 + s.id), 'SimpleClient~0.5.0~CTP01', 'connection:bench-' || s.id,
              s.event_name, now() - interval '1 day', now(), 'bench', s.timing_partner_id
       FROM timing_sessions s""",
)

def wave_layout(per_session: int) -> dict[str, int]:
    """Where row i of a session's ``per_session`` falls: mat tests, the gun, then per location
    ``per_location`` rows of crossings, runner after runner; ``tags`` runners per wave."""
    per_location = -(-(per_session - MAT_TEST_READS - 1) // len(LOCATIONS))
    return {"per_session": per_session, "per_location": per_location,
            "tags": 2 * -(-per_location // PAIR_READS), "mat_tests": MAT_TEST_READS}


# One wave's runners: bibs 10000 up (the first wave's, then the second's), each bib its tag.
ROSTER_SQL = """
INSERT INTO participants (timing_partner_id, timing_event_id, bib, first_name, last_name, age, gender, city, team)
SELECT ev.timing_partner_id, ev.id, (10000 + b)::text, 'Runner', 'Number ' || b, 18 + b %% 60,
       CASE WHEN b %% 2 = 0 THEN 'F' ELSE 'M' END, 'City ' || b %% 40, 'Team ' || b %% 25
FROM timing_events ev CROSS JOIN generate_series(0, %(runners)s - 1) AS b WHERE ev.event_key LIKE 'bench-%%'
"""

# Row g (0-based) of `rows`: session k = g / per_session (sessions in id order: two per event,
# the event's first and second wave), index i within it. i < mat_tests: a test chip at each
# mat in turn; i = mat_tests: the gun read at the start; then location c / per_location, and
# within it pair p of runners (the second wave's row mat_tests is one more mat test: one gun
# for both waves, as a wave start is timed; a second gun read would replace the first),: the first read 3 + p % 12 times, the second 14 - p % 12 times,
# read n of cnt at crossing + n * 1000 ms / cnt; the pair's crossings 85 ms apart, pairs
# 170 ms apart. Each wave's clock starts where the previous ended; reads arrive 1 s after
# being read, the last about now.
READS_SQL = """
WITH s AS (SELECT id, timing_partner_id, row_number() OVER (ORDER BY id) - 1 AS k
           FROM timing_sessions WHERE event_id LIKE 'bench-%%'),
     r AS (SELECT g, g / %(per_session)s AS k, g %% %(per_session)s AS i
           FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g),
     placed AS (SELECT r.*, now() - interval '2 seconds'
                            - (%(rows)s - r.k * %(per_session)s) * interval '10 milliseconds' AS wave_clock,
                       r.i - %(mat_tests)s - 1 AS c
                FROM r),
     crossing AS (SELECT placed.*,
                         CASE WHEN i < %(mat_tests)s THEN (i / 10) %% 4 WHEN c < 0 THEN 0
                              ELSE c / %(per_location)s END AS j,
                         GREATEST(c, 0) %% %(per_location)s / 17 AS p,
                         GREATEST(c, 0) %% %(per_location)s %% 17 AS q
                  FROM placed),
     named AS (SELECT crossing.*, 3 + p %% 12 AS a FROM crossing),
     x0 AS (SELECT named.*,
                   CASE WHEN q < a THEN 2 * p ELSE 2 * p + 1 END AS t,
                   CASE WHEN q < a THEN q ELSE q - a END AS n,
                   CASE WHEN q < a THEN a ELSE 17 - a END AS cnt
            FROM named),
     x AS (SELECT x0.*, (ARRAY['start', 'split-5k', 'split-10k', 'finish'])[j + 1] AS location,
                  CASE WHEN i < %(mat_tests)s THEN '9990001'
                       WHEN c < 0 AND k %% 2 = 0 THEN 'guntime'
                       WHEN c < 0 THEN '9990001'
                       ELSE (10000 + (k %% 2) * %(tags)s + t)::text END AS tag,
                  CASE WHEN c < 0 THEN wave_clock + i * interval '10 milliseconds'
                       ELSE wave_clock + (%(mat_tests)s + 1 + j::bigint * %(per_location)s + p * 17) * interval '10 milliseconds'
                            + (t %% 2) * interval '85 milliseconds' + (n * 1000 / cnt) * interval '1 millisecond'
                  END AS read_at,
                  (t %% 4 + 1)::int AS gator
           FROM x0)
INSERT INTO timing_reads (session_id, timing_partner_id, location_id, stream_id, sequence_number,
                          location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,
                          gator_number, raw_data, received_at, connection_id)
SELECT s.id, s.timing_partner_id, l.id, 'connection:bench-' || s.id, x.i + 1, x.location, x.tag, x.read_time,
       x.read_at, 0, l.reader_id, x.gator,
       'CT01_33~' || (x.i + 1) || '~' || x.location || '~' || x.tag || '~' || x.read_time || '~0~'
           || l.reader_id || '~' || x.gator,
       x.read_at + interval '1 second', NULL
FROM (SELECT x.*, to_char(read_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS read_time FROM x) AS x
JOIN s ON s.k = x.k
JOIN timing_locations l ON l.session_id = s.id AND l.location_name = x.location
ORDER BY x.g
"""


WARM_UP_LINE = re.compile(r"results of event (\d+) built from ([\d,]+) reads and (\d+) runners in ([\d.]+) s")


def _wait_for_results_warm_up(ctx: Context, collector, skip: int, timeout: float = 120) -> None:
    """At start-up the collector builds the results of the events racing now (the active session's):
    wait for it, so the endpoints are not measured while it runs, and report how long it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(collector.log_path, "rb") as log:
            log.seek(skip)
            found = WARM_UP_LINE.search(log.read().decode(errors="replace"))
        if found:
            event, reads, runners, seconds = found.groups()
            ctx.add(Row("web", f"results built at start-up (event {event}: {reads} reads, {runners} runners)",
                        float(seconds) * 1000, "ms"))
            print(f"  results built at start-up: event {event}, {reads} reads, {runners} runners, {seconds} s",
                  flush=True)
            return
        time.sleep(0.2)
    ctx.add(Row("web", "results built at start-up", None, note=f"not within {timeout:.0f} s", failed=True))
    print(f"  results not built at start-up within {timeout:.0f} s", flush=True)


def partner_token(connection, partner_slug: str) -> str:
    """A fresh API token of ``partner_slug`` for this run (only its hash is stored; earlier bench tokens go).

    A token does not close the open pages: they stay open while no operator account exists.
    """
    token = new_api_token()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM api_tokens WHERE name = 'bench'")
        cursor.execute("INSERT INTO api_tokens (timing_partner_id, name, token_hash)"
                       " SELECT id, 'bench', %s FROM timing_partners WHERE slug = %s", (token_hash(token), partner_slug))
    connection.commit()
    return token


def _enable_auto_explain(connection, ctx: Context) -> None:
    try:
        name = scalar(connection, "SELECT current_database()")
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {name} SET session_preload_libraries = 'auto_explain'")
            cursor.execute(f"ALTER DATABASE {name} SET auto_explain.log_min_duration = '100ms'")
            cursor.execute(f"ALTER DATABASE {name} SET auto_explain.log_analyze = on")
    except psycopg2.Error as error:
        ctx.note(f"web at scale: auto_explain not enabled ({str(error).strip()})")


# As a browser asks: big answers (a whole results table) may come gzip-compressed. The time is
# until the last byte of the answer is in, as the hub sent it (not decompressed here).
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate"}


def fetch(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[float, int | str]:
    started = time.perf_counter()
    try:
        request = urllib.request.Request(url, headers={**BROWSER_HEADERS, **(headers or {})})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status: int | str = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, urllib.error.URLError) as error:
        status = "timeout" if "timed out" in str(error) else type(error).__name__
    return time.perf_counter() - started, status


def measure_endpoint(ctx: Context, base: str, path: str, headers: dict[str, str] | None = None,
                     who: str = "") -> None:
    mode = ctx.mode
    first_seconds, first = fetch(base + path, mode.web_timeout_seconds, headers)  # warm-up, and does it exist?
    if first == 404:
        ctx.add(Row("web", f"{path} (no such route yet)", None))
        print(f"  {path}: n/a (404)", flush=True)
        return
    if path in FIRST_REQUEST_SHOWN:  # the first ask (a cold cache builds here; the active event is built at start-up)
        ctx.add(Row("web", f"{path}{who} first request", first_seconds * 1000, "ms", None,
                    "" if first == 200 else f"answered {first}", failed=first != 200))
        print(f"  {path}{who} first request: {first_seconds * 1000:.0f} ms ({first})", flush=True)
    for concurrency in (1, CONCURRENCY):
        results: list[tuple[float, int | str]] = []
        deadline = time.monotonic() + mode.web_budget_seconds
        per_worker = -(-mode.web_requests // concurrency)

        def worker(_: int) -> list[tuple[float, int | str]]:
            mine = []
            while time.monotonic() < deadline and len(mine) < per_worker:
                mine.append(fetch(base + path, mode.web_timeout_seconds, headers))
            return mine

        with ThreadPoolExecutor(concurrency) as pool:
            for mine in pool.map(worker, range(concurrency)):
                results.extend(mine)
        ok = [seconds for seconds, status in results if status == 200]
        bad = [status for _, status in results if status != 200]
        figures = summary_ms(ok)
        note = f"n={len(results)}"
        if len(results) < mode.web_requests:
            note += f" (budget {mode.web_budget_seconds:.0f} s)"
        if bad:
            note += f"; {len(bad)} failed: {', '.join(sorted({str(status) for status in bad}))}"
        label = f"{path}{who} {'sequential' if concurrency == 1 else f'{concurrency} concurrent'}"
        ctx.add(Row("web", f"{label} p50", figures["p50"], "ms"),
                Row("web", f"{label} p99", figures["p99"], "ms", WEB_TARGET, note, failed=bool(bad) or not ok))
        print(f"  {label}: p50 {figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms ({note})", flush=True)
