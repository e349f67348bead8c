"""One roster pull, run on the reactor: page after page into the event's roster, progress in the database.

Each page is stored as it arrives through ``web.queries.upsert_participants`` (the CSV
upload's upsert by event and bib), so a failure on page 7 keeps pages 1 to 6. Bad records
are reported and skipped; a bib seen twice keeps its first record. The platform's base URL
is configured by the hub operator, so private addresses are allowed for it (a hub on a
closed network, the tests' stubs), while every other guard of ``safe_fetch`` stays on.
Nothing logged or stored here contains a credential: errors are ``SourceError`` messages,
already redacted, and an unexpected failure is recorded by its kind only.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.logger import Logger

from chronotrack.outbound.safe_fetch import FetchError, FetchPolicy, SafeFetcher
from chronotrack.roster_sources import store
from chronotrack.roster_sources.base import RosterSource, SourceRequest, redact
from chronotrack.storage.database import Database
from web import queries
from web.errors import DatabaseUnavailable
from web.queries import Scope

log = Logger()

MAX_PAGE_BYTES = 8 * 1024 * 1024


class RosterPulls:
    """Starts pulls and keeps the running ones (so shutting down can wait for or cancel them)."""

    def __init__(self, reactor: Any, timeout: float) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.running: dict[int, Deferred] = {}

    async def start(self, database: Database, partner_id: int, event_id: int, source: RosterSource,
                    request: SourceRequest) -> int:
        import_id = await store.start_import(database, partner_id, event_id, source.name, source.describe(request))
        log.info("roster pull {id} from {source} ({remote}) into event {event} started", id=import_id,
                 source=source.label, remote=source.describe(request), event=event_id)
        work = ensureDeferred(self._run(database, partner_id, import_id, event_id, source, request))
        self.running[import_id] = work
        work.addBoth(self._forget, import_id)
        return import_id

    def _forget(self, result, import_id: int):
        self.running.pop(import_id, None)
        return None

    def stop_all(self) -> None:
        for work in list(self.running.values()):
            work.cancel()

    async def _run(self, database: Database, partner_id: int, import_id: int, event_id: int,
                   source: RosterSource, request: SourceRequest) -> None:
        fetcher = SafeFetcher(self.reactor, FetchPolicy(max_bytes=MAX_PAGE_BYTES, timeout=self.timeout,
                                                        allow_private=True))
        scope = Scope.of_partners([partner_id])
        seen: set[str] = set()
        error = None
        try:
            async for page in source.pages(fetcher, request):
                fresh, problems = [], list(page.problems)
                for participant in page.participants:
                    if participant.bib in seen:
                        problems.append(f"bib {participant.bib} appears twice; the first record is kept")
                        continue
                    seen.add(participant.bib)
                    fresh.append(participant)
                written = await queries.upsert_participants(database, event_id, fresh, scope)
                await store.record_page(database, import_id, written, problems, page.total)
        except FetchError as failure:
            error = redact(str(failure), request.secrets())
        except DatabaseUnavailable:
            error = "the database was unavailable; start the import again"
        except CancelledError:
            error = "the hub stopped during the import; start it again"
        except Exception as failure:  # the kind only: a message could quote a request
            log.error("roster pull {id} failed unexpectedly ({kind})", id=import_id, kind=type(failure).__name__)
            error = "an unexpected error stopped the import; the details are in the server log"
        try:
            await store.finish_import(database, import_id, error)
        except DatabaseUnavailable:
            log.error("roster pull {id} could not record its end", id=import_id)
        if error:
            log.info("roster pull {id} from {source} failed: {error}", id=import_id, source=source.label, error=error)
        else:
            log.info("roster pull {id} from {source} done", id=import_id, source=source.label)
