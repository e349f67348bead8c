"""The database as a twistd service: embedded server or DSN, schema, start and stop.

Both plugins (collector, display) put one of these first in their MultiService. Until
``startService`` has done its asynchronous work ``database`` is None; users (the store,
the web layer) treat that like a database that is down.
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger

from chronotrack.storage.database import Database, check_dsn_syntax, redact_dsn
from chronotrack.storage.embedded_db import EmbeddedPostgres
from chronotrack.storage.migrations import migrate
from chronotrack.lifecycle import abort_startup

log = Logger()

SCHEMA_RETRY_DELAY = 2.0


class DatabaseService(Service):
    name = "database"

    def __init__(self, reactor, dsn: str | None, data_dir: Path, owns_embedded: bool = False,
                 pool_size: int = 3) -> None:
        if dsn:
            check_dsn_syntax(dsn)
        self.reactor = reactor
        self.dsn = dsn
        self.data_dir = Path(data_dir)
        self.embedded = None if dsn else EmbeddedPostgres(self.data_dir, owner=owns_embedded)
        self.pool_size = pool_size
        self.database: Database | None = None
        self.schema_ready = False
        self._upgrading = False
        self._ready_waiters: list[Deferred] = []

    @inlineCallbacks
    def startService(self):
        super().startService()
        dsn = self.dsn
        if self.embedded is not None:
            log.info("no DSN given: using the embedded PostgreSQL in {path}", path=str(self.embedded.cluster))
            try:
                dsn = yield self.embedded.start()
            except Exception as error:  # noqa: BLE001 - any failure here ends start-up
                abort_startup(self.reactor, f"the embedded PostgreSQL did not start: {error}")
                return
        self.database = Database(self.reactor, dsn, pool_size=self.pool_size)
        self.database.on_connect(self._upgrade_schema)
        connected = yield self.database.start()
        if not connected:
            log.error("cannot reach PostgreSQL at {dsn} ({reason}); reads are journaled in {data_dir} "
                      "and written once it answers",
                      dsn=redact_dsn(dsn), reason=self.database.last_error, data_dir=str(self.data_dir))

    @inlineCallbacks
    def _upgrade_schema(self):
        if self.schema_ready or self._upgrading or not self.running:
            return
        self._upgrading = True
        try:
            yield migrate(self.database)
        except Exception:
            log.failure("schema upgrade failed; trying again in {delay} s", delay=SCHEMA_RETRY_DELAY)
            self.reactor.callLater(SCHEMA_RETRY_DELAY, self._upgrade_schema)
            return
        finally:
            self._upgrading = False
        self.schema_ready = True
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(self.database)

    def claim_embedded_server(self) -> None:
        """This process owns the data directory (it holds the journal): it stops the server at exit.

        Claimed only once the collector holds the journal lock, so a second collector
        started on the same directory by mistake never stops the first one's database.
        """
        if self.embedded is not None:
            self.embedded.owner = True

    def when_schema_ready(self) -> Deferred[Database]:
        """Fires with the Database once it is reachable and its schema is up to date."""
        if self.schema_ready:
            return succeed(self.database)
        waiter: Deferred = Deferred()
        self._ready_waiters.append(waiter)
        return waiter

    @inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.database is not None:
            self.database.close()
        if self.embedded is not None:
            yield self.embedded.stop()
