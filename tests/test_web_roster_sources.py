"""/roster/sources over a real port: an operator pulls a roster from a stub platform, follows
its progress on GET /api/roster-imports/<id>, and may remember credentials (sealed, never in
plain text). Another partner's event and import are not found; forms need the CSRF token."""

from __future__ import annotations

from types import SimpleNamespace

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from chronotrack.outbound.settings import OutboundSettings
from tests.postgres import query
from tests.stubs.registration_platforms import (RUNSIGNUP_KEY, RUNSIGNUP_SECRET, RunSignUpStub, make_runners)
from tests.test_web_partners import CSRF, make_partner
from twisted.internet import task
from web.app import DisplayApp
from web.service import WebService


@pytest_twisted.async_yield_fixture
async def hub(pg_dsn, database, tmp_path):
    acme, zeta = make_partner(pg_dsn, "acme", ["101"]), make_partner(pg_dsn, "zeta", ["901"])
    platform = RunSignUpStub(make_runners(23)).install()
    platform.server.start()
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    display.outbound_settings = OutboundSettings(runsignup_url=platform.server.base, timeout=5,
                                                 secret_key_file=tmp_path / "secret.key")
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port.getHost().port}", display=display, acme=acme, zeta=zeta,
                          platform=platform, dsn=pg_dsn)
    await service.stopService()
    await platform.server.stop()


async def start_pull(hub, event_id, **fields):
    data = {"csrf_token": CSRF, "event": str(event_id), "race_id": RunSignUpStub.race_id,
            "event_id": RunSignUpStub.event_id, "api_key": RUNSIGNUP_KEY, "api_secret": RUNSIGNUP_SECRET, **fields}
    return await treq.post(f"{hub.url}/roster/sources/runsignup", data=data, cookies=hub.acme.cookies,
                           allow_redirects=False)


async def import_json(hub, import_id, cookies=None):
    response = await treq.get(f"{hub.url}/api/roster-imports/{import_id}",
                              cookies=cookies if cookies is not None else hub.acme.cookies)
    return response.code, await response.json()


async def until_finished(hub, import_id: int, tries: int = 400) -> None:
    for _ in range(tries):
        _, body = await import_json(hub, import_id)
        if body["import"]["status"] != "running":
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("the pull did not finish")


def import_id_of(response) -> int:
    location = response.headers.getRawHeaders(b"location")[0].decode()
    return int(location.split("import=")[1].split("#")[0])


@pytest_twisted.ensureDeferred
async def test_the_page_shows_one_form_per_platform_with_the_csrf_token(hub):
    response = await treq.get(f"{hub.url}/roster/sources?event={hub.acme.event}", cookies=hub.acme.cookies)
    html = (await response.content()).decode()
    assert response.code == 200
    for action in ("/roster/sources/runsignup", "/roster/sources/race_roster", "/roster/sources/chronotrack_live"):
        assert f'action="{action}"' in html
    assert html.count(f'value="{CSRF}"') >= 3
    assert "<script>" not in html and "style=" not in html


@pytest_twisted.ensureDeferred
async def test_a_pull_runs_to_completion_and_its_progress_is_served_as_json(hub):
    response = await start_pull(hub, hub.acme.event)
    assert response.code == 303
    import_id = import_id_of(response)

    await until_finished(hub, import_id)
    code, body = await import_json(hub, import_id)
    assert code == 200 and body["import"]["status"] == "done"
    assert body["import"]["rows_done"] == 23 and body["import"]["event_id"] == hub.acme.event
    count = query(hub.dsn, "SELECT count(*) FROM participants WHERE timing_event_id = %s", (hub.acme.event,))[0][0]
    assert count == 23  # bib 101 was there already: updated, not doubled
    assert query(hub.dsn, "SELECT first_name FROM participants WHERE timing_event_id = %s AND bib = '101'",
                 (hub.acme.event,)) == [("First1",)]


@pytest_twisted.ensureDeferred
async def test_another_partners_import_and_event_are_not_found(hub):
    response = await start_pull(hub, hub.acme.event)
    import_id = import_id_of(response)
    code, _ = await import_json(hub, import_id, cookies=hub.zeta.cookies)
    assert code == 404
    response = await start_pull(hub, hub.zeta.event)
    assert response.code == 404
    assert query(hub.dsn, "SELECT count(*) FROM roster_imports WHERE timing_event_id = %s", (hub.zeta.event,))[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_a_form_without_the_csrf_token_starts_nothing(hub):
    response = await start_pull(hub, hub.acme.event, csrf_token="wrong" * 8)
    assert response.code == 403
    assert query(hub.dsn, "SELECT count(*) FROM roster_imports")[0][0] == 0
    assert hub.platform.server.requests == []


@pytest_twisted.ensureDeferred
async def test_bad_fields_are_a_readable_400(hub):
    response = await start_pull(hub, hub.acme.event, race_id="../../etc")
    assert response.code == 400 and "Race id" in (await response.content()).decode()
    response = await start_pull(hub, hub.acme.event, api_key="", api_secret="")
    assert response.code == 400 and "enter the RunSignUp credentials" in (await response.content()).decode()


@pytest_twisted.ensureDeferred
async def test_remembered_credentials_are_sealed_and_used_when_the_fields_are_left_empty(hub):
    response = await start_pull(hub, hub.acme.event, remember="on")
    assert response.code == 303
    sealed = query(hub.dsn, "SELECT sealed FROM roster_source_credentials")
    assert len(sealed) == 1
    assert RUNSIGNUP_KEY not in sealed[0][0] and RUNSIGNUP_SECRET not in sealed[0][0]
    response = await start_pull(hub, hub.acme.event, api_key="", api_secret="")
    assert response.code == 303
    import_id = import_id_of(response)

    await until_finished(hub, import_id)
    _, body = await import_json(hub, import_id)
    assert body["import"]["status"] == "done"
    assert hub.platform.server.requests[-1].args["api_secret"] == [RUNSIGNUP_SECRET]
    response = await treq.post(f"{hub.url}/roster/sources/runsignup/forget", cookies=hub.acme.cookies,
                               data={"csrf_token": CSRF, "event": str(hub.acme.event)}, allow_redirects=False)
    assert response.code == 303
    assert query(hub.dsn, "SELECT count(*) FROM roster_source_credentials")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_an_api_token_cannot_open_the_page_or_start_a_pull(hub):
    response = await treq.get(f"{hub.url}/roster/sources", headers=hub.acme.bearer)
    assert response.code == 403
