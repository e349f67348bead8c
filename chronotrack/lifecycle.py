"""How the program's twistd services start and stop, shared by both plugins.

- ``OrderedServices``: the root of a service tree; stops children last-first, one at a time.
- ``ListeningService``: listens on an endpoint; a port already taken is one clear line.
- ``abort_startup``: asynchronous start-up failed after ``makeService`` returned: say why
  and stop, instead of carrying on half-started (listening but unable to keep reads).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

log = Logger()


class OrderedServices(MultiService):
    """Stops its children last-first, each only after the one before it has finished.

    Twisted's MultiService stops them all at once; then the database would close
    while the store is still flushing reads to it.
    """

    @inlineCallbacks
    def stopService(self):
        Service.stopService(self)
        for child in reversed(list(self)):
            if child.running:
                yield child.stopService()


class ListeningService(StreamServerEndpointService):
    """A listener that turns "port taken" into one clear line and a failed start."""

    def __init__(self, endpoint, factory, description: str, purpose: str,
                 on_listening: Callable[[IListeningPort], Any] | None = None) -> None:
        super().__init__(endpoint, factory)
        self.description = description
        self.purpose = purpose
        self.on_listening = on_listening
        self._raiseSynchronously = True
        self.listening_port = None

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except CannotListenError as error:
            reason = error.socketError.strerror if hasattr(error.socketError, "strerror") else error.socketError
            raise SystemExit(f"chronotrack: cannot listen on {self.description} for the {self.purpose}: "
                             f"{reason}. Is another copy running? Choose another endpoint with the option "
                             f"or its CHRONOTRACK_ environment variable.") from None
        self._waitingForPort.addCallback(self._remember_port)

    def _remember_port(self, port):
        self.listening_port = port
        address = port.getHost()
        log.info("{purpose} listening on {host}:{port}", purpose=self.purpose,
                 host=getattr(address, "host", "?"), port=getattr(address, "port", "?"))
        if self.on_listening is not None:
            self.on_listening(port)
        return port

    @property
    def port_number(self) -> int | None:
        return getattr(self.listening_port.getHost(), "port", None) if self.listening_port else None


def abort_startup(reactor, message: str) -> None:
    log.critical("cannot start: {message}", message=message)
    if reactor.running:
        reactor.stop()
    else:
        reactor.callWhenRunning(reactor.stop)
