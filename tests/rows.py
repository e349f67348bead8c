"""Rows inserted by plain SQL for the web tests, the way another writer (psql) would.

Every session belongs to an event of a partner, and every read and runner to those: these
helpers fill in the keys so each test can say only what it is about.
"""

from __future__ import annotations

from chronotrack.accounts.passwords import hash_password
from chronotrack.accounts.tokens import new_api_token, new_session_token, token_hash
from tests.postgres import query

# The newest session, its partner and its event: what a read or runner goes to by default.
NEWEST_SESSION = "(SELECT max(id) FROM timing_sessions)"
NEWEST_PARTNER = "(SELECT timing_partner_id FROM timing_sessions ORDER BY id DESC LIMIT 1)"
NEWEST_EVENT = "(SELECT timing_event_id FROM timing_sessions ORDER BY id DESC LIMIT 1)"


def insert_event(dsn: str, event_key: str = "", event_name: str | None = None, partner: str = "default") -> int:
    return query(dsn, """
        INSERT INTO timing_events (timing_partner_id, event_key, event_name)
        SELECT id, %s, %s FROM timing_partners WHERE slug = %s
        ON CONFLICT (timing_partner_id, event_key) DO UPDATE SET event_name = EXCLUDED.event_name
        RETURNING id""", (event_key, event_name, partner))[0][0]


def insert_session(dsn: str, name: str = "Race day", event: str | None = None, status: str = "active",
                   partner: str = "default", event_key: str | None = None) -> int:
    event_id = insert_event(dsn, event_key if event_key is not None else (event or ""), event, partner)
    return query(dsn, """
        INSERT INTO timing_sessions (session_name, event_name, status, timing_partner_id, timing_event_id)
        SELECT %s, %s, %s, timing_partner_id, id FROM timing_events WHERE id = %s RETURNING id""",
                 (name, event, status, event_id))[0][0]


def insert_runner(dsn: str, bib: str, first: str, last: str, team: str | None = None,
                  event_id: int | None = None) -> None:
    """A runner in ``event_id``, else in the newest session's event, else in the unnamed event."""
    if event_id is None:
        event_id = query(dsn, f"SELECT {NEWEST_EVENT}")[0][0] or insert_event(dsn, "")
    query(dsn, """
        INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name, team)
        SELECT id, timing_partner_id, %s, %s, %s, %s FROM timing_events WHERE id = %s""",
          (bib, first, last, team, event_id))


def insert_partner(dsn: str, slug: str, name: str | None = None) -> int:
    return query(dsn, "INSERT INTO timing_partners (slug, name) VALUES (%s, %s) RETURNING id",
                 (slug, name or slug.title()))[0][0]


def insert_operator(dsn: str, email: str, password: str, partner: str = "default",
                    disabled: bool = False) -> int:
    """An operator whose password is hashed the way the product does it (argon2id)."""
    return query(dsn, """
        INSERT INTO operators (timing_partner_id, email, password_hash, disabled_at)
        SELECT id, %s, %s, CASE WHEN %s THEN now() END FROM timing_partners WHERE slug = %s RETURNING id""",
                 (email, hash_password(password), disabled, partner))[0][0]


def insert_api_token(dsn: str, partner: str = "default", revoked: bool = False) -> str:
    """A new API token of ``partner``; only its hash goes into the table, the token comes back."""
    token = new_api_token()
    query(dsn, """
        INSERT INTO api_tokens (timing_partner_id, name, token_hash, revoked_at)
        SELECT id, 'tests', %s, CASE WHEN %s THEN now() END FROM timing_partners WHERE slug = %s""",
          (token_hash(token), revoked, partner))
    return token


def insert_read(dsn: str, session_id: int, tag: str, location: str = "finish",
                time: str = "08:01:02.35") -> int:
    """A read in ``session_id`` (its partner and event follow from the session)."""
    sequence = query(dsn, "SELECT coalesce(max(sequence_number), 0) + 1 FROM timing_reads")[0][0]
    return query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT id, timing_partner_id, 'connection:test', %s, %s, %s, %s, '2024-05-04 08:01:02.35+00', 1,
               '0F2A38', 1, 'raw'
        FROM timing_sessions WHERE id = %s RETURNING id""", (sequence, location, tag, time, session_id))[0][0]


def insert_web_session(dsn: str, operator_id: int, csrf_token: str = "csrf-token-for-tests-0123456789") -> str:
    """A signed-in browser session of ``operator_id``; returns the cookie's token (only its hash is stored)."""
    token = new_session_token()
    query(dsn, """
        INSERT INTO web_sessions (operator_id, token_hash, csrf_token, expires_at)
        VALUES (%s, %s, %s, now() + interval '1 hour')""", (operator_id, token_hash(token), csrf_token))
    return token


def event_of_session(dsn: str, session_id: int) -> int:
    return query(dsn, "SELECT timing_event_id FROM timing_sessions WHERE id = %s", (session_id,))[0][0]


def event_among_others(dsn: str) -> tuple[int, dict[str, int]]:
    """acme's "Acme 10K" in two sessions (wave 1 closed, wave 2 active), beside acme's other event
    and another partner's event: the event's id, and the sessions ``first``, ``second``,
    ``other_event`` and ``other_partner``."""
    insert_partner(dsn, "acme")
    insert_partner(dsn, "zeta")
    sessions = {"first": insert_session(dsn, "wave 1", "Acme 10K", status="closed", partner="acme"),
                "second": insert_session(dsn, "wave 2", "Acme 10K", partner="acme"),
                "other_event": insert_session(dsn, "kids", "Acme kids run", partner="acme"),
                "other_partner": insert_session(dsn, "zeta day", "Zeta 5K", partner="zeta")}
    return event_of_session(dsn, sessions["first"]), sessions


def display_slug(dsn: str, event_id: int, public: bool | None = None) -> str:
    """The event's public display slug, switching the display on or off first when ``public`` is given."""
    if public is not None:
        query(dsn, "UPDATE timing_events SET public_display = %s WHERE id = %s", (public, event_id))
    return query(dsn, "SELECT display_slug FROM timing_events WHERE id = %s", (event_id,))[0][0]
