"""API tokens for the JSON API and /stream: shown once when created, stored as a SHA-256 hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chronotrack.accounts.errors import AccountError, text_problem
from chronotrack.accounts.partners import partner_id
from chronotrack.accounts.tokens import new_api_token, token_hash
from chronotrack.storage.database import Database

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class ApiToken:
    id: int
    partner_slug: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewApiToken:
    id: int
    token: str  # the only time it exists outside the caller's hands


async def create_api_token(database: Database, partner_slug: str, name: str = "") -> NewApiToken:
    name = name.strip()
    problem = text_problem(name, "a token's name", MAX_NAME_LENGTH)
    if problem:
        raise AccountError(problem)
    partner = await partner_id(database, partner_slug)
    token = new_api_token()
    rows = await database.run_query(
        "INSERT INTO api_tokens (timing_partner_id, name, token_hash) VALUES (%s, %s, %s) RETURNING id",
        (partner, name, token_hash(token)))
    return NewApiToken(int(rows[0][0]), token)


async def list_api_tokens(database: Database, partner_slug: str | None = None) -> list[ApiToken]:
    sql = ("SELECT t.id, p.slug, t.name, t.created_at, t.last_used_at, t.revoked_at FROM api_tokens t "
           "JOIN timing_partners p ON p.id = t.timing_partner_id")
    params: tuple = ()
    if partner_slug is not None:
        sql += " WHERE t.timing_partner_id = %s"
        params = (await partner_id(database, partner_slug),)
    rows = await database.run_query(sql + " ORDER BY t.id", params)
    return [ApiToken(*row) for row in rows]


async def revoke_api_token(database: Database, token_id: int) -> tuple[datetime, bool] | None:
    """Revoke a token: (when it was revoked, whether it already was), or None when there is no such token."""
    rows = await database.run_query(
        "WITH old AS (SELECT id, revoked_at FROM api_tokens WHERE id = %s FOR UPDATE) "
        "UPDATE api_tokens AS t SET revoked_at = coalesce(old.revoked_at, now()) FROM old WHERE t.id = old.id "
        "RETURNING t.revoked_at, old.revoked_at IS NOT NULL", (token_id,))
    return (rows[0][0], bool(rows[0][1])) if rows else None
