"""Race Roster: OAuth2 client credentials, then an event's participants, page by page.

From Race Roster's public API reference, https://developers.raceroster.com/docs/api/results
("Race Roster API 1.0.0"): base URL ``https://raceroster.com/api/v1``; every call carries
``Authorization: Bearer <token>``; the token comes from a POST with form-URL-encoded body
parameters to the authorization server (timers get client credentials from Race Roster);
401/403 for bad or insufficient credentials; gender is an integer code (0 not disclosed,
1 male, 2 female, 8 co-ed, 9 non-binary). The participant listing's exact path and paging
fields are behind Race Roster's sign-in, so they are modelled on that API's conventions:

``POST /oauth/token`` (``grant_type=client_credentials``, ``client_id``, ``client_secret``)
-> ``{"access_token", "token_type": "Bearer", "expires_in"}``;
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


class RaceRoster(RosterSource):
    name = "race_roster"
    label = "Race Roster"
    remote_fields = (("event_id", "Event id"),)
    credential_fields = (("client_id", "OAuth client id"), ("client_secret", "OAuth client secret"))

    page_size = PAGE_SIZE

    async def _token(self, fetcher: SafeFetcher, request: SourceRequest) -> str:
        form = {"grant_type": "client_credentials", "client_id": request.credentials["client_id"],
                "client_secret": request.credentials["client_secret"]}
        body, _headers = await get_json(fetcher, self.label, f"{self.base_url}/oauth/token", None,
                                        request.secrets(), method="POST", form=form)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
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
