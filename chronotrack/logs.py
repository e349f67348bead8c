"""Log output for journald and log shippers: one self-contained JSON object per line.

``twistd --logger chronotrack.logs.json_observer chronotrack-collector`` uses it, and so
does ``--log-format json`` (which sets that same twistd option for you). Each line is
``{"time", "level", "namespace", "message", "fields"}`` (plus ``"traceback"`` when the
event carries a failure): the time in ISO 8601 UTC, the rendered message, and the
event's own fields (those not starting with ``log_``), values that JSON cannot hold
given as their ``repr``. Events only ever carry what the code logs: passwords are not
logged, in either format.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import IO, Any

from twisted.logger import FileLogObserver, ILogObserver, formatEvent

LOG_FORMATS = ("text", "json")
JSON_OBSERVER = "chronotrack.logs.json_observer"


def _plain(value: Any) -> Any:
    """``value`` if JSON can hold it as it is, else its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def event_as_json_line(event: dict[str, Any]) -> str:
    """One event as one line of JSON (newline included); never raises."""
    level = event.get("log_level")
    moment = event.get("log_time")
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(moment if moment is not None else 0, timezone.utc).isoformat(),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "message": formatEvent(event),
        "fields": {key: _plain(value) for key, value in event.items()
                   if not key.startswith("log_")},
    }
    failure = event.get("log_failure")
    if failure is not None:
        try:
            record["traceback"] = failure.getTraceback()
        except Exception:  # noqa: BLE001 - a log line must never fail
            record["traceback"] = repr(failure)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def json_file_observer(out: IO[str]) -> ILogObserver:
    return FileLogObserver(out, event_as_json_line)


def json_observer() -> ILogObserver:
    """twistd's ``--logger`` factory: JSON lines to the standard output twistd started with."""
    return json_file_observer(sys.stdout)


def log_format(text: str) -> str:
    chosen = text.strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError("must be " + " or ".join(LOG_FORMATS))
    return chosen
