"""The web layer as a twistd service, for the display plugin and the collector alike."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from chronotrack.lifecycle import ListeningService
from web.app import CollectorStatus, DisplayApp
from web.headers import HeaderPolicy
from web.limits import DEFAULT_MAX_STREAM_CLIENTS, DEFAULT_MAX_STREAMS_PER_ADDRESS
from web.site import HubSite

log = Logger()


class WebService(MultiService):
    """Serves ``display_app`` on an endpoint; on stop, ends open streams before the port closes.

    Every request goes through ``HubSite`` (web/site.py): security headers on every
    response, request bodies refused over their limit before they are read, and at most
    ``max_stream_clients`` live streams, ``max_streams_per_address`` of them from one address.
    """

    name = "web"

    def __init__(self, reactor, endpoint: IStreamServerEndpoint, display_app: DisplayApp,
                 description: str | None = None, max_stream_clients: int = DEFAULT_MAX_STREAM_CLIENTS,
                 cors_origins: tuple[str, ...] = (),
                 max_streams_per_address: int = DEFAULT_MAX_STREAMS_PER_ADDRESS) -> None:
        super().__init__()
        self.reactor = reactor
        self.display_app = display_app
        self.port: IListeningPort | None = None
        self._listening_waiters: list[Deferred] = []
        policy = HeaderPolicy(cors_origins=frozenset(origin.encode("ascii") for origin in cors_origins))
        self.site = HubSite(display_app.resource(), policy, max_stream_clients, max_streams_per_address,
                            reactor=reactor)
        server = ListeningService(endpoint, self.site, description or repr(endpoint),
                                  "race display", on_listening=self._listening)
        server.setServiceParent(self)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", "")
        if host in ("0.0.0.0", "::", ""):
            host = "localhost"
        if ":" in host:
            host = f"[{host}]"
        log.info("race display at http://{host}:{port}/", host=host, port=getattr(address, "port", "?"))
        waiters, self._listening_waiters = self._listening_waiters, []
        for waiter in waiters:
            waiter.callback(port)

    def when_listening(self) -> Deferred[IListeningPort]:
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred = Deferred()
        self._listening_waiters.append(waiter)
        return waiter

    def startService(self) -> None:
        super().startService()
        when_ready = getattr(self.display_app.database_source, "when_schema_ready", None)
        if when_ready is not None:
            # Start listening for new reads as soon as the database is there, so the first
            # browser does not wait for the LISTEN to be set up.
            when_ready().addCallback(self.display_app.database_ready).addErrback(
                lambda failure: log.failure("could not start the live read feed", failure))

    def stopService(self):
        self.display_app.close_streams()
        return super().stopService()


def make_web_service(reactor, endpoint: IStreamServerEndpoint | str, database_source: Any,
                     messages: tuple[str, ...], collector_status: CollectorStatus | None,
                     max_stream_clients: int = DEFAULT_MAX_STREAM_CLIENTS,
                     cors_origins: tuple[str, ...] = (),
                     max_streams_per_address: int = DEFAULT_MAX_STREAMS_PER_ADDRESS) -> IService:
    """The race display served on ``endpoint`` (an endpoint or an endpoint string).

    ``database_source.database`` is read on every request (a DatabaseService works);
    ``collector_status()`` returns a Deferred of the collector's status dict or None.
    """
    description = endpoint if isinstance(endpoint, str) else repr(endpoint)
    if isinstance(endpoint, str):
        endpoint = serverFromString(reactor, endpoint)
    display_app = DisplayApp(reactor, database_source, tuple(messages), collector_status)
    return WebService(reactor, endpoint, display_app, description, max_stream_clients, tuple(cors_origins),
                      max_streams_per_address)

