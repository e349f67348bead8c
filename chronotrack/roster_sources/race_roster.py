"""Race Roster: an access token for the timer's account, then an event's participants, page by page.

From Race Roster's public API reference, https://developers.raceroster.com/docs/api/results
("Race Roster API 1.0.0"): base URL ``https://raceroster.com/api/v1``; every call carries
``Authorization: Bearer <token>``; the token comes from a POST with form-URL-encoded body
parameters to the authorization server; 401/403 for bad or insufficient credentials; gender
is an integer code (0 not disclosed, 1 male, 2 female, 8 co-ed, 9 non-binary).

The token request, as public clients of that API make it (a TypeScript and a Python client,
both with credentials from the account's API settings page): ``POST /api/oauth/authorize``
with ``grant_type=access_token``, the API client's ``client_id`` and ``client_secret``, and the
account's ``username`` and ``password`` -> ``{"access_token", "token_type", "expires_in"}``,
either as it is or inside ``"data"`` (an object, or a list of one). A wrong user name or
password is a 400 or a 401.

The participant listing's exact path and paging fields are behind Race Roster's sign-in, so
they are modelled on that API's conventions:

``GET /api/v1/events/{event_id}/participants?page=N&limit=M`` ->
``{"data": [{"registrationId", "bib", "firstName", "lastName", "gender", "age", "city",
"province", "subEventName", "teamName"}], "meta": {"pagination": {"total", "currentPage",
"lastPage"}}}``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from chronotrack.outbound.safe_fetch import SafeFetcher
from chronotrack.roster_sources.base import (BadCredentials, RosterSource, SourceError, SourcePage, SourceRequest,
                                              build_participant, get_json)

PAGE_SIZE = 250
MAX_PAGES = 400
GENDER_CODES = {0: None, 1: "M", 2: "F", 8: "X", 9: "X"}


def _gender(value: Any) -> str | None:
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return GENDER_CODES.get(int(value))
    return value if isinstance(value, str) else None


def _access_token(body: Any) -> str | None:
    """The token of an authorization answer: at its top, or inside ``data`` (an object or a list of one)."""
    if isinstance(body, dict) and "access_token" not in body:
        body = body.get("data")
    if isinstance(body, list):
        body = body[0] if body else None
    token = body.get("access_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


class RaceRoster(RosterSource):
    name = "race_roster"
    label = "Race Roster"
    remote_fields = (("event_id", "Event id"),)
    credential_fields = (("client_id", "API client id"), ("client_secret", "API client secret"),
                         ("username", "Race Roster user name"), ("password", "Race Roster password"))

    page_size = PAGE_SIZE

    async def _token(self, fetcher: SafeFetcher, request: SourceRequest) -> str:
        credentials = request.credentials
        form = {"grant_type": "access_token", "client_id": credentials["client_id"],
                "client_secret": credentials["client_secret"], "username": credentials["username"],
                "password": credentials["password"]}
        body, _headers = await get_json(fetcher, self.label, f"{self.base_url}/api/oauth/authorize", None,
                                        request.secrets(), method="POST", form=form, refusals=(400, 401, 403))
        token = _access_token(body)
        if token is None:
            raise BadCredentials("Race Roster did not issue an access token for those credentials")
        return token

    async def pages(self, fetcher: SafeFetcher, request: SourceRequest) -> AsyncIterator[SourcePage]:
        token = await self._token(fetcher, request)
        secrets = [*request.secrets(), token]
        url = f"{self.base_url}/api/v1/events/{request.remote['event_id']}/participants"
        for page in range(1, MAX_PAGES + 1):
            body, _headers = await get_json(fetcher, self.label, url, {"page": page, "limit": self.page_size},
                                            secrets, headers={"Authorization": f"Bearer {token}"})
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise SourceError("Race Roster sent an answer in an unexpected shape")
            records = [record for record in body["data"] if isinstance(record, dict)]
            pagination = (body.get("meta") or {}).get("pagination") or {}
            result = self._page(records, page)
            total = pagination.get("total")
            result.total = total if isinstance(total, int) else None
            yield result
            last_page = pagination.get("lastPage", pagination.get("total_pages"))
            if isinstance(last_page, int):
                if page >= last_page:
                    return
            elif len(records) < self.page_size:
                return

    def _page(self, records: list[dict], page: int) -> SourcePage:
        result = SourcePage()
        for index, record in enumerate(records, start=1):
            name = f"page {page} registration {record.get('registrationId', index)}"
            participant, problem = build_participant(
                name, record.get("bib"), record.get("firstName"), record.get("lastName"), record.get("age"),
                _gender(record.get("gender")), record.get("city"), record.get("province") or record.get("state"),
                record.get("subEventName") or record.get("division"), record.get("teamName"))
            if problem:
                result.problems.append(problem)
            else:
                result.participants.append(participant)
        return result
