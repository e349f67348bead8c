"""Controller logins for CTP01 ``authorize``: a user id and a password kept encrypted.

The hmac and seed modes need the password itself, so it is stored encrypted with the
server key (``SecretBox``), never as plain text. A password travels inside a
``~``-separated CTP01 line, which limits what it may contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chronotrack.accounts.errors import AccountError, AlreadyExists
from chronotrack.accounts.partners import partner_id
from chronotrack.storage.database import Database

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # the same rule as the table's CHECK
MAX_PASSWORD_LENGTH = 128
_FORBIDDEN_IN_PASSWORD = {"~": "'~' (it separates the fields of a CTP01 line)", "\r": "a carriage return",
                          "\n": "a line feed", "\0": "a NUL character"}


@dataclass(frozen=True)
class ControllerLogin:
    id: int
    user_id: str
    partner_slug: str
    created_at: datetime


def user_id_problem(user_id: str) -> str | None:
    if not USER_ID_PATTERN.fullmatch(user_id):
        return (f"bad controller user id {user_id!r}: use 1 to 64 letters, digits, "
                "dots, underscores, @ and dashes")
    return None


def controller_password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a controller's password, or None. Never quotes the password."""
    if not password:
        return "a controller password may not be empty"
    for character, described in _FORBIDDEN_IN_PASSWORD.items():
        if character in password:
            return f"a controller password may not contain {described}"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a controller password may have at most {MAX_PASSWORD_LENGTH} characters"
    return None


async def add_controller(database: Database, partner_slug: str, user_id: str, password_encrypted: str) -> int:
    """Store a login (the password already encrypted); returns its id."""
    problem = user_id_problem(user_id)
    if problem:
        raise AccountError(problem)
    partner = await partner_id(database, partner_slug)
    rows = await database.run_query(
        "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted) "
        "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO NOTHING RETURNING id",
        (partner, user_id, password_encrypted))
    if not rows:
        owner = await database.run_query(
            "SELECT p.slug FROM controller_credentials c JOIN timing_partners p ON p.id = c.timing_partner_id "
            "WHERE c.user_id = %s", (user_id,))
        taken_by = f" (by partner {owner[0][0]!r})" if owner else ""
        raise AlreadyExists(f"the controller user id {user_id!r} is already taken{taken_by}; "
                            "user ids are unique across partners")
    return int(rows[0][0])


async def list_controllers(database: Database, partner_slug: str | None = None) -> list[ControllerLogin]:
    """The logins (never their passwords), of one partner or of all."""
    sql = ("SELECT c.id, c.user_id, p.slug, c.created_at FROM controller_credentials c "
           "JOIN timing_partners p ON p.id = c.timing_partner_id")
    params: tuple = ()
    if partner_slug is not None:
        sql += " WHERE c.timing_partner_id = %s"
        params = (await partner_id(database, partner_slug),)
    rows = await database.run_query(sql + " ORDER BY p.slug, c.user_id", params)
    return [ControllerLogin(*row) for row in rows]


async def remove_controller(database: Database, user_id: str) -> bool:
    """True when a login was removed."""
    rows = await database.run_query("DELETE FROM controller_credentials WHERE user_id = %s RETURNING id", (user_id,))
    return bool(rows)


async def any_encrypted_password(database: Database) -> str | None:
    """One stored encrypted password, to check that a server key is the one already in use."""
    rows = await database.run_query("SELECT password_encrypted FROM controller_credentials ORDER BY id LIMIT 1")
    return rows[0][0] if rows else None
