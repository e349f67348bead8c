"""What every roster source shares: a page of participants, safe errors, JSON over safe_fetch.

Platforms put credentials in query strings (RunSignUp's api_key/api_secret, ChronoTrack
Live's user_pass), so nothing here ever logs or repeats a request URL: errors name the
platform and the HTTP status only, and ``redact`` scrubs any credential a platform echoes
back in an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable, Mapping
from urllib.parse import urlencode

from chronotrack.outbound.safe_fetch import FetchError, SafeFetcher
from web.roster import MAX_AGE, MAX_FIELD_LENGTH, Participant

MAX_PROBLEMS_KEPT = 50


class SourceError(FetchError):
    """The platform refused or failed; the message is safe to show and to store."""


class BadCredentials(SourceError):
    pass


@dataclass
class SourcePage:
    participants: list[Participant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    total: int | None = None  # participants in the whole event, when the platform says


@dataclass(frozen=True)
class SourceRequest:
    """Which remote event to pull, and with which credentials (held in memory only)."""

    remote: Mapping[str, str]
    credentials: Mapping[str, str]

    def secrets(self) -> list[str]:
        return [value for value in self.credentials.values() if value]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "[redacted]")
    return text


def clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def build_participant(record_name: str, bib: Any, first_name: Any = None, last_name: Any = None, age: Any = None,
                      gender: Any = None, city: Any = None, state: Any = None, division: Any = None,
                      team: Any = None) -> tuple[Participant | None, str | None]:
    """The same checks as a CSV line (``web.roster``): a bib, a sensible age, no huge fields."""
    values = {"bib": clean_text(bib), "first_name": clean_text(first_name), "last_name": clean_text(last_name),
              "gender": clean_text(gender), "city": clean_text(city), "state": clean_text(state),
              "division": clean_text(division), "team": clean_text(team)}
    if not values["bib"]:
        return None, f"{record_name}: no bib assigned"
    for name, value in values.items():
        if value is not None and len(value) > MAX_FIELD_LENGTH:
            return None, f"{record_name}: {name} is longer than {MAX_FIELD_LENGTH} characters"
    whole_age = None
    if age not in (None, ""):
        try:
            whole_age = int(str(age).strip())
        except ValueError:
            return None, f"{record_name}: age {str(age)[:20]!r} is not a whole number"
        if not 0 <= whole_age <= MAX_AGE:
            return None, f"{record_name}: age {whole_age} is not between 0 and {MAX_AGE}"
    return Participant(bib=values["bib"], first_name=values["first_name"] or "",
                       last_name=values["last_name"] or "", age=whole_age, gender=values["gender"],
                       city=values["city"], state=values["state"], division=values["division"],
                       team=values["team"]), None


async def get_json(fetcher: SafeFetcher, platform: str, url: str, params: Mapping[str, Any] | None,
                   secrets: Iterable[str], headers: Mapping[str, str] | None = None,
                   method: str = "GET", form: Mapping[str, str] | None = None,
                   refusals: tuple[int, ...] = (401, 403)) -> tuple[Any, Any]:
    """(parsed JSON, response headers); a refusal, an error status or bad JSON is a ``SourceError``.

    ``refusals``: the statuses that mean "wrong credentials" (``BadCredentials``); an OAuth token
    endpoint also answers 400 to a wrong user name or password (``invalid_grant``)."""
    secrets = list(secrets)
    full_url = url + ("?" + urlencode(params) if params else "")
    try:
        result = await fetcher.fetch(full_url, method=method, headers={"Accept": "application/json", **(headers or {})},
                                     data=dict(form) if form is not None else None)
    except SourceError:
        raise
    except FetchError as error:
        raise SourceError(f"{platform}: {redact(str(error), secrets)}") from None
    if result.code in refusals:
        raise BadCredentials(f"{platform} refused the credentials (HTTP {result.code}); check them and try again")
    if result.code == 404:
        raise SourceError(f"{platform} does not know that event (HTTP 404); check the event id")
    if result.code >= 500:
        raise SourceError(f"{platform} had a server error (HTTP {result.code}); try again later")
    if result.code >= 400:
        raise SourceError(f"{platform} refused the request (HTTP {result.code})")
    try:
        return json.loads(result.body.decode("utf-8")), result.headers
    except (UnicodeDecodeError, ValueError):
        raise SourceError(f"{platform} sent an answer that is not valid JSON") from None


class RosterSource:
    """One platform: its form fields and how to page through an event's participants."""

    name: str = ""
    label: str = ""
    remote_fields: tuple[tuple[str, str], ...] = ()  # (field, label) naming the remote event
    credential_fields: tuple[tuple[str, str], ...] = ()  # (field, label); all secret

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def describe(self, request: SourceRequest) -> str:
        return ", ".join(f"{label} {request.remote.get(name, '')}" for name, label in self.remote_fields)

    def pages(self, fetcher: SafeFetcher, request: SourceRequest) -> AsyncIterator[SourcePage]:
        raise NotImplementedError
