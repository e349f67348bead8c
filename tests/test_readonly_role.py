"""``chronotrack readonly-role``: a login that reads the query views and nothing else.

The command runs as the installed console script against a real PostgreSQL; the role it
makes then connects with psycopg2 and tries everything it must not be able to do.
"""

from __future__ import annotations

import re
import uuid

import psycopg2
import psycopg2.extensions
import pytest

from tests.postgres import query
from tests.test_cli import assert_clean_failure, run

PASSWORD = "read only please"
VIEWS = ("reads_with_runners", "latest_reads", "event_summary")
SECRET_TABLES = ("controller_credentials", "operators", "api_tokens", "web_sessions")


def role_dsn(dsn: str, role: str) -> str:
    return psycopg2.extensions.make_dsn(dsn, user=role, password=PASSWORD)


def as_role(dsn: str, role: str, sql: str, params=None, read_only_off: bool = False) -> list[tuple]:
    """One statement as the role; read_only_off first turns off its read-only default (which the
    role may do itself), so a refusal comes from its grants alone."""
    connection = psycopg2.connect(role_dsn(dsn, role))
    try:
        with connection.cursor() as cursor:
            if read_only_off:
                cursor.execute("SET default_transaction_read_only = off")
                connection.commit()
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()


def new_role() -> str:
    return "ro_" + uuid.uuid4().hex[:12]


@pytest.fixture
def race(pg_dsn, tmp_path):
    """Two partners, each with an event, a roster and reads; plus rows in every secret table."""
    assert run("partner", "add", "acme", dsn=pg_dsn, cwd=tmp_path).returncode == 0  # migrates the schema
    assert run("partner", "add", "beta", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    ids = {}
    for slug, event, bibs in (("acme", "Acme 10k", ("1", "2", "3")), ("beta", "Beta Relay", ("9",))):
        [(partner_id,)] = query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = %s", (slug,))
        [(session_id, _)] = query(pg_dsn, "SELECT * FROM open_timing_session(%s, %s, %s)",
                                  (partner_id, event.lower().replace(" ", "-"), event))
        [(event_id,)] = query(pg_dsn, "SELECT timing_event_id FROM timing_sessions WHERE id = %s", (session_id,))
        for number, bib in enumerate(bibs, 1):
            query(pg_dsn, "INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name)"
                          " VALUES (%s, %s, %s, %s, %s)", (event_id, partner_id, bib, f"Runner{bib}", slug.title()))
            for location, minute in (("start", 0), ("finish", 30 + number)):
                query(pg_dsn, "INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number,"
                              " location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,"
                              " gator_number, raw_data) VALUES (%s, %s, 'connection:x', %s, %s, %s, %s,"
                              " now() + make_interval(mins => %s), 1, '0F2A38', 0, 'raw')",
                      (session_id, partner_id, number, location, bib, f"08:{minute:02d}:00", minute))
        ids[slug] = partner_id
        query(pg_dsn, "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted)"
                      " VALUES (%s, %s, 'secret-box')", (partner_id, f"box-{slug}"))
        [(operator_id,)] = query(pg_dsn, "INSERT INTO operators (timing_partner_id, email, password_hash)"
                                         " VALUES (%s, %s, 'argon2-hash') RETURNING id",
                                 (partner_id, f"o@{slug}.example"))
        query(pg_dsn, "INSERT INTO web_sessions (operator_id, token_hash, csrf_token, expires_at)"
                      " VALUES (%s, %s, 'csrf', now() + interval '1 day')", (operator_id, f"session-{slug}"))
        query(pg_dsn, "INSERT INTO api_tokens (timing_partner_id, token_hash) VALUES (%s, %s)",
              (partner_id, f"token-{slug}"))
    return ids


def make_role(pg_dsn, tmp_path, role: str, *extra: str):
    return run("readonly-role", role, *extra, dsn=pg_dsn, stdin=PASSWORD + "\n", cwd=tmp_path)


def test_the_role_reads_the_views_and_nothing_else(pg_dsn, tmp_path, race):
    role = new_role()
    result = make_role(pg_dsn, tmp_path, role)
    assert result.returncode == 0, result.stderr
    assert f"created read-only role {role}" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    [(can_login, superuser, verifier)] = query(pg_dsn, "SELECT rolcanlogin, rolsuper, rolpassword FROM pg_authid"
                                                       " WHERE rolname = %s", (role,))
    assert can_login and not superuser and verifier.startswith("SCRAM-SHA-256$")

    rows = as_role(pg_dsn, role, "SELECT partner, event_name, bib, first_name, last_name, location_name"
                                 " FROM reads_with_runners ORDER BY partner, bib, location_name")
    assert len(rows) == 8 and rows[0] == ("acme", "Acme 10k", "1", "Runner1", "Acme", "finish")
    latest = as_role(pg_dsn, role, "SELECT partner, bib, location_name FROM latest_reads ORDER BY partner, bib")
    assert latest == [("acme", "1", "finish"), ("acme", "2", "finish"), ("acme", "3", "finish"),
                      ("beta", "9", "finish")]
    summary = as_role(pg_dsn, role, "SELECT partner, event_name, reads, runners, first_read < last_read, locations"
                                    " FROM event_summary ORDER BY partner")
    assert summary == [("acme", "Acme 10k", 6, 3, True, ["finish", "start"]),
                       ("beta", "Beta Relay", 2, 1, True, ["finish", "start"])]

    tables = [name for (name,) in query(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert set(SECRET_TABLES) <= set(tables)
    for table in tables:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            as_role(pg_dsn, role, f"SELECT * FROM {table} LIMIT 1")
        for statement in (f"INSERT INTO {table} DEFAULT VALUES", f"UPDATE {table} SET ctid = ctid",
                          f"DELETE FROM {table}", f"TRUNCATE {table}"):
            with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.FeatureNotSupported,
                                psycopg2.errors.ReadOnlySqlTransaction)):
                as_role(pg_dsn, role, statement)
            with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.FeatureNotSupported)):
                as_role(pg_dsn, role, statement, read_only_off=True)
    for view in VIEWS:
        with pytest.raises((psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ObjectNotInPrerequisiteState,
                            psycopg2.errors.FeatureNotSupported)):
            as_role(pg_dsn, role, f"DELETE FROM {view}", read_only_off=True)
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        as_role(pg_dsn, role, "CREATE TABLE mine (x int)")
    # Writing through the hub's own functions needs table rights it does not have either.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        as_role(pg_dsn, role, "SELECT * FROM open_timing_session(NULL, 'x', 'x')", read_only_off=True)
    assert query(pg_dsn, "SELECT count(*) FROM timing_reads") == [(8,)]


