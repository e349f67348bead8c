"""The collector as a twistd service: store, journal and CTP01 listener, started in order.

Start-up order matters for "never lose a read": the journal is opened (and whatever a
crash left in it queued for the database) before the CTP01 port accepts a controller.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chronotrack.accounts.controller_auth import ControllerAuthenticator
from chronotrack.accounts.controller_logins import DatabaseControllerLogins
from chronotrack.accounts.failure_throttle import FailureThrottle
from chronotrack.accounts.secret_box import SecretKeyError, key_file_path
from chronotrack.admission import AdmissionPolicy, admission_from_config
from chronotrack.ctp01 import HandshakeSettings
from chronotrack.storage.db_service import DatabaseService
from chronotrack.storage.journal import JournalError, ReadJournal
from chronotrack.line_guard import limits_from_config
from chronotrack.memory_probe import probe_from_environment
from chronotrack.metrics import CollectorMetrics
from chronotrack.storage.pgstore import PostgresReadStore
from chronotrack.protocol import CTP01ServerFactory
from chronotrack.lifecycle import ListeningService, abort_startup

log = Logger()

RETENTION_CHECK_INTERVAL = 3600.0
NETWORK_ENDPOINT_TYPES = ("tcp", "tcp6", "ssl")


def open_to_anyone_warning(authentication: str, port_description: str) -> str | None:
    """The start-up warning for a CTP01 port anyone on the network can send reads to.

    Only ``none`` on a TCP endpoint that listens beyond a loopback interface warrants it;
    endpoints we cannot judge (unix sockets, systemd) are left alone.
    """
    if authentication != "none":
        return None
    kind, *arguments = _endpoint_fields(port_description)
    if kind.lower() not in NETWORK_ENDPOINT_TYPES and not kind.isdigit():
        return None
    options = dict(argument.split("=", 1) for argument in arguments if "=" in argument)
    interface = options.get("interface", "")
    try:
        if interface and ipaddress.ip_address(interface).is_loopback:
            return None
    except ValueError:
        if interface.lower() == "localhost":
            return None
    where = interface or "every interface"
    return (f"authentication is none and the CTP01 port {port_description} listens on {where}: "
            "anyone who can reach it can send reads. Use --authentication (e.g. hmac-sha1) or "
            "listen on 127.0.0.1 only.")


def _endpoint_fields(description: str) -> list[str]:
    """Split an endpoint string on ``:``, honouring backslash escapes (``\\:\\:1``)."""
    fields, current, escaped = [], [], False
    for character in description:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(character)
    fields.append("".join(current))
    return fields


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
            backlog_limit=settings["backlog_limit"], clock_tolerance=limits.clock_tolerance,
            write_batch_size=settings["write_batch_size"], backlog_in_memory=settings["backlog_in_memory"])
        self.authentication = settings.get("authentication") or "none"
        self.port_description = settings.get("port") or ""
        self.logins = DatabaseControllerLogins(
            lambda: database_service.database,
            key_file_path(self.data_dir, settings.get("secret_key_file")))
        authenticator = ControllerAuthenticator(
            self.authentication, self.logins, FailureThrottle(reactor), reactor)
        self.factory = CTP01ServerFactory(self.store, reactor, handshake, limits,
                                          AdmissionPolicy(admission_from_config(settings)),
                                          authenticator)
        self.store.on_backlog_full = self.factory.pause_all
        self.store.on_backlog_drained = self.factory.resume_all
        self.metrics = CollectorMetrics(self)
        self.store.on_batch_written = self.metrics.observe_batch
        self.retention_days = settings["retention_days"]
        self._retention = LoopingCall(self._delete_expired)
        self._retention.clock = reactor
        self.ctp01_listener: ListeningService | None = None
        probe = probe_from_environment(reactor, figures=self._memory_figures)
        if probe is not None:
            probe.setServiceParent(self)

    def _memory_figures(self) -> dict[str, Any]:
        """What the opt-in memory probe writes beside VmRSS and malloc's figures (see chronotrack.memory_probe)."""
        return {**self.store.figures(), **self.store.memory_figures(),
                "connections": len(self.factory.open_connections)}

    def add_ctp01_listener(self, listener: ListeningService) -> None:
        self.ctp01_listener = listener
        listener.setServiceParent(self)

    @inlineCallbacks
    def startService(self):
        # Children (the CTP01 listener) start only once the journal is recovered.
        self.running = 1
        if self.authentication != "none":
            try:
                self.logins.load_key()  # created (mode 0600) on first start
            except SecretKeyError as error:
                abort_startup(self.reactor, str(error))
                return
        warning = open_to_anyone_warning(self.authentication, self.port_description)
        if warning:
            log.warn("{warning}", warning=warning)
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
        return self.store.delete_expired(self.retention_days, keep_going=lambda: bool(self.running))

    @inlineCallbacks
    def stopService(self):
        if self._retention.running:
            self._retention.stop()
        # Stop reading first: every read taken in from here on is one we can flush. The store
        # must not resume the controllers once its journal catches up during the flush.
        self.store.on_backlog_drained = None
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
            "schema_ready": self.database_service.schema_ready,
            "reads_received": figures["reads_received"],
            "reads_waiting": figures["reads_waiting"],
            "journal_pending": figures["journal_pending"],
            "duplicates_skipped": figures["duplicates_skipped"],
            "lines_rejected": self.factory.lines_rejected,
            "authentication_failures": self.factory.authentication_failures,
            "controllers_paused": figures["controllers_paused"],
            # Brief pauses while the journal's disk catches up with a burst (see chronotrack.storage.pgstore).
            "pauses_for_journal": figures["pauses_for_journal"],
            "reads_awaiting_journal_peak": figures["reads_awaiting_journal_peak"],
            # Statements of reads sent while the one before was still being written (0020).
            "statements_sent_ahead": figures["statements_sent_ahead"],
            **self.factory.rejections.figures(),
            **self.factory.admission.figures(),
        }
