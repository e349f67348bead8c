"""Operators: the people who sign in to the web pages, with argon2id password hashes only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chronotrack.accounts.errors import AccountError, AlreadyExists
from chronotrack.accounts.partners import partner_id
from chronotrack.storage.database import Database

MAX_EMAIL_LENGTH = 254
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.][^@\s]*")


@dataclass(frozen=True)
class Operator:
    id: int
    email: str
    partner_slug: str
    created_at: datetime
    disabled_at: datetime | None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why a (normalized) e-mail cannot name an operator, or None."""
    if len(email) > MAX_EMAIL_LENGTH:
        return f"an e-mail address may have at most {MAX_EMAIL_LENGTH} characters"
    if not _EMAIL_SHAPE.fullmatch(email) or not email.isprintable():
        return f"{email!r} does not look like an e-mail address (name@example.com)"
    return None


async def add_operator(database: Database, partner_slug: str, email: str, password_hash: str) -> int:
    """Store an operator (the password already hashed); returns its id."""
    email = normalize_email(email)
    problem = email_problem(email)
    if problem:
        raise AccountError(problem)
    partner = await partner_id(database, partner_slug)
    rows = await database.run_query(
        "INSERT INTO operators (timing_partner_id, email, password_hash) VALUES (%s, %s, %s) "
        "ON CONFLICT (email) DO NOTHING RETURNING id", (partner, email, password_hash))
    if not rows:
        raise AlreadyExists(f"an operator {email!r} already exists")
    return int(rows[0][0])


async def list_operators(database: Database, partner_slug: str | None = None) -> list[Operator]:
    sql = ("SELECT o.id, o.email, p.slug, o.created_at, o.disabled_at FROM operators o "
           "JOIN timing_partners p ON p.id = o.timing_partner_id")
    params: tuple = ()
    if partner_slug is not None:
        sql += " WHERE o.timing_partner_id = %s"
        params = (await partner_id(database, partner_slug),)
    rows = await database.run_query(sql + " ORDER BY p.slug, o.email", params)
    return [Operator(*row) for row in rows]


async def remove_operator(database: Database, email: str) -> bool:
    """True when an operator was removed (their web sessions go with them)."""
    rows = await database.run_query("DELETE FROM operators WHERE email = %s RETURNING id", (normalize_email(email),))
    return bool(rows)
