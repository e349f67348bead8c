"""An in-memory ReadStore for unit tests of the protocol: records every call.

It keeps reads idempotently by (stream id, location, sequence number) like the real
store, derives resume points from what it kept plus any configured ones, and can be told
to fail or raise from any method, or to hold ``resume_points`` answers back.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from chronotrack.reads import ReadSource, TagRead

PREFIX_SUFFIX = "/reader:*"


class StoreFailure(Exception):
    """The error a MemoryReadStore produces when told to fail."""


class MemoryReadStore:
    def __init__(self, resume: dict[str, dict[str, int]] | None = None) -> None:
        self.configured_resume_points: dict[str, dict[str, int]] = dict(resume or {})
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.reads: list[tuple[TagRead, ReadSource]] = []
        self.duplicate_reads = 0
        self.rejected: list[tuple[str, str, ReadSource]] = []
        self.event_infos: list[tuple[str, str, str]] = []
        self.locations: list[tuple[list[str], ReadSource]] = []
        self.connected: list[tuple[str, str]] = []
        self.identified: list[tuple[int | None, str, str | None]] = []
        self.identified_partners: list[tuple[int | None, str | None]] = []
        self.disconnected: list[tuple[int | None, str]] = []
        self.resume_queries: list[str] = []
        self.fail_methods: set[str] = set()  # return a failed Deferred
        self.raise_methods: set[str] = set()  # raise synchronously
        self.hold_resume_points = False
        self.held_resume_points: list[tuple[str, Deferred[dict[str, int]]]] = []
        self._next_row_id = 1
        self._keys: set[tuple[int | None, str, str, int]] = set()

    def _enter(self, method: str, *args: Any) -> Deferred[Any] | None:
        self.calls.append((method, args))
        if method in self.raise_methods:
            raise StoreFailure(f"{method} raised on purpose")
        if method in self.fail_methods:
            return defer.fail(StoreFailure(f"{method} failed on purpose"))
        return None

    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def record_read(self, read: TagRead, source: ReadSource) -> Deferred[None]:
        failed = self._enter("record_read", read, source)
        if failed is not None:
            return failed
        key = (source.partner_id, source.stream_id, read.location_name, read.sequence_number)
        if key in self._keys:
            self.duplicate_reads += 1
        else:
            self._keys.add(key)
            self.reads.append((read, source))
        return defer.succeed(None)

    def record_rejected_line(self, line: str, reason: str, source: ReadSource) -> Deferred[None]:
        failed = self._enter("record_rejected_line", line, reason, source)
        if failed is not None:
            return failed
        self.rejected.append((line, reason, source))
        return defer.succeed(None)

    def record_event_info(self, event_name: str, event_id: str, description: str,
                          source: ReadSource) -> Deferred[None]:
        failed = self._enter("record_event_info", event_name, event_id, description, source)
        if failed is not None:
            return failed
        self.event_infos.append((event_name, event_id, description))
        return defer.succeed(None)

    def record_locations(self, locations: list[str], source: ReadSource) -> Deferred[None]:
        failed = self._enter("record_locations", locations, source)
        if failed is not None:
            return failed
        self.locations.append((list(locations), source))
        return defer.succeed(None)

    def controller_connected(self, peer: str, greeting: str) -> Deferred[int | None]:
        failed = self._enter("controller_connected", peer, greeting)
        if failed is not None:
            return failed
        self.connected.append((peer, greeting))
        row_id = self._next_row_id
        self._next_row_id += 1
        return defer.succeed(row_id)

    def controller_identified(self, connection_row_id: int | None, stream_id: str,
                              event_name: str | None, partner_id: int | None = None,
                              user_id: str | None = None) -> Deferred[None]:
        failed = self._enter("controller_identified", connection_row_id, stream_id, event_name)
        if failed is not None:
            return failed
        self.identified.append((connection_row_id, stream_id, event_name))
        self.identified_partners.append((partner_id, user_id))
        return defer.succeed(None)

    def controller_disconnected(self, connection_row_id: int | None, reason: str) -> Deferred[None]:
        failed = self._enter("controller_disconnected", connection_row_id, reason)
        if failed is not None:
            return failed
        self.disconnected.append((connection_row_id, reason))
        return defer.succeed(None)

    def resume_points(self, stream_id: str, partner_id: int | None = None) -> Deferred[dict[str, int]]:
        failed = self._enter("resume_points", stream_id)
        if failed is not None:
            return failed
        self.resume_queries.append(stream_id)
        points = self.compute_resume_points(stream_id, partner_id)
        if self.hold_resume_points:
            held: Deferred[dict[str, int]] = Deferred()
            self.held_resume_points.append((stream_id, held))
            return held
        return defer.succeed(points)

    def compute_resume_points(self, stream_id: str, partner_id: int | None = None) -> dict[str, int]:
        """Per location, the configured point or the end of the unbroken run of the partner's kept reads.

        Like the real store, a gap or a jump in the kept numbers does not move the point past it.
        """
        points: dict[str, int] = {}
        for key, values in self.configured_resume_points.items():
            if _matches(stream_id, key):
                for location, sequence in values.items():
                    points[location] = max(sequence, points.get(location, 0))
        kept: dict[str, set[int]] = {}
        for read, source in self.reads:
            if source.partner_id == partner_id and _matches(stream_id, source.stream_id):
                kept.setdefault(read.location_name, set()).add(read.sequence_number)
        for location, numbers in kept.items():
            through = points.get(location, 0)
            while through + 1 in numbers:
                through += 1
            if through:
                points[location] = through
        return points


def _matches(query: str, key: str) -> bool:
    if query.endswith(PREFIX_SUFFIX):
        return key.startswith(query[: -len("*")])
    return key == query
