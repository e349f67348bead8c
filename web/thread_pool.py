"""Work that would hold the reactor (a big event's scoring, a password hash, an image decode,
a gzip) runs in the reactor's thread pool; with a test clock, which has no pool, in line."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool

_T = TypeVar("_T")


def in_thread_pool(reactor: Any, work: Callable[..., _T], *args: Any) -> Deferred[_T]:
    """``work(*args)`` in ``reactor``'s thread pool, or at once when it has none (a test clock)."""
    pool = getattr(reactor, "getThreadPool", None)
    if pool is None:
        return succeed(work(*args))
    return deferToThreadPool(reactor, pool(), work, *args)
