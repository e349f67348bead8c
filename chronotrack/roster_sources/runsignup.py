"""RunSignUp: ``GET /Rest/race/{race_id}/participants`` with an API key and secret.

Shapes from RunSignUp's public documentation:
- https://runsignup.com/API/race/:race_id/participants/GET (parameters ``event_id``,
  ``format=json``, ``page``, ``results_per_page``, ``sort``, ``api_key``/``api_secret``; the
  answer's ``participants`` with ``bib_num``, ``age``, ``team_name`` and ``user`` holding
  ``first_name``, ``last_name``, ``gender`` and ``address.city``/``address.state``).
- https://help.runsignup.com/support/solutions/articles/17000065641-downloading-participants-through-the-api
  (``results_per_page`` at most 2500; ask for the next page only while a page comes back
  full; sort by ``registration_id ASC``; in JSON the participants are in the top-level
  ``participants`` field, the event's own list stays empty).
The answer is a list with one such object per event (or the object itself); an error is
``{"error": {"error_code": ..., "error_msg": ...}}``, often with HTTP 200.

The key and secret travel in the query string, as RunSignUp requires: the URL is never
logged or shown (``base.get_json``).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from chronotrack.outbound.safe_fetch import SafeFetcher
from chronotrack.roster_sources.base import (BadCredentials, RosterSource, SourceError, SourcePage, SourceRequest,
                                              build_participant, get_json, redact)

PAGE_SIZE = 250
MAX_PAGES = 400
AUTH_ERROR_CODES = {6, 7, 8, 9, 11}  # RunSignUp's "invalid API key / secret / not authorised" family


class RunSignUp(RosterSource):
    name = "runsignup"
    label = "RunSignUp"
    remote_fields = (("race_id", "Race id"), ("event_id", "Event id"))
    credential_fields = (("api_key", "API key"), ("api_secret", "API secret"))

    page_size = PAGE_SIZE

    async def pages(self, fetcher: SafeFetcher, request: SourceRequest) -> AsyncIterator[SourcePage]:
        race_id, event_id = request.remote["race_id"], request.remote["event_id"]
        url = f"{self.base_url}/Rest/race/{race_id}/participants"
        for page in range(1, MAX_PAGES + 1):
            params = {"format": "json", "event_id": event_id, "page": page, "results_per_page": self.page_size,
                      "sort": "registration_id ASC", "api_key": request.credentials["api_key"],
                      "api_secret": request.credentials["api_secret"]}
            body, _headers = await get_json(fetcher, self.label, url, params, request.secrets())
            records = self._participants(body, request)
            yield self._page(records, page)
            if len(records) < self.page_size:
                return

    def _participants(self, body: Any, request: SourceRequest) -> list[dict]:
        if isinstance(body, dict) and "error" in body:
            error = body["error"] if isinstance(body["error"], dict) else {"error_msg": str(body["error"])}
            message = redact(str(error.get("error_msg") or "unknown error")[:200], request.secrets())
            code = error.get("error_code")
            if code in AUTH_ERROR_CODES or "api key" in message.lower() or "secret" in message.lower():
                raise BadCredentials(f"RunSignUp refused the credentials: {message}")
            raise SourceError(f"RunSignUp refused the request: {message}")
        groups = body if isinstance(body, list) else [body]
        records: list[dict] = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("participants", []), list):
                raise SourceError("RunSignUp sent an answer in an unexpected shape")
            records.extend(record for record in group.get("participants", []) if isinstance(record, dict))
        return records

    def _page(self, records: list[dict], page: int) -> SourcePage:
        result = SourcePage()
        for index, record in enumerate(records, start=1):
            user = record.get("user") if isinstance(record.get("user"), dict) else {}
            address = user.get("address") if isinstance(user.get("address"), dict) else {}
            name = f"page {page} registration {record.get('registration_id', index)}"
            participant, problem = build_participant(
                name, record.get("bib_num"), user.get("first_name"), user.get("last_name"), record.get("age"),
                user.get("gender"), address.get("city"), address.get("state"), record.get("division"),
                record.get("team_name"))
            if problem:
                result.problems.append(problem)
            else:
                result.participants.append(participant)
        return result