def test_a_partner_role_sees_only_that_partners_rows(pg_dsn, tmp_path, race):
    role = new_role()
    result = make_role(pg_dsn, tmp_path, role, "--partner", "beta")
    assert result.returncode == 0, result.stderr
    assert "partner beta only" in result.stdout
    assert as_role(pg_dsn, role, "SELECT DISTINCT partner FROM reads_with_runners") == [("beta",)]
    assert as_role(pg_dsn, role, "SELECT count(*) FROM reads_with_runners") == [(2,)]
    assert as_role(pg_dsn, role, "SELECT partner, bib FROM latest_reads") == [("beta", "9")]
    assert as_role(pg_dsn, role, "SELECT partner, reads FROM event_summary") == [("beta", 2)]
    assert as_role(pg_dsn, role, "SELECT count(*) FROM reads_with_runners WHERE partner = 'acme'") == [(0,)]
    # A cheap leaky function of the role's own in the WHERE clause sees only the rows the
    # partner filter lets through: the views are security barriers.
    connection = psycopg2.connect(role_dsn(pg_dsn, role))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
            cursor.execute("CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001"
                           " AS $$ BEGIN RAISE NOTICE 'leak %', $1; RETURN true; END $$")
            for view, column in (("reads_with_runners", "bib"), ("latest_reads", "bib"),
                                 ("event_summary", "event_name")):
                cursor.execute(f"SELECT * FROM {view} WHERE pg_temp.leak({column})")
        leaked = set(re.findall(r"leak (.*)", "".join(connection.notices)))
    finally:
        connection.close()
    assert leaked and leaked <= {"9", "Beta Relay"}, leaked

    updated = make_role(pg_dsn, tmp_path, role, "--partner", "acme")  # run again: the partner changes
    assert updated.returncode == 0 and f"updated read-only role {role}" in updated.stdout
    assert as_role(pg_dsn, role, "SELECT DISTINCT partner FROM reads_with_runners") == [("acme",)]


def test_refusals_are_clear(pg_dsn, tmp_path, race):
    assert_clean_failure(make_role(pg_dsn, tmp_path, "Bad-Name"), 1, "not a usable role name")
    assert_clean_failure(make_role(pg_dsn, tmp_path, new_role(), "--partner", "nobody"), 1, "no timing partner")
    admin = psycopg2.extensions.parse_dsn(pg_dsn)["user"]
    assert_clean_failure(make_role(pg_dsn, tmp_path, admin), 1, "the database user this command runs as")
    someone = new_role()
    query(pg_dsn, f"CREATE ROLE {someone} LOGIN")
    assert_clean_failure(make_role(pg_dsn, tmp_path, someone), 1, "already exists")
    # A DSN user that cannot create roles gets told so.
    weak = new_role()
    query(pg_dsn, f"CREATE ROLE {weak} LOGIN")
    query(pg_dsn, f"GRANT CREATE, USAGE ON SCHEMA public TO {weak}")  # enough to check the schema
    query(pg_dsn, f"GRANT SELECT ON schema_migrations TO {weak}")
    params = psycopg2.extensions.parse_dsn(pg_dsn)
    params["user"] = weak
    weak_dsn = " ".join(f"{key}={value}" for key, value in params.items())
    result = run("readonly-role", new_role(), dsn=weak_dsn, stdin=PASSWORD + "\n", cwd=tmp_path)
    assert_clean_failure(result, 2, "cannot create roles", "CREATEROLE")
