"""Create and upgrade the schema from the versioned SQL files in ``chronotrack/schema``.

Each file ``NNNN_name.sql`` is applied once, in order, inside one transaction that
holds an advisory lock, so two processes starting together (collector and display)
cannot apply the same file twice. Operators never run SQL by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from chronotrack.storage.database import Database

log = Logger()

MIGRATION_LOCK_ID = 61611  # any constant; shared by every process of this program
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The schema files shipped with the code, oldest first."""
    found = []
    for entry in resources.files("chronotrack.schema").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema files share a version number: {versions}")
    return found


@inlineCallbacks
def _apply_pending(cursor, migrations: list[Migration]):
    yield cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
    yield cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    yield cursor.execute("SELECT version FROM schema_migrations")
    applied = {row[0] for row in cursor.fetchall()}
    newly_applied = []
    for migration in migrations:
        if migration.version in applied:
            continue
        yield cursor.execute(migration.sql)
        yield cursor.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (migration.version, migration.name))
        newly_applied.append(migration.name)
    return newly_applied


def migrate(database: Database) -> Deferred[list[str]]:
    """Bring the schema up to date; fires with the names of the files applied now."""
    d = database.run_interaction(_apply_pending, available_migrations())

    def report(applied: list[str]) -> list[str]:
        if applied:
            log.info("database schema upgraded: applied {files}", files=", ".join(applied))
        else:
            log.info("database schema is up to date")
        return applied

    return d.addCallback(report)
