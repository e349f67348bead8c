"""The values that travel from a controller's socket to the database and the screen.

Pure data, no I/O: the protocol builds these, the store keeps them, the web layer
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

GUN_TIME_TAG = "guntime"
NEW_LOCATION_TAG = "newlocation"


@dataclass(frozen=True, slots=True)
class TagRead:
    """One parsed CTP01 tag line, fields numbered as in CTP01.md."""

    format_id: str  # field 0, e.g. "CT01_33"
    sequence_number: int  # field 1, per location
    location_name: str  # field 2
    tag_code: str  # field 3; equals the bib number
    read_time: str  # field 4, exactly as the controller sent it
    read_timestamp: datetime  # field 4 resolved to an aware timestamp
    lap_count: int  # field 5
    reader_id: str  # field 6
    gator_number: int  # field 7
    raw_data: str  # the whole original line
    received_at: datetime | None = None  # when the collector took it in; set by the store

    @property
    def is_gun_time(self) -> bool:
        return self.tag_code == GUN_TIME_TAG

    @property
    def is_new_location(self) -> bool:
        return self.tag_code == NEW_LOCATION_TAG


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Where a read came from: which controller data stream, over which connection.

    ``stream_id`` names the controller's data stream across reconnects (the id from
    ``getconnectionid``, or a fallback built from event and reader id). Together with
    location and sequence number it identifies a read, so a re-sent read is stored once.
    Partner and event choose the session: each event of each partner has its own.
    """

    stream_id: str
    peer: str  # "host:port" of the TCP connection
    connection_row_id: int | None = None  # controller_connections.id, when known
    partner_id: int | None = None  # timing_partners.id; None is the default partner
    event_id: str | None = None  # from geteventinfo: with the partner, names the event
    event_name: str | None = None
