"""The SQL of roster pulls: progress rows in ``roster_imports`` and sealed credentials.

Every read of an import is narrowed to the viewer's ``Scope`` in SQL (another partner's
import is simply not found). Nothing here ever sees a credential in plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chronotrack.storage.database import Database
from web.queries import Scope, _rows, iso

MAX_PROBLEMS_STORED = 50


@dataclass(frozen=True)
class RosterImport:
    id: int
    event_id: int
    source: str
    remote_event: str
    status: str
    pages_done: int
    rows_done: int
    rows_rejected: int
    total: int | None
    error: str | None
    problems: list[str]
    started_at: datetime
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "event_id": self.event_id, "source": self.source, "remote_event": self.remote_event,
                "status": self.status, "pages_done": self.pages_done, "rows_done": self.rows_done,
                "rows_rejected": self.rows_rejected, "total": self.total, "error": self.error,
                "problems": self.problems, "started_at": iso(self.started_at), "finished_at": iso(self.finished_at)}


_SELECT = """SELECT id, timing_event_id, source, remote_event, status, pages_done, rows_done, rows_rejected, total,
                    error, problems, started_at, finished_at FROM roster_imports"""


async def start_import(database: Database, partner_id: int, event_id: int, source: str, remote_event: str) -> int:
    rows = await _rows(database, """
        INSERT INTO roster_imports (timing_partner_id, timing_event_id, source, remote_event)
        VALUES (%s, %s, %s, %s) RETURNING id""", (partner_id, event_id, source, remote_event[:200]))
    return int(rows[0][0])


async def record_page(database: Database, import_id: int, rows_done: int, rejected: list[str],
                      total: int | None) -> None:
    await _rows(database, """
        UPDATE roster_imports SET pages_done = pages_done + 1, rows_done = rows_done + %s,
               rows_rejected = rows_rejected + %s, total = COALESCE(%s, total),
               problems = (problems || %s::text[])[1:%s], updated_at = now()
        WHERE id = %s RETURNING id""",
                (rows_done, len(rejected), total, rejected[:MAX_PROBLEMS_STORED], MAX_PROBLEMS_STORED, import_id))


async def finish_import(database: Database, import_id: int, error: str | None = None) -> None:
    await _rows(database, """
        UPDATE roster_imports SET status = %s, error = %s, finished_at = now(), updated_at = now()
        WHERE id = %s RETURNING id""", ("failed" if error else "done", error, import_id))


async def get_import(database: Database, scope: Scope, import_id: int) -> RosterImport | None:
    where, params = scope.where("timing_partner_id", "timing_event_id", extra=["id = %s"], extra_params=[import_id])
    rows = await _rows(database, f"{_SELECT} {where}", params)
    return RosterImport(*rows[0]) if rows else None


async def recent_imports(database: Database, scope: Scope, limit: int = 10) -> list[RosterImport]:
    where, params = scope.where("timing_partner_id", "timing_event_id")
    rows = await _rows(database, f"{_SELECT} {where} ORDER BY id DESC LIMIT %s", [*params, limit])
    return [RosterImport(*row) for row in rows]


async def mark_abandoned(database: Database) -> None:
    """Imports left 'running' by a process that stopped will never finish: say so (at start-up)."""
    await _rows(database, """
        UPDATE roster_imports SET status = 'failed', error = 'the hub stopped during the import; start it again',
               finished_at = now() WHERE status = 'running' AND updated_at < now() - interval '10 minutes'
        RETURNING id""")


# Remembered credentials (sealed with the server key by the caller)


async def save_sealed(database: Database, partner_id: int, source: str, sealed: str) -> None:
    await _rows(database, """
        INSERT INTO roster_source_credentials (timing_partner_id, source, sealed) VALUES (%s, %s, %s)
        ON CONFLICT (timing_partner_id, source) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()
        RETURNING source""", (partner_id, source, sealed))


async def load_sealed(database: Database, partner_id: int, source: str) -> str | None:
    rows = await _rows(database, """SELECT sealed FROM roster_source_credentials
                                    WHERE timing_partner_id = %s AND source = %s""", (partner_id, source))
    return rows[0][0] if rows else None


async def remembered_sources(database: Database, partner_id: int) -> dict[str, datetime]:
    rows = await _rows(database, """SELECT source, updated_at FROM roster_source_credentials
                                    WHERE timing_partner_id = %s""", (partner_id,))
    return {source: updated for source, updated in rows}


async def forget_sealed(database: Database, partner_id: int, source: str) -> None:
    await _rows(database, """DELETE FROM roster_source_credentials WHERE timing_partner_id = %s AND source = %s
                             RETURNING source""", (partner_id, source))
