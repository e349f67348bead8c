"""What to do when asynchronous start-up fails: say why in one line, then stop.

twistd has already returned from ``makeService`` by then, so an exception would only be
logged while the process carried on half-started, listening but unable to keep reads.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger()


def abort_startup(reactor, message: str) -> None:
    log.critical("cannot start: {message}", message=message)
    if reactor.running:
        reactor.stop()
    else:
        reactor.callWhenRunning(reactor.stop)
