"""How the status page learns the collector's state, in either of the two setups.

One process (``twistd chronotrack-collector``, what ``make run`` starts): the web layer lives
beside the collector, so it reads the collector's figures directly; asking its own status API
over HTTP would be a needless round trip through the same reactor.

Two processes (``twistd chronotrack-display --collector-status URL``): the display asks the
collector's status API. The page must render even when the collector is down, so every
failure (refused, timeout, bad JSON) becomes None, which the page shows as "not reachable".

Both give the page the same dictionary: the status API's ``/status`` body.
"""

from __future__ import annotations

from typing import Any, Callable

import treq
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chronotrack.status_api import collector_report

log = Logger()

DEFAULT_COLLECTOR_STATUS_URL = "http://127.0.0.1:61612/status"
TIMEOUT_SECONDS = 3.0

CollectorStatus = Callable[[], Deferred]


def http_collector_status(reactor, url: str = DEFAULT_COLLECTOR_STATUS_URL,
                          timeout: float = TIMEOUT_SECONDS) -> CollectorStatus:
    """A ``collector_status`` callable that GETs the collector's status API with treq."""

    async def fetch() -> dict[str, Any] | None:
        try:
            response = await treq.get(url, timeout=timeout, reactor=reactor, persistent=False)
            if response.code != 200:
                await treq.content(response)
                log.info("collector status {url} answered HTTP {code}", url=url, code=response.code)
                return None
            status = await treq.json_content(response)
        except Exception as error:
            log.debug("collector status {url} not reachable: {error}", url=url, error=repr(error))
            return None
        return status if isinstance(status, dict) else None

    def collector_status() -> Deferred:
        return ensureDeferred(fetch())

    collector_status.url = url  # type: ignore[attr-defined]  # shown on the status page
    return collector_status


def in_process_collector_status(clock: IReactorTime, collector) -> CollectorStatus:
    """A ``collector_status`` callable for the one-process setup: the running CollectorService's
    own report, exactly what its status API would answer, without going through HTTP."""

    def collector_status() -> Deferred:
        return ensureDeferred(collector_report(clock, collector))

    collector_status.url = None  # type: ignore[attr-defined]  # the page says "this process"
    return collector_status
