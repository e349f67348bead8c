"""``twistd chronotrack-collector``: options and the service tree.

The plugin file in twisted/plugins only names this module; everything the command
does is decided here. Each option can also come from the environment
(``CHRONOTRACK_<OPTION>``) or the config file (see chronotrack.config).
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import IService
from twisted.internet.endpoints import serverFromString
from twisted.python import usage
from twisted.web.server import Site

from chronotrack.config import ConfigError, option_parameters, settings_from_options
from chronotrack.outbound.settings import OUTBOUND_SETTINGS
from chronotrack.ctp01 import settings_from_config
from chronotrack.garbage_collection import settle_after_start_up
from chronotrack.storage.db_service import DatabaseService
from chronotrack.lifecycle import ListeningService, OrderedServices
from chronotrack.logs import JSON_OBSERVER
from chronotrack.service import CollectorService
from chronotrack.status_api import StatusApp

COLLECTOR_SETTINGS = (
    "port", "status", "web", "dsn", "data-dir", "greeting-delay", "setting-delay", "command-delay",
    "ping-interval", "idle-timeout", "reply-timeout", "event-timezone", "pushmode-ack", "batch-size",
    "batch-delay", "backlog-limit", "retention-days", "messages", "max-stream-clients", "max-streams-per-address",
    "results-freshness", "results-memory-mb", "cors-origins", "write-batch-size", "backlog-in-memory",
    "authentication", "secret-key-file", "greeting-timeout",
    "max-line-length", "max-connections", "max-connections-per-address", "allow",
    "rejected-lines-stored-per-minute", "garbage-ratio", "max-rejected-per-minute", "garbage-penalty",
    "clock-tolerance", "log-format", *OUTBOUND_SETTINGS,
)


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Collects tag reads from ChronoTrack controllers (CTP01 over TCP) into PostgreSQL, "
                "serves the status API and, unless --web none, the race display.")
    optParameters = option_parameters(COLLECTOR_SETTINGS)

    def postOptions(self):
        self.settings = settings_from_options(self, COLLECTOR_SETTINGS)
        self._choose_log_format()
        try:
            self.handshake = settings_from_config(self.settings)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from error

    def _choose_log_format(self) -> None:
        """--log-format json sets twistd's own --logger (twistd starts logging after parsing
        the options, from its ``logger`` option), unless --logger was given explicitly."""
        parent = getattr(self, "parent", None)
        if self.settings["log_format"] != "json" or parent is None:
            return
        if parent.get("logger") is None:
            parent["logger"] = JSON_OBSERVER


def listener(reactor, description: str, factory, purpose: str) -> ListeningService:
    try:
        endpoint = serverFromString(reactor, description)
    except (ValueError, KeyError) as error:
        raise usage.UsageError(f"bad endpoint {description!r} for the {purpose}: {error}") from error
    return ListeningService(endpoint, factory, description, purpose)


def is_off(description: str | None) -> bool:
    return not description or description.strip().lower() == "none"


def makeService(options: Options, reactor=None) -> IService:
    if reactor is None:
        from twisted.internet import reactor
    settings = options.settings
    root = OrderedServices()
    try:
        # In a burst the read writer holds two connections (a statement being written and the
        # next one sent ahead); the controllers' other statements and the pages keep two.
        database = DatabaseService(reactor, settings["dsn"], Path(settings["data_dir"]), pool_size=4)
    except ValueError as error:
        raise usage.UsageError(str(error)) from error
    database.setServiceParent(root)

    collector = CollectorService(reactor, database, Path(settings["data_dir"]), options.handshake, settings)
    collector.add_ctp01_listener(listener(reactor, settings["port"], collector.factory, "CTP01 collector"))
    collector.setServiceParent(root)

    if not is_off(settings["status"]):
        status = StatusApp(reactor, collector)
        listener(reactor, settings["status"], Site(status.app.resource()), "status API").setServiceParent(root)

    if not is_off(settings["web"]):
        add_web_layer(reactor, settings, database, collector, root)
    settle_after_start_up()
    return root


def add_web_layer(reactor, settings: dict, database: DatabaseService, collector: CollectorService,
                  root: OrderedServices) -> None:
    """The pages and feeds on the collector's reactor. Imported only here: a collector run with
    ``--web none`` (the display served by its own process) does not carry the web layer's
    modules, templates and image library, some 8 MB of its resident memory."""
    from web.collector_status import in_process_collector_status
    from web.service import make_web_service

    web = make_web_service(reactor, settings["web"], database, settings["messages"],
                           collector_status=in_process_collector_status(reactor, collector),
                           max_stream_clients=settings["max_stream_clients"],
                           max_streams_per_address=settings["max_streams_per_address"],
                           cors_origins=settings["cors_origins"])
    web.setServiceParent(root)
    display_app = getattr(web, "display_app", None)
    if display_app is not None:
        collector.metrics.stream_clients = lambda: display_app.open_streams
        display_app.configure_outbound(settings)
        display_app.configure_results(settings["results_freshness"], settings["results_memory_mb"])
