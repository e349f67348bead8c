"""PostgreSQL array literals (``{"a","b"}``) built in Python, one string per column.

Handing psycopg2 a list makes it quote every element into an ``ARRAY[...]`` expression
(a cast per timestamp), which cost more of the collector's time than anything else at
full speed, and the server then parses all those casts. One array literal per column is
quoted once and parsed by PostgreSQL's array input function: send it as ``%s::text[]``,
``%s::int[]`` and so on. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


def text_array(values: Iterable[str | None]) -> str:
    """Every element double-quoted, backslash and double quote escaped; None is NULL.

    The usual column (strings, none holding a quote or a backslash) is joined in one go;
    anything else is quoted element by element.
    """
    values = list(values)
    try:
        joined = "".join(values)  # TypeError for None or anything else that is not a str
    except TypeError:
        return _quoted_each(values)
    if '"' in joined or "\\" in joined:
        return _quoted_each(values)
    return '{"' + '","'.join(values) + '"}' if values else "{}"


def _quoted_each(values: list[str | None]) -> str:
    return "{" + ",".join(
        "NULL" if value is None
        else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for value in values
    ) + "}"


_ONLY_INT = frozenset((int,))


def int_array(values: Iterable[int | None]) -> str:
    """Integers as written by ``int.__str__`` (bools refused); None is NULL."""
    values = list(values)
    if set(map(type, values)) <= _ONLY_INT:  # the usual column: every element exactly an int
        return "{" + ",".join(map(str, values)) + "}"
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif type(value) is int:
            parts.append(str(value))
        else:
            raise TypeError(f"not an integer: {value!r}")
    return "{" + ",".join(parts) + "}"


_ZONES_WITH_AN_OFFSET = (timezone, ZoneInfo)  # their utcoffset() is never None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def micros_array(values: Iterable[datetime | None]) -> str:
    """Aware datetimes as whole microseconds since the epoch, for ``bigint[]`` (turned back into
    instants by the schema's ``timestamp_from_micros``, exactly); None is NULL.

    PostgreSQL reads a number for a fraction of what an ISO 8601 timestamp costs it. A naive
    datetime is refused (it names no instant); asking the usual zones for the offset of every
    value just to find that out was a cost per read.
    """
    parts = []
    last: datetime | None = None
    last_text = ""
    for value in values:
        if value is last:  # reads of one chunk share their arrival time
            parts.append(last_text)
            continue
        if value is None:
            parts.append("NULL")
            continue
        zone = value.tzinfo
        if zone is None or (type(zone) not in _ZONES_WITH_AN_OFFSET and value.utcoffset() is None):
            raise ValueError(f"naive datetime names no instant: {value!r}")
        last, last_text = value, str((value - _EPOCH) // _MICROSECOND)
        parts.append(last_text)
    return "{" + ",".join(parts) + "}"
