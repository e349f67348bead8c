"""Timing partners: the timing companies that share the hub, each known by a slug."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chronotrack.accounts.errors import AccountError, AlreadyExists, UnknownPartner, text_problem
from chronotrack.storage.database import Database

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # the same rule as the table's CHECK
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class Partner:
    id: int
    slug: str
    name: str
    created_at: datetime


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot name a partner, or None."""
    if not SLUG_PATTERN.fullmatch(slug):
        return (f"bad partner slug {slug!r}: use 1 to 63 lower-case letters, digits and dashes, "
                "starting with a letter or digit")
    return None


async def add_partner(database: Database, slug: str, name: str | None = None) -> Partner:
    """A new partner; its name defaults to its slug."""
    problem = slug_problem(slug)
    if problem:
        raise AccountError(problem)
    name = slug if name is None else name.strip()
    problem = text_problem(name, "a partner's name", MAX_NAME_LENGTH) or (
        "a partner's name may not be empty" if not name else None)
    if problem:
        raise AccountError(problem)
    rows = await database.run_query(
        "INSERT INTO timing_partners (slug, name) VALUES (%s, %s) "
        "ON CONFLICT (slug) DO NOTHING RETURNING id, slug, name, created_at", (slug, name))
    if not rows:
        raise AlreadyExists(f"a timing partner {slug!r} already exists")
    return Partner(*rows[0])


async def list_partners(database: Database) -> list[Partner]:
    rows = await database.run_query("SELECT id, slug, name, created_at FROM timing_partners ORDER BY slug")
    return [Partner(*row) for row in rows]


async def find_partner(database: Database, slug: str) -> Partner | None:
    rows = await database.run_query(
        "SELECT id, slug, name, created_at FROM timing_partners WHERE slug = %s", (slug,))
    return Partner(*rows[0]) if rows else None


async def partner_id(database: Database, slug: str) -> int:
    """The id of the partner with this slug; UnknownPartner when there is none."""
    partner = await find_partner(database, slug)
    if partner is None:
        raise UnknownPartner(slug)
    return partner.id
