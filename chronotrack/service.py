"""The collector as a twistd service: store, journal and CTP01 listener, started in order.

Start-up order matters for "never lose a read": the journal is opened (and whatever a
crash left in it queued for the database) before the CTP01 port accepts a controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chronotrack.admission import AdmissionPolicy, admission_from_config
from chronotrack.ctp01 import HandshakeSettings
from chronotrack.db_service import DatabaseService
from chronotrack.journal import JournalError, ReadJournal
from chronotrack.line_guard import limits_from_config
from chronotrack.pgstore import PostgresReadStore
from chronotrack.protocol import CTP01ServerFactory
from chronotrack.lifecycle import ListeningService, abort_startup

log = Logger()

RETENTION_CHECK_INTERVAL = 3600.0


class CollectorService(MultiService):
    """Owns the store and the CTP01 factory; its children are the listeners."""

    def __init__(self, reactor, database_service: DatabaseService, data_dir: Path,
                 handshake: HandshakeSettings, settings: dict[str, Any]) -> None:
        super().__init__()
        self.reactor = reactor
        self.database_service = database_service
        self.data_dir = Path(data_dir)
        self.journal = ReadJournal(Path(data_dir) / "journal", reactor)
        limits = limits_from_config(settings)
        self.store = PostgresReadStore(
            reactor, database_service, self.journal,
            batch_size=settings["batch_size"], batch_delay=settings["batch_delay"],
            backlog_limit=settings["backlog_limit"], clock_tolerance=limits.clock_tolerance)
        self.factory = CTP01ServerFactory(self.store, reactor, handshake, limits,
                                          AdmissionPolicy(admission_from_config(settings)))
        self.store.on_backlog_full = self.factory.pause_all
        self.store.on_backlog_drained = self.factory.resume_all
        self.retention_days = settings["retention_days"]
        self._retention = LoopingCall(self._delete_expired)
        self._retention.clock = reactor
        self.ctp01_listener: ListeningService | None = None

    def add_ctp01_listener(self, listener: ListeningService) -> None:
        self.ctp01_listener = listener
        listener.setServiceParent(self)

    @inlineCallbacks
    def startService(self):
        # Children (the CTP01 listener) start only once the journal is recovered.
        self.running = 1
        try:
            yield self.store.start()
        except JournalError as error:
            abort_startup(self.reactor, f"{error}. Is another collector using --data-dir {self.data_dir}?")
            return
        self.database_service.claim_embedded_server()
        for child in self:
            child.startService()
        self.database_service.when_schema_ready().addCallback(lambda _: self._start_retention())

    def _start_retention(self):
        if not self._retention.running:
            self._retention.start(RETENTION_CHECK_INTERVAL, now=True)

    def _delete_expired(self):
        return self.store.delete_expired(self.retention_days)

    @inlineCallbacks
    def stopService(self):
        if self._retention.running:
            self._retention.stop()
        # Stop reading first: every read taken in from here on is one we can flush.
        self.factory.pause_all()
        yield super().stopService()  # stop accepting new controllers
        for connection in list(self.factory.open_connections):
            connection.transport.loseConnection()
        yield self.store.stop()

    async def status_figures(self) -> dict[str, Any]:
        figures = self.store.figures()
        database = self.database_service.database
        connected = bool(database is not None and (await database.check()))
        return {
            "tcp_port": self.ctp01_listener.port_number if self.ctp01_listener else None,
            "connections": len(self.factory.open_connections),
            "total_reads": figures["reads_stored"],
            "current_session": figures["current_session"],
            "database_connected": connected,
            "reads_received": figures["reads_received"],
            "reads_waiting": figures["reads_waiting"],
            "journal_pending": figures["journal_pending"],
            "duplicates_skipped": figures["duplicates_skipped"],
            "lines_rejected": self.factory.lines_rejected,
            "controllers_paused": figures["controllers_paused"],
            **self.factory.rejections.figures(),
            **self.factory.admission.figures(),
        }
