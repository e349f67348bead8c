"""Stand-ins for RunSignUp, ChronoTrack Live and Race Roster, answering in their documented shapes.

Each serves the same made-up roster (``RUNNERS``) page by page, checks the credentials it
was given, and can be told to misbehave: ``mode`` "ok", "server_error" (500), "bad_json",
"slow" (never answers) or "fail_on_page_2" (500 on the second page only). Shapes and
sources are in the docstrings of ``chronotrack/roster_sources/*.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from tests.stubs.http_stub import StubServer


@dataclass(frozen=True)
class Runner:
    bib: str | None
    first: str
    last: str
    age: object
    gender: str  # M / F
    city: str
    state: str
    team: str | None


def make_runners(count: int) -> list[Runner]:
    return [Runner(str(100 + n), f"First{n}", f"Last{n}", 20 + n % 50, "MF"[n % 2], f"City{n % 7}", "CO",
                   f"Team{n % 3}" if n % 4 == 0 else None) for n in range(count)]


RUNSIGNUP_KEY, RUNSIGNUP_SECRET = "rsu-key-5f2a9c", "rsu-secret-d41d8cd98f"
CTLIVE_CLIENT, CTLIVE_USER, CTLIVE_PASSWORD = "ctl-client-77", "timer@acme.example", "ctl-Pa55word-xyz"
RR_CLIENT, RR_SECRET, RR_TOKEN = "rr-client-3141", "rr-secret-2718281828", "rr-access-token-abcdef123456"
RR_USER, RR_PASSWORD = "timer@acme.example", "rr-Pa55word-qrs"


@dataclass
class Platform:
    runners: list[Runner]
    mode: str = "ok"
    server: StubServer = field(default_factory=StubServer)

    def _misbehave(self, page: int):
        if self.mode == "server_error" or (self.mode == "fail_on_page_2" and page == 2):
            return 500, {"Content-Type": "text/html"}, b"<h1>Internal Server Error</h1>"
        if self.mode == "bad_json":
            return 200, {"Content-Type": "application/json"}, b'{"participants": [ {"bib_num": '
        if self.mode == "slow":
            return None
        return False

    @staticmethod
    def _json(payload, code: int = 200, headers: dict | None = None):
        return code, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


def _arg(request, name: str, default: str = "") -> str:
    values = request.args.get(name.encode())
    return values[0].decode() if values else default


class RunSignUpStub(Platform):
    """GET /Rest/race/{race}/participants, key and secret in the query string."""

    race_id, event_id = "98765", "4321"

    def install(self) -> "RunSignUpStub":
        self.server.routes[f"/Rest/race/{self.race_id}/participants"] = self.answer
        return self

    def answer(self, request):
        if _arg(request, "api_key") != RUNSIGNUP_KEY or _arg(request, "api_secret") != RUNSIGNUP_SECRET:
            return self._json({"error": {"error_code": 6, "error_msg": "Invalid API key or secret."}})
        if _arg(request, "event_id") != self.event_id:
            return self._json({"error": {"error_code": 201, "error_msg": "Event not found."}})
        page, per_page = int(_arg(request, "page", "1")), int(_arg(request, "results_per_page", "50"))
        misbehaving = self._misbehave(page)
        if misbehaving is not False:
            return misbehaving
        chunk = self.runners[(page - 1) * per_page: page * per_page]
        participants = [{"registration_id": 5000 + i, "bib_num": r.bib, "chip_num": None, "age": r.age,
                         "team_name": r.team, "user": {"user_id": 9000 + i, "first_name": r.first,
                                                       "last_name": r.last, "gender": r.gender,
                                                       "address": {"city": r.city, "state": r.state,
                                                                   "country_code": "US"}}}
                        for i, r in enumerate(chunk)]
        return self._json([{"event": {"event_id": int(self.event_id), "participants": []},
                            "participants": participants}])


class ChronoTrackLiveStub(Platform):
    """GET /api/event/{id}/entry with client_id, user_id and the SHA-1 of the password.

    Entries in the fields public clients of the real API read: the age as ``entry_race_age``,
    the home town as a ``location`` object of ``city``, ``region`` and ``country`` (or, with
    ``flat_location``, as ``location_city``/``location_region``/``location_country``, as one
    client reads them), ``team_name``, ``race_name`` and ``bracket_name``.
    """

    event_id = "24680"
    flat_location = False

    def install(self) -> "ChronoTrackLiveStub":
        self.server.routes[f"/api/event/{self.event_id}/entry"] = self.answer
        return self

    def answer(self, request):
        digest = hashlib.sha1(CTLIVE_PASSWORD.encode()).hexdigest()
        if (_arg(request, "client_id"), _arg(request, "user_id"), _arg(request, "user_pass")) != \
                (CTLIVE_CLIENT, CTLIVE_USER, digest):
            return self._json({"status": "error", "message": "Invalid credentials"}, 401)
        page, size = int(_arg(request, "page", "1")), int(_arg(request, "size", "50"))
        misbehaving = self._misbehave(page)
        if misbehaving is not False:
            return misbehaving
        chunk = self.runners[(page - 1) * size: page * size]
        pages = max(1, -(-len(self.runners) // size))
        entries = [{"entry_id": str(7000 + i), "entry_bib": r.bib, "entry_name": f"{r.first} {r.last}",
                    "entry_status": "confirmed", "athlete_first_name": r.first, "athlete_last_name": r.last,
                    "athlete_sex": r.gender, "entry_race_age": r.age, **self._location(r), "team_name": r.team,
                    "race_name": "Half Marathon", "bracket_name": "Overall"} for i, r in enumerate(chunk)]
        return self._json({"event_entry": entries},
                          headers={"X-Ctlive-Page-Count": str(pages), "X-Ctlive-Row-Count": str(len(self.runners))})

    def _location(self, runner: Runner) -> dict:
        if self.flat_location:
            return {"location_city": runner.city, "location_region": runner.state, "location_country": "US"}
        return {"location": {"city": runner.city, "region": runner.state, "country": "US"}}


class RaceRosterStub(Platform):
    """POST /api/oauth/authorize (grant ``access_token``: the API client's id and secret and the
    account's user name and password), then GET /api/v1/events/{id}/participants with the bearer
    token. The token comes inside ``data``, as public clients of the real API unwrap it; a wrong
    client is a 401, a wrong user name or password a 400 (``invalid_grant``)."""

    event_id = "55501"

    def install(self) -> "RaceRosterStub":
        self.server.routes["/api/oauth/authorize"] = self.token
        self.server.routes[f"/api/v1/events/{self.event_id}/participants"] = self.answer
        return self

    def token(self, request):
        if request.method != b"POST" or _arg(request, "grant_type") != "access_token":
            return self._json({"error": "unsupported_grant_type"}, 400)
        if (_arg(request, "client_id"), _arg(request, "client_secret")) != (RR_CLIENT, RR_SECRET):
            return self._json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if (_arg(request, "username"), _arg(request, "password")) != (RR_USER, RR_PASSWORD):
            return self._json({"error": "invalid_grant", "error_description": "The user credentials were incorrect."},
                              400)
        return self._json({"data": {"token_type": "Bearer", "expires_in": 86400, "access_token": RR_TOKEN}})

    def answer(self, request):
        if (request.getHeader(b"Authorization") or b"") != f"Bearer {RR_TOKEN}".encode():
            return self._json({"message": "Forbidden"}, 403)
        page, limit = int(_arg(request, "page", "1")), int(_arg(request, "limit", "50"))
        misbehaving = self._misbehave(page)
        if misbehaving is not False:
            return misbehaving
        chunk = self.runners[(page - 1) * limit: page * limit]
        last_page = max(1, -(-len(self.runners) // limit))
        data = [{"registrationId": 3000 + i, "bib": r.bib, "firstName": r.first, "lastName": r.last,
                 "gender": {"M": 1, "F": 2}[r.gender], "age": r.age, "city": r.city, "province": r.state,
                 "teamName": r.team, "subEventName": "10K"} for i, r in enumerate(chunk)]
        return self._json({"data": data, "meta": {"pagination": {"total": len(self.runners), "currentPage": page,
                                                                 "lastPage": last_page, "perPage": limit}}})
