"""Brand colours and fonts from an event website: a stub site with a stylesheet, then the endpoint
over a real port, scoped to the operator's partner and guarded like every other change."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from chronotrack.outbound.brand import brand_from_html, fetch_brand, normalise_color, summarise
from chronotrack.outbound.safe_fetch import PrivateAddress
from chronotrack.outbound.settings import OutboundSettings
from tests.stubs.http_stub import StubServer, fixed
from tests.test_web_partners import CSRF, make_partner
from web.app import DisplayApp
from web.service import WebService

PAGE = b"""<!doctype html><html><head>
<meta name="theme-color" content="#C8102E">
<link rel="stylesheet" href="/css/site.css">
<link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Oswald:wght@700&family=Open+Sans">
<link rel="stylesheet" href="https://cdn.elsewhere.example/tracker.css">
<style>
  :root { --brand-accent: #ffcc00; }
  body { color: #222222; background-color: #fafafa; font-family: "Open Sans", Arial, sans-serif; }
</style></head>
<body><h1 style="color: rgb(0, 87, 184)">Spring 10K</h1></body></html>"""

STYLESHEET = b"""/* the event's own sheet */
:root { --primary-color: #0057b8; --grey: #999999; }
header { background: #0057b8; }
.button { background: #0057b8; color: #ffffff; }
h1, h2 { font-family: 'Oswald', Impact, sans-serif; color: #0057B8; }
.title { font-family: Oswald; }
a { color: rgba(200, 16, 46, 0.9); }
.shadow { color: rgba(10, 200, 10, 0.1); }
"""


@pytest_twisted.async_yield_fixture
async def website():
    site = StubServer().start()
    site.routes["/"] = fixed(200, PAGE)
    site.routes["/css/site.css"] = fixed(200, STYLESHEET, "text/css")
    site.routes["/logo.png"] = fixed(200, b"\x89PNG...", "image/png")
    site.routes["/huge"] = fixed(200, b"<html>" + b"x" * (2 * 1024 * 1024), "text/html")
    yield site
    await site.stop()


def test_colours_are_normalised_and_see_through_ones_are_dropped():
    assert normalise_color("#ABC") == "#aabbcc"
    assert normalise_color("rgb(0, 87, 184)") == "#0057b8"
    assert normalise_color("rgba(0 87 184 / 30%)") is None
    assert normalise_color("rgb(300, 0, 0)") is None


def test_the_page_alone_ranks_theme_colour_first_and_keeps_neutrals_apart():
    tally, sheets = brand_from_html(PAGE.decode(), "https://race.example.org/")
    brand = summarise(tally, "https://race.example.org/")
    assert brand.colors[0] == "#c8102e"  # theme-color outranks everything
    assert set(brand.colors) == {"#c8102e", "#ffcc00", "#0057b8"}
    assert (brand.text_color, brand.background_color) == ("#222222", "#fafafa")
    assert brand.fonts == ["Open Sans", "Oswald", "Arial"]  # linked and first in body: 5 + 3
    assert sheets == ["https://race.example.org/css/site.css"]  # another site's sheet is not fetched


@pytest_twisted.ensureDeferred
async def test_brand_from_a_stub_site_with_its_stylesheet(website):
    brand = await fetch_brand(reactor, website.url("/"), allow_private=True, timeout=5)
    # theme colour 20 + the sheet's blue (8 custom property + 4 uses + 1 inline) + yellow (8 custom)
    assert brand.colors == ["#c8102e", "#0057b8", "#ffcc00"]
    assert "#999999" not in brand.colors and "#ffffff" not in brand.colors
    assert brand.fonts == ["Oswald", "Open Sans", "Arial", "Impact"]  # the sheet uses Oswald twice more
    assert brand.url == website.url("/")
    assert [r.path for r in website.requests] == ["/", "/css/site.css"]


@pytest_twisted.ensureDeferred
async def test_brand_fetch_refuses_a_local_site_by_default(website):
    with pytest.raises(PrivateAddress):
        await fetch_brand(reactor, website.url("/"), timeout=5)
    assert website.requests == []


# The endpoint, over a real port


@pytest_twisted.async_yield_fixture
async def hub(pg_dsn, database):
    acme, zeta = make_partner(pg_dsn, "acme", ["101"]), make_partner(pg_dsn, "zeta", ["901"])
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port.getHost().port}", display=display, acme=acme, zeta=zeta)
    await service.stopService()


async def post_brand(hub, event_id, payload, csrf=CSRF, cookies=None):
    headers = {"Content-Type": "application/json"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    response = await treq.post(f"{hub.url}/api/events/{event_id}/brand-from-url", data=json.dumps(payload).encode(),
                               headers=headers, cookies=cookies if cookies is not None else hub.acme.cookies)
    return response.code, await response.json()


@pytest_twisted.ensureDeferred
async def test_the_endpoint_returns_the_brand_of_the_site(hub, website):
    hub.display.outbound_settings = OutboundSettings(brand_allow_private=True, timeout=5)
    code, body = await post_brand(hub, hub.acme.event, {"url": website.url("/")})
    assert code == 200, body
    assert body["success"] is True
    assert body["colors"][:2] == ["#c8102e", "#0057b8"]
    assert body["fonts"][0] == "Oswald"
    assert body["url"] == website.url("/")


@pytest_twisted.ensureDeferred
async def test_the_endpoint_refuses_a_private_address_with_422(hub, website):
    code, body = await post_brand(hub, hub.acme.event, {"url": website.url("/")})
    assert code == 422 and body["success"] is False
    assert "private or local" in body["error"]
    assert website.requests == []


@pytest.mark.parametrize("url", ["ftp://example.org/", "not a url", "", "http://user:pw@example.org/"])
@pytest_twisted.ensureDeferred
async def test_the_endpoint_answers_400_naming_url_for_a_bad_url(hub, url):
    code, body = await post_brand(hub, hub.acme.event, {"url": url})
    assert code == 400 and body["parameter"] == "url"


@pytest.mark.parametrize("path, fragment", [("/logo.png", "not a web page"), ("/missing", "HTTP 404"),
                                            ("/huge", "larger than")])
@pytest_twisted.ensureDeferred
async def test_unusable_answers_are_422_with_a_reason(hub, website, path, fragment):
    hub.display.outbound_settings = OutboundSettings(brand_allow_private=True, timeout=5)
    code, body = await post_brand(hub, hub.acme.event, {"url": website.url(path)})
    assert code == 422 and fragment in body["error"]


@pytest_twisted.ensureDeferred
async def test_a_slow_site_is_a_422_timeout(hub, website):
    website.routes["/slow"] = lambda request: None
    hub.display.outbound_settings = OutboundSettings(brand_allow_private=True, timeout=0.5)
    code, body = await post_brand(hub, hub.acme.event, {"url": website.url("/slow")})
    assert code == 422 and "0.5 seconds" in body["error"]


@pytest_twisted.ensureDeferred
async def test_another_partners_event_is_404_and_nothing_is_fetched(hub, website):
    hub.display.outbound_settings = OutboundSettings(brand_allow_private=True, timeout=5)
    code, _ = await post_brand(hub, hub.zeta.event, {"url": website.url("/")})
    assert code == 404
    assert website.requests == []


@pytest_twisted.ensureDeferred
async def test_without_the_csrf_header_or_signed_out_nothing_is_fetched(hub, website):
    hub.display.outbound_settings = OutboundSettings(brand_allow_private=True, timeout=5)
    code, _ = await post_brand(hub, hub.acme.event, {"url": website.url("/")}, csrf=None)
    assert code == 403
    code, _ = await post_brand(hub, hub.acme.event, {"url": website.url("/")}, csrf="wrong" * 8)
    assert code == 403
    code, _ = await post_brand(hub, hub.acme.event, {"url": website.url("/")}, cookies={})
    assert code == 401
    response = await treq.post(f"{hub.url}/api/events/{hub.acme.event}/brand-from-url",
                               data=json.dumps({"url": website.url("/")}).encode(),
                               headers={"Content-Type": "application/json", **hub.acme.bearer})
    assert response.code == 403  # an API token reads, it does not make the hub fetch things
    assert website.requests == []


@pytest_twisted.ensureDeferred
async def test_a_stylesheet_over_its_size_limit_is_skipped_and_the_page_still_counts(website):
    website.routes["/css/site.css"] = fixed(200, b":root{--primary:#00ff00}" + b" " * (600 * 1024), "text/css")
    brand = await fetch_brand(reactor, website.url("/"), allow_private=True, timeout=5)
    assert "#00ff00" not in brand.colors
    assert brand.colors[0] == "#c8102e"  # the page's own theme colour
