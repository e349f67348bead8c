"""``twistd chronotrack-display``: the race display alone, against the timing database.

Operators run collection and display as separate services; this is the display half. New
reads reach it through PostgreSQL NOTIFY, so it needs nothing from the collector but the
database (and, for /status, the collector's status URL).
"""

from __future__ import annotations

from pathlib import Path

from twisted.python import usage

from chronotrack.config import option_parameters, settings_from_options
from chronotrack.garbage_collection import settle_after_start_up
from chronotrack.outbound.settings import OUTBOUND_SETTINGS
from chronotrack.storage.db_service import DatabaseService
from chronotrack.lifecycle import OrderedServices
from web.collector_status import http_collector_status
from web.service import WebService, make_web_service

__all__ = ["Options", "makeService", "make_web_service", "WebService"]

SETTING_NAMES = ("web", "dsn", "data-dir", "messages", "collector-status", "max-stream-clients",
                 "max-streams-per-address", "results-freshness", "results-memory-mb", "cors-origins",
                 "secret-key-file", *OUTBOUND_SETTINGS)


class Options(usage.Options):
    optParameters = option_parameters(SETTING_NAMES)

    def postOptions(self) -> None:
        """Merge options, environment and config file now, so a bad value is a usage error."""
        self.settings = settings_from_options(self, SETTING_NAMES)
        if self.settings["web"].strip().lower() == "none":
            raise usage.UsageError("--web none leaves the display nothing to do")


def makeService(options: Options, reactor=None) -> OrderedServices:
    if reactor is None:
        from twisted.internet import reactor
    settings = getattr(options, "settings", None)
    if settings is None:
        options.postOptions()
        settings = options.settings
    root = OrderedServices()
    database = DatabaseService(reactor, settings["dsn"], Path(settings["data_dir"]), owns_embedded=False)
    database.setServiceParent(root)
    status_url = (settings["collector_status"] or "").strip()
    collector_status = (http_collector_status(reactor, status_url)
                        if status_url and status_url.lower() != "none" else None)
    web = make_web_service(reactor, settings["web"], database, settings["messages"], collector_status,
                           max_stream_clients=settings["max_stream_clients"],
                           max_streams_per_address=settings["max_streams_per_address"],
                           cors_origins=settings["cors_origins"])
    web.display_app.configure_outbound(settings)
    web.display_app.configure_results(settings["results_freshness"], settings["results_memory_mb"])
    web.setServiceParent(root)
    settle_after_start_up()  # its results caches hold hundreds of thousands of objects too
    return root
