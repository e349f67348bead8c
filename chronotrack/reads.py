"""The values that travel from a controller's socket to the database and the screen.

Pure data, no I/O: the protocol builds these, the store keeps them, the web layer
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

GUN_TIME_TAG = "guntime"
NEW_LOCATION_TAG = "newlocation"


@dataclass(frozen=True, slots=True, init=False)
class TagRead:
    """One parsed CTP01 tag line, fields numbered as in CTP01.md.

    Frozen like any value here, but built by its own ``__init__``: the one a frozen
    dataclass generates sets each field through ``object.__setattr__``, and one read is
    built per tag line (and again when read back from the journal) at tens of thousands of
    lines a second. Same signature, defaults and fields.
    """

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

    def __init__(self, format_id: str, sequence_number: int, location_name: str, tag_code: str,
                 read_time: str, read_timestamp: datetime, lap_count: int, reader_id: str,
                 gator_number: int, raw_data: str, received_at: datetime | None = None) -> None:
        # Each slot's own descriptor stores the value without the frozen class's __setattr__.
        _set_format_id(self, format_id)
        _set_sequence_number(self, sequence_number)
        _set_location_name(self, location_name)
        _set_tag_code(self, tag_code)
        _set_read_time(self, read_time)
        _set_read_timestamp(self, read_timestamp)
        _set_lap_count(self, lap_count)
        _set_reader_id(self, reader_id)
        _set_gator_number(self, gator_number)
        _set_raw_data(self, raw_data)
        _set_received_at(self, received_at)

    @property
    def is_gun_time(self) -> bool:
        return self.tag_code == GUN_TIME_TAG

    @property
    def is_new_location(self) -> bool:
        return self.tag_code == NEW_LOCATION_TAG


(_set_format_id, _set_sequence_number, _set_location_name, _set_tag_code, _set_read_time,
 _set_read_timestamp, _set_lap_count, _set_reader_id, _set_gator_number, _set_raw_data,
 _set_received_at) = (TagRead.__dict__[field.name].__set__ for field in fields(TagRead))


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
