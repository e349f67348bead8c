"""0015 checks what timing_reads refers to once per statement, with the foreign keys' rules,
for any writer (plain SQL here, on a real PostgreSQL with the migrated schema):

- a read's session (with its partner), location and connection record exist, and its
  location is one of its session's (SQLSTATE 23503, naming the old constraint);
- deleting a session deletes its reads; deleting a location or a connection record clears
  it from its reads; a key still referred to cannot change; TRUNCATE of a referenced table
  alone is refused while reads refer to it;
- as with a foreign key, an insert and a concurrent delete of what it refers to never leave
  a read pointing at nothing, whichever comes first.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from tests.postgres import query
from tests.test_read_integrity import insert_read, open_session

COLUMNS = ("session_id, timing_partner_id, location_id, connection_id, stream_id, sequence_number, location_name,"
           " tag_code, read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data")


@pytest.fixture
def schema(database, pg_dsn):
    return pg_dsn


def add_location(dsn: str, session: int, partner: int, name: str) -> int:
    [(location,)] = query(dsn, "INSERT INTO timing_locations (session_id, timing_partner_id, location_name)"
                               " VALUES (%s, %s, %s) RETURNING id", (session, partner, name))
    return location


def add_connection(dsn: str, partner: int) -> int:
    [(connection,)] = query(dsn, "INSERT INTO controller_connections (peer, timing_partner_id) VALUES ('10.0.0.9:1', %s)"
                                 " RETURNING id", (partner,))
    return connection


def insert_full_read(dsn: str, session: int, partner: int, location: int | None, connection: int | None,
                     sequence: int = 1, location_name: str = "finish") -> None:
    query(dsn, f"INSERT INTO timing_reads ({COLUMNS}) VALUES (%s, %s, %s, %s, 'connection:c1', %s, %s, '101',"
               " '09:00:00.00', now(), 0, 'BE0001', 1, 'raw')",
          (session, partner, location, connection, sequence, location_name))


def violated_constraint(error: pytest.ExceptionInfo) -> str:
    return error.value.diag.constraint_name


def test_a_read_naming_a_missing_location_or_connection_is_refused(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    finish = add_location(schema, session, partner, "finish")
    connection = add_connection(schema, partner)
    insert_full_read(schema, session, partner, finish, connection)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as error:
        insert_full_read(schema, session, partner, finish + 1000, connection, sequence=2)
    assert violated_constraint(error) == "timing_reads_location_id_fkey"
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as error:
        insert_full_read(schema, session, partner, finish, connection + 1000, sequence=3)
    assert violated_constraint(error) == "timing_reads_connection_id_fkey"
    assert query(schema, "SELECT count(*) FROM timing_reads") == [(1,)]


def test_a_read_at_another_sessions_location_is_refused(schema):
    first, partner = open_session(schema, "alpha", "Alpha 10K")
    second, _ = open_session(schema, "alpha", "Alpha 5K")
    elsewhere = add_location(schema, second, partner, "finish")
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as error:
        insert_full_read(schema, first, partner, elsewhere, None)
    assert violated_constraint(error) == "timing_reads_location_id_fkey"


def test_one_bad_read_refuses_the_whole_statement(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    with pytest.raises(psycopg2.errors.ForeignKeyViolation) as error:
        query(schema, f"INSERT INTO timing_reads ({COLUMNS})"
                      " SELECT %s, %s, NULL::bigint, NULL::bigint, 'connection:c1', n, 'finish', '101', '09:00:00.00', now(), 0,"
                      " 'BE0001', 1, 'raw' FROM generate_series(1, 500) AS n"
                      " UNION ALL SELECT %s, %s, NULL, NULL, 'connection:c1', 501, 'finish', '101', '09:00:00.00',"
                      " now(), 0, 'BE0001', 1, 'raw'", (session, partner, session + 1000, partner))
    assert violated_constraint(error) == "timing_reads_session_and_partner_fkey"
    assert "is not present" in error.value.diag.message_detail
    assert query(schema, "SELECT count(*) FROM timing_reads") == [(0,)]


def test_an_update_is_checked_like_an_insert(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    insert_read(schema, session, partner)
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        query(schema, "UPDATE timing_reads SET session_id = session_id + 1000")
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        query(schema, "UPDATE timing_reads SET connection_id = 424242")
    assert query(schema, "SELECT session_id, connection_id FROM timing_reads") == [(session, None)]


def test_deleting_a_location_or_a_connection_record_clears_it_from_its_reads(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    finish = add_location(schema, session, partner, "finish")
    start = add_location(schema, session, partner, "start")
    connection = add_connection(schema, partner)
    other_connection = add_connection(schema, partner)
    insert_full_read(schema, session, partner, finish, connection, sequence=1)
    insert_full_read(schema, session, partner, start, other_connection, sequence=2, location_name="start")
    query(schema, "DELETE FROM timing_locations WHERE id = %s", (finish,))
    query(schema, "DELETE FROM controller_connections WHERE id = %s", (other_connection,))
    assert query(schema, "SELECT sequence_number, location_id, connection_id FROM timing_reads ORDER BY 1") == [
        (1, None, connection), (2, start, None)]


def test_deleting_a_session_deletes_its_reads_and_its_locations(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    kept, _ = open_session(schema, "alpha", "Alpha 5K")
    finish = add_location(schema, session, partner, "finish")
    insert_full_read(schema, session, partner, finish, None)
    insert_read(schema, kept, partner)
    query(schema, "DELETE FROM timing_sessions WHERE id = %s", (session,))
    assert query(schema, "SELECT session_id FROM timing_reads") == [(kept,)]
    assert query(schema, "SELECT count(*) FROM timing_locations WHERE session_id = %s", (session,)) == [(0,)]
    assert query(schema, "SELECT count(*) FROM read_figures WHERE session_id = %s", (session,)) == [(0,)]


def test_a_key_that_reads_refer_to_cannot_change(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    _, other_partner = open_session(schema, "beta", "Beta 5K")
    finish = add_location(schema, session, partner, "finish")
    connection = add_connection(schema, partner)
    insert_full_read(schema, session, partner, finish, connection)
    for statement, params in (
            ("UPDATE timing_sessions SET timing_partner_id = %s WHERE id = %s", (other_partner, session)),
            ("UPDATE timing_sessions SET id = id + 1000 WHERE id = %s", (session,)),
            ("UPDATE timing_locations SET id = id + 1000 WHERE id = %s", (finish,)),
            ("UPDATE controller_connections SET id = id + 1000 WHERE id = %s", (connection,))):
        with pytest.raises(psycopg2.errors.ForeignKeyViolation):
            query(schema, statement, params)
    # Other columns change freely.
    query(schema, "UPDATE timing_sessions SET status = 'closed' WHERE id = %s", (session,))
    query(schema, "UPDATE controller_connections SET disconnected_at = now() WHERE id = %s", (connection,))
    assert query(schema, "SELECT session_id, location_id, connection_id FROM timing_reads") == [
        (session, finish, connection)]


def test_truncating_a_referenced_table_alone_is_refused(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    connection = add_connection(schema, partner)
    insert_full_read(schema, session, partner, None, connection)
    with pytest.raises(psycopg2.errors.FeatureNotSupported):
        query(schema, "TRUNCATE controller_connections")
    assert query(schema, "SELECT connection_id FROM timing_reads") == [(connection,)]
    query(schema, "TRUNCATE timing_reads, controller_connections")
    assert query(schema, "SELECT count(*) FROM controller_connections") == [(0,)]


class Waiter(threading.Thread):
    """Runs one statement on its own connection (autocommit), keeping the error it raised."""

    def __init__(self, dsn: str, statement: str, params: tuple) -> None:
        super().__init__(daemon=True)
        self.connection = psycopg2.connect(dsn)
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pid = cursor.fetchone()[0]
        self.statement, self.params, self.error = statement, params, None

    def run(self) -> None:
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(self.statement, self.params)
        except psycopg2.Error as error:
            self.error = error
        finally:
            self.connection.close()


def wait_for_lock(dsn: str, pid: int, timeout: float = 30.0) -> None:
    """Until backend ``pid`` waits for a lock (the other transaction holds it)."""
    deadline = time.monotonic() + timeout
    while query(dsn, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)) != [("Lock",)]:
        assert time.monotonic() < deadline, "the second statement never waited for the first"
        time.sleep(0.02)


def test_a_session_deleted_while_reads_are_inserted_takes_those_reads_with_it(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    inserting = psycopg2.connect(schema)
    try:
        with inserting.cursor() as cursor:
            cursor.execute(f"INSERT INTO timing_reads ({COLUMNS}) VALUES (%s, %s, NULL, NULL, 'connection:c1', 1,"
                           " 'finish', '101', '09:00:00.00', now(), 0, 'BE0001', 1, 'raw')", (session, partner))
        deleting = Waiter(schema, "DELETE FROM timing_sessions WHERE id = %s", (session,))
        deleting.start()
        wait_for_lock(schema, deleting.pid)
        inserting.commit()
        deleting.join(30)
    finally:
        inserting.close()
    assert deleting.error is None
    assert query(schema, "SELECT count(*) FROM timing_reads") == [(0,)]


def test_reads_inserted_while_their_session_is_deleted_are_refused(schema):
    session, partner = open_session(schema, "alpha", "Alpha 10K")
    deleting = psycopg2.connect(schema)
    try:
        with deleting.cursor() as cursor:
            cursor.execute("DELETE FROM timing_sessions WHERE id = %s", (session,))
        inserting = Waiter(schema, f"INSERT INTO timing_reads ({COLUMNS}) VALUES (%s, %s, NULL, NULL, 'connection:c1',"
                                   " 1, 'finish', '101', '09:00:00.00', now(), 0, 'BE0001', 1, 'raw')",
                           (session, partner))
        inserting.start()
        wait_for_lock(schema, inserting.pid)
        deleting.commit()
        inserting.join(30)
    finally:
        deleting.close()
    assert isinstance(inserting.error, psycopg2.errors.ForeignKeyViolation)
    assert query(schema, "SELECT count(*) FROM timing_reads") == [(0,)]
