"""``twistd chronotrack-display``: the race display alone, against the timing database.

Operators run collection and display as separate services; this is the display half. New
reads reach it through PostgreSQL NOTIFY, so it needs nothing from the collector but the
database (and, for /status, the collector's status URL).
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import MultiService
from twisted.python import usage

from chronotrack.config import ConfigError, resolve_settings
from chronotrack.db_service import DatabaseService
from web.collector_status import http_collector_status
from web.service import WebService, make_web_service

__all__ = ["Options", "makeService", "make_web_service", "WebService"]

SETTING_NAMES = ("web", "dsn", "data-dir", "messages", "collector-status")


class Options(usage.Options):
    optParameters = [
        ["web", None, None, "Endpoint to serve the display on (default tcp:5000:interface=127.0.0.1)."],
        ["dsn", None, None, "PostgreSQL DSN (default: the embedded server in the data directory)."],
        ["data-dir", None, None, "Data directory of the embedded server (default ./var)."],
        ["config", None, None, "Config file with a [chronotrack] section."],
        ["messages", None, None, "Rotating display messages, separated by '|'."],
        ["collector-status", None, None,
         "Collector status API URL for /status (default http://127.0.0.1:61612/status); 'none' for none."],
    ]

    def postOptions(self) -> None:
        """Merge options, environment and config file now, so a bad value is a usage error."""
        try:
            self.settings = resolve_settings({name: self[name] for name in SETTING_NAMES},
                                             config_path=self["config"], names=SETTING_NAMES)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from error
        if self.settings["web"].strip().lower() == "none":
            raise usage.UsageError("--web none leaves the display nothing to do")


def makeService(options: Options, reactor=None) -> MultiService:
    if reactor is None:
        from twisted.internet import reactor
    settings = getattr(options, "settings", None)
    if settings is None:
        options.postOptions()
        settings = options.settings
    root = MultiService()
    database = DatabaseService(reactor, settings["dsn"], Path(settings["data_dir"]), owns_embedded=False)
    database.setServiceParent(root)
    status_url = (settings["collector_status"] or "").strip()
    collector_status = (http_collector_status(reactor, status_url)
                        if status_url and status_url.lower() != "none" else None)
    make_web_service(reactor, settings["web"], database, settings["messages"], collector_status).setServiceParent(root)
    return root
