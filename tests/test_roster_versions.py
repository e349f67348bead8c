"""0016: every change to an event's runners, by any writer, bumps that event's roster version
(what a cached event's results were built from), and only that event's. Real PostgreSQL."""

from __future__ import annotations

import pytest_twisted

from tests import rows
from tests.postgres import query


def version(dsn: str, event: int):
    found = query(dsn, "SELECT version FROM roster_versions WHERE timing_event_id = %s", (event,))
    return found[0][0] if found else None


def runner(dsn: str, event: int, bib: str, last: str = "Lovelace") -> None:
    query(dsn, """
        INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name)
        SELECT id, timing_partner_id, %s, 'Ada', %s FROM timing_events WHERE id = %s
        ON CONFLICT (timing_event_id, bib) DO UPDATE SET last_name = EXCLUDED.last_name""", (bib, last, event))


@pytest_twisted.ensureDeferred
async def test_inserts_updates_and_deletes_of_runners_bump_their_events_version_only(pg_dsn, database):
    ten_k = rows.insert_event(pg_dsn, "10k", "Acme 10K")
    kids = rows.insert_event(pg_dsn, "kids", "Kids run")
    assert version(pg_dsn, ten_k) is None
    runner(pg_dsn, ten_k, "101")
    runner(pg_dsn, kids, "1")
    seen = [version(pg_dsn, ten_k)]
    runner(pg_dsn, ten_k, "102")
    seen.append(version(pg_dsn, ten_k))
    runner(pg_dsn, ten_k, "101", "Byron")  # an import correcting a name: ON CONFLICT DO UPDATE
    seen.append(version(pg_dsn, ten_k))
    query(pg_dsn, "UPDATE participants SET age = 36 WHERE bib = '102'")  # psql, without touching updated_at
    seen.append(version(pg_dsn, ten_k))
    query(pg_dsn, "DELETE FROM participants WHERE bib = '102'")  # a deletion: the count alone would drop
    seen.append(version(pg_dsn, ten_k))
    assert len(set(seen)) == len(seen) and seen == sorted(seen)
    assert version(pg_dsn, kids) == 1  # untouched by the 10K's changes
    query(pg_dsn, "TRUNCATE participants")
    assert version(pg_dsn, ten_k) > seen[-1] and version(pg_dsn, kids) > 1


@pytest_twisted.ensureDeferred
async def test_an_event_with_runners_can_still_be_deleted(pg_dsn, database):
    event = rows.insert_event(pg_dsn, "10k", "Acme 10K")
    runner(pg_dsn, event, "101")
    query(pg_dsn, "DELETE FROM timing_events WHERE id = %s", (event,))
    assert query(pg_dsn, "SELECT count(*) FROM roster_versions")[0][0] == 0
