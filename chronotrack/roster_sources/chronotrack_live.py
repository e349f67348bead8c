"""ChronoTrack Live: an event's entries, with the timer's ChronoTrack Live login.

ChronoTrack's API documentation is not public (it is handed to timers with an API client
id). The shape here is modelled on what is known from open-source clients of that API
(e.g. github.com/Romeno/chronotrack, which calls it with ``client_id``, ``user_id`` and
``user_pass``; adapters that page with the ``X-Ctlive-Page-Count``/``X-Ctlive-Row-Count``
headers and send the password as its SHA-1 hex digest; a display client and a sync service's
schema that read each entry's fields):

``GET /api/event/{event_id}/entry?format=json&client_id=..&user_id=..&user_pass=sha1(password)&page=N&size=M``
-> ``{"event_entry": [{"entry_id", "entry_bib", "athlete_first_name", "athlete_last_name",
"athlete_sex", "entry_race_age", "location": {"city", "region", "country"} (one client reads
these as "location_city", "location_region"), "bracket_name", "race_name", "team_name"}]}``;
page count and row count in the ``X-Ctlive-*`` headers. Field names that vary are read from
each spelling seen, and a field that is not a plain value (an object where text was expected)
is never stored as text.

The password never leaves this process in the clear (only its digest is sent) and the URL
that carries it is never logged.
"""

from __future__ import annotations

import hashlib
from typing import Any, AsyncIterator

from chronotrack.outbound.safe_fetch import SafeFetcher
from chronotrack.roster_sources.base import (RosterSource, SourceError, SourcePage, SourceRequest,
                                              build_participant, get_json)

PAGE_SIZE = 250
MAX_PAGES = 400


def _first(record: dict, *names: str) -> Any:
    """The first of ``names`` that holds a plain value (text or a number) in ``record``."""
    for name in names:
        value = record.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
            return value
    return None


def _home(record: dict, part: str, *names: str) -> Any:
    """A part of the entry's home town: from its ``location`` object, else from flat fields."""
    location = record.get("location")
    nested = _first(location, part) if isinstance(location, dict) else None
    return nested if nested is not None else _first(record, f"location_{part}", *names)


def _header_int(headers: Any, name: bytes) -> int | None:
    values = headers.getRawHeaders(name) if headers is not None else None
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


class ChronoTrackLive(RosterSource):
    name = "chronotrack_live"
    label = "ChronoTrack Live"
    remote_fields = (("event_id", "Event id"),)
    credential_fields = (("client_id", "API client id"), ("user_id", "User name"), ("password", "Password"))

    page_size = PAGE_SIZE

    def secrets_sent(self, request: SourceRequest) -> list[str]:
        return [*request.secrets(), self._digest(request)]

    @staticmethod
    def _digest(request: SourceRequest) -> str:
        return hashlib.sha1(request.credentials["password"].encode("utf-8")).hexdigest()

    async def pages(self, fetcher: SafeFetcher, request: SourceRequest) -> AsyncIterator[SourcePage]:
        url = f"{self.base_url}/api/event/{request.remote['event_id']}/entry"
        page_count = None
        for page in range(1, MAX_PAGES + 1):
            params = {"format": "json", "client_id": request.credentials["client_id"],
                      "user_id": request.credentials["user_id"], "user_pass": self._digest(request),
                      "page": page, "size": self.page_size}
            body, headers = await get_json(fetcher, self.label, url, params, self.secrets_sent(request))
            if not isinstance(body, dict) or not isinstance(body.get("event_entry", []), list):
                raise SourceError("ChronoTrack Live sent an answer in an unexpected shape")
            records = [record for record in body.get("event_entry", []) if isinstance(record, dict)]
            page_count = _header_int(headers, b"X-Ctlive-Page-Count") or page_count
            result = self._page(records, page)
            result.total = _header_int(headers, b"X-Ctlive-Row-Count")
            yield result
            if page_count is not None and page >= page_count:
                return
            if page_count is None and len(records) < self.page_size:
                return

    def _page(self, records: list[dict], page: int) -> SourcePage:
        result = SourcePage()
        for index, record in enumerate(records, start=1):
            name = f"page {page} entry {record.get('entry_id', index)}"
            participant, problem = build_participant(
                name, _first(record, "entry_bib", "bib"), _first(record, "athlete_first_name", "first_name"),
                _first(record, "athlete_last_name", "last_name"),
                _first(record, "entry_race_age", "entry_age", "athlete_age", "age"),
                _first(record, "athlete_sex", "entry_sex", "sex", "gender"),
                _home(record, "city", "athlete_home_city", "city"),
                _home(record, "region", "athlete_home_region", "region", "state"),
                _first(record, "bracket_name", "entry_race_name", "division"),
                _first(record, "team_name", "entry_team_name"))
            if problem:
                result.problems.append(problem)
            else:
                result.participants.append(participant)
        return result
