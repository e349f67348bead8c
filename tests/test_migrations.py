"""Upgrading a database written by the single-partner version keeps every row (issue 8)."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from chronotrack.storage.database import Database
from chronotrack.storage.migrations import available_migrations, migrate
from tests.postgres import query


def create_schema_version_1(dsn: str) -> None:
    """The schema exactly as the first release left it, as a running hub's database has it."""
    first = available_migrations()[0]
    assert first.version == 1
    query(dsn, first.sql)
    query(dsn, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    query(dsn, "INSERT INTO schema_migrations (version, name) VALUES (1, %s)", (first.name,))


def fill_like_a_race_weekend(dsn: str) -> dict[str, int]:
    """Two closed sessions of one event, one active of another, one without any event; reads and a roster."""
    sessions = {}
    for name, event_name, event_id, status in (("Sat", "Turkey Trot", "42", "closed"),
                                                ("Sat 2", "Turkey Trot", "42", "closed"),
                                                ("Sun", "Kids Mile", None, "active"),
                                                ("Mon", None, None, "closed")):
        sessions[name] = query(dsn, "INSERT INTO timing_sessions (session_name, event_name, event_id, status)"
                                    " VALUES (%s, %s, %s, %s) RETURNING id", (name, event_name, event_id, status))[0][0]
    for name, session in sessions.items():
        location = query(dsn, "INSERT INTO timing_locations (session_id, location_name) VALUES (%s, 'finish')"
                              " RETURNING id", (session,))[0][0]
        query(dsn, """
            INSERT INTO timing_reads (session_id, location_id, stream_id, sequence_number, location_name, tag_code,
                                      read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
            SELECT %s, %s, 'connection:c1', n, 'finish', (100 + n)::text, '09:00:00.00', now(), 0, '0F2A38', 1,
                   'CT01_33~' || n || '~finish~' || (100 + n) || '~09:00:00.00~0~0F2A38~1'
            FROM generate_series(1, 25) AS n""", (session, location))
    connection = query(dsn, "INSERT INTO controller_connections (peer, stream_id) VALUES ('10.0.0.1:1', 'connection:c1')"
                            " RETURNING id")[0][0]
    query(dsn, "INSERT INTO rejected_lines (session_id, peer, line, reason) VALUES (%s, '10.0.0.1:1', 'x', 'bad')",
          (sessions["Sun"],))
    query(dsn, "INSERT INTO participants (bib, first_name, last_name) VALUES ('101', 'Ada', 'Lovelace'),"
               " ('102', 'Alan', 'Turing')")
    sessions["connection"] = connection
    return sessions


def counts(dsn: str) -> dict[str, int]:
    tables = ("timing_sessions", "timing_locations", "timing_reads", "controller_connections", "rejected_lines",
              "participants")
    return {table: query(dsn, f"SELECT count(*) FROM {table}")[0][0] for table in tables}


@pytest_twisted.ensureDeferred
async def test_upgrading_a_single_partner_database_keeps_every_row_under_the_default_partner(pg_dsn):
    create_schema_version_1(pg_dsn)
    sessions = fill_like_a_race_weekend(pg_dsn)
    before = counts(pg_dsn)
    reads_before = query(pg_dsn, "SELECT id, session_id, raw_data FROM timing_reads ORDER BY id")

    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        applied = await migrate(database)
    finally:
        database.close()

    assert applied == [m.name for m in available_migrations()[1:]]
    assert counts(pg_dsn) == before
    assert query(pg_dsn, "SELECT id, session_id, raw_data FROM timing_reads ORDER BY id") == reads_before
    assert query(pg_dsn, "SELECT slug FROM timing_partners") == [("default",)]
    for table in ("timing_sessions", "timing_locations", "timing_reads", "controller_connections",
                  "rejected_lines", "participants"):
        assert query(pg_dsn, f"SELECT count(*) FROM {table} t JOIN timing_partners p"
                             " ON p.id = t.timing_partner_id AND p.slug = 'default'")[0][0] == before[table], table
    # One event per event id (or name); sessions of the same event share it.
    events = dict(query(pg_dsn, "SELECT s.session_name, e.event_key FROM timing_sessions s"
                                " JOIN timing_events e ON e.id = s.timing_event_id"))
    assert events == {"Sat": "42", "Sat 2": "42", "Sun": "Kids Mile", "Mon": ""}
    # The roster goes to the event of the newest session.
    newest_event = query(pg_dsn, "SELECT timing_event_id FROM timing_sessions WHERE id = %s",
                         (max(sessions[name] for name in ("Sat", "Sat 2", "Sun", "Mon")),))[0][0]
    assert query(pg_dsn, "SELECT bib, timing_event_id FROM participants ORDER BY bib") == [
        ("101", newest_event), ("102", newest_event)]
    # The operators' psql queries answer as before.
    assert query(pg_dsn, "SELECT COUNT(*) AS total_reads, COUNT(DISTINCT session_id) AS sessions,"
                         " COUNT(DISTINCT location_name) AS locations FROM timing_reads") == [(100, 4, 1)]


@pytest_twisted.ensureDeferred
async def test_after_the_upgrade_the_active_session_of_an_old_event_is_reused(pg_dsn):
    create_schema_version_1(pg_dsn)
    sessions = fill_like_a_race_weekend(pg_dsn)
    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        await migrate(database)
        rows = await database.run_query("SELECT session_id FROM open_timing_session(NULL, '', 'Kids Mile')")
        again = await database.run_query("SELECT session_id FROM open_timing_session(NULL, '42', 'Turkey Trot')")
    finally:
        database.close()
    assert rows == [(sessions["Sun"],)]
    assert again[0][0] not in (sessions["Sat"], sessions["Sat 2"])  # both closed: a new session of event 42
