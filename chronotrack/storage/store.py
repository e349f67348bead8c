"""The small storage interface the protocol talks to.

The protocol never sees txpostgres: it hands reads and facts about controllers to an
object with these methods. ``chronotrack.storage.pgstore.PostgresReadStore`` is the real one;
unit tests of the protocol use ``tests.memory_store.MemoryReadStore``.

Every method returns a Deferred. ``record_read`` fires once the read is safe (journaled
to disk and queued for the database, or stored); it does not wait for a database that is
down, and it never fails because of one.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.defer import Deferred

from chronotrack.reads import ReadSource, TagRead


class ReadStore(Protocol):
    def record_read(self, read: TagRead, source: ReadSource) -> Deferred[None]:
        """Keep one read (gun times included). Re-sent reads are stored once."""

    def record_rejected_line(self, line: str, reason: str, source: ReadSource) -> Deferred[None]:
        """Keep a line that could not be parsed, with why, so nothing is silently lost."""

    def record_event_info(self, event_name: str, event_id: str, description: str,
                          source: ReadSource) -> Deferred[None]:
        """The controller's event (from ``geteventinfo``): opens that event's session."""

    def record_locations(self, locations: list[str], source: ReadSource) -> Deferred[None]:
        """Locations a controller reported (``getlocations``, ``newlocation``)."""

    def controller_connected(self, peer: str, greeting: str) -> Deferred[int | None]:
        """A controller finished its greeting; returns its connection row id (or None)."""

    def controller_identified(self, connection_row_id: int | None, stream_id: str,
                              event_name: str | None, partner_id: int | None = None,
                              user_id: str | None = None) -> Deferred[None]:
        """The connection's data stream id (after ``getconnectionid``) and its partner are known."""

    def controller_disconnected(self, connection_row_id: int | None, reason: str) -> Deferred[None]:
        """The TCP connection closed, cleanly or not."""

    def resume_points(self, stream_id: str, partner_id: int | None = None) -> Deferred[dict[str, int]]:
        """Highest sequence number safely kept per location of that partner's stream."""
