"""The layouts and images JSON API over a real port, through the real Site (HubSite, so the body
limits and security headers are the product's), against a real PostgreSQL. Two partners,
each with an operator session and an API token: each one reads and changes only its own."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from PIL import Image
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from tests import rows
from tests.postgres import query
from tests.test_web_access import PASSWORD
from web.app import DisplayApp
from web.service import WebService

CSRF = "csrf-token-for-tests-0123456789"


@dataclass
class Partner:
    slug: str
    event: int
    cookie: str
    token: str

    def cookies(self) -> dict[str, str]:
        return {"chronotrack_session": self.cookie}

    def changing(self) -> dict:
        """What a signed-in browser's script sends with a change."""
        return {"cookies": self.cookies(), "headers": {"X-CSRF-Token": CSRF}}


def make_partner(dsn: str, slug: str) -> Partner:
    rows.insert_partner(dsn, slug)
    operator = rows.insert_operator(dsn, f"ops@{slug}.example", PASSWORD, partner=slug)
    session = rows.insert_session(dsn, f"{slug} race day", f"{slug.title()} 10K", partner=slug)
    return Partner(slug, rows.event_of_session(dsn, session), rows.insert_web_session(dsn, operator, CSRF),
                   rows.insert_api_token(dsn, slug))


@pytest.fixture
def partners(pg_dsn, database) -> tuple[Partner, Partner]:
    return make_partner(pg_dsn, "acme"), make_partner(pg_dsn, "zeta")


@pytest_twisted.async_yield_fixture
async def base(database, partners):
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}"
    await service.stopService()


async def call(method: str, url: str, **kwargs):
    response = await treq.request(method, url, persistent=False, **kwargs)
    body = await response.content()
    return response, body


async def call_json(method: str, url: str, **kwargs):
    response, body = await call(method, url, **kwargs)
    return response.code, json.loads(body)


def picture(format_name: str = "PNG", size=(120, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format_name)
    return out.getvalue()


def upload_body(data: bytes, file_name: str = "logo.png", content_type: str = "image/png",
                csrf: str | None = CSRF) -> tuple[bytes, dict]:
    boundary = "designerboundary"
    parts = []
    if csrf is not None:
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n".encode())
    parts.append((f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{file_name}\"\r\n"
                  f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {b"Content-Type": [f"multipart/form-data; boundary={boundary}".encode()]}


async def upload(base: str, partner: Partner, data: bytes, event: int | None = None, **options):
    body, headers = upload_body(data, **options)
    return await call("POST", f"{base}/api/events/{event or partner.event}/images", data=body, headers=headers,
                      cookies=partner.cookies())


def a_layout(image_id: int | None = None) -> dict:
    fields = [{"kind": "name", "x": 10, "y": 20, "w": 60, "h": 20, "size": 10, "weight": 700, "color": "#ffffff",
               "align": "left"},
              {"kind": "time", "x": 60, "y": 70, "w": 35, "h": 20, "size": 8, "weight": 400, "color": "#facc15",
               "align": "right"}]
    if image_id is not None:
        fields.append({"kind": "image", "x": 80, "y": 2, "w": 18, "h": 18, "image_id": image_id})
    return {"version": 1, "aspect": "16:9", "background": {"color": "#102030", "image_id": None}, "font": "serif",
            "fields": fields}


# Images


@pytest_twisted.ensureDeferred
async def test_a_valid_png_is_re_encoded_stored_and_served_with_its_type(base, partners, pg_dsn):
    acme, _ = partners
    original = picture("PNG") + b"appended bytes that are not part of the picture"
    response, body = await upload(base, acme, original, file_name="../race logo.png")
    assert response.code == 200, body
    image = json.loads(body)["image"]
    assert (image["name"], image["width"], image["height"], image["content_type"]) == \
        ("race logo.png", 120, 60, "image/png")
    assert image["url"].startswith("/images/") and image["url"].endswith(".png")

    served, data = await call("GET", base + image["url"])
    assert served.code == 200
    assert served.headers.getRawHeaders("content-type") == ["image/png"]
    assert served.headers.getRawHeaders("x-content-type-options") == ["nosniff"]
    assert "immutable" in served.headers.getRawHeaders("cache-control")[0]
    assert hashlib.sha256(data).hexdigest() == image["url"][len("/images/"):-len(".png")]
    assert data != original and b"appended bytes" not in data
    assert Image.open(io.BytesIO(data)).size == (120, 60)
    stored = query(pg_dsn, "SELECT timing_event_id, byte_size FROM event_images WHERE id = %s", (image["id"],))
    assert stored == [(acme.event, len(data))]

    code, listing = await call_json("GET", f"{base}/api/events/{acme.event}/images", cookies=acme.cookies())
    assert code == 200 and listing == {"success": True, "images": [image]}
    # The same picture again is the same image, not a second row.
    response, body = await upload(base, acme, original)
    assert json.loads(body)["image"]["id"] == image["id"]


@pytest_twisted.ensureDeferred
async def test_a_jpeg_is_served_as_a_jpeg_and_the_wrong_extension_is_not_found(base, partners):
    acme, _ = partners
    response, body = await upload(base, acme, picture("JPEG"), file_name="photo.png", content_type="image/png")
    image = json.loads(body)["image"]
    assert image["content_type"] == "image/jpeg" and image["url"].endswith(".jpg")
    served, _ = await call("GET", base + image["url"])
    assert served.headers.getRawHeaders("content-type") == ["image/jpeg"]
    wrong, _ = await call("GET", base + image["url"][:-4] + ".png")
    assert wrong.code == 404
    for bad in ("/images/../etc/passwd", "/images/" + "a" * 64 + ".svg", "/images/nothing.png"):
        missing, _ = await call("GET", base + bad)
        assert missing.code == 404


@pytest_twisted.ensureDeferred
async def test_another_type_renamed_to_png_is_refused(base, partners, pg_dsn):
    acme, _ = partners
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'></svg>"
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    for data in (svg, gif.getvalue(), b"just text"):
        response, body = await upload(base, acme, data, file_name="logo.png", content_type="image/png")
        answer = json.loads(body)
        assert response.code == 400, body
        assert answer["parameter"] == "image" and "PNG, JPEG or WebP" in answer["error"]
    assert query(pg_dsn, "SELECT count(*) FROM event_images")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_too_big_is_refused_with_413(base, partners, pg_dsn):
    acme, _ = partners
    # Past the body limit: HubRequest answers before the route runs.
    response, body = await upload(base, acme, b"\x89PNG" + b"\x00" * (3 * 1024 * 1024))
    assert response.code == 413 and json.loads(body)["success"] is False
    # Within the body's envelope but over the 2 MB an image may be: the route refuses it.
    response, body = await upload(base, acme, b"\x89PNG" + b"\x00" * (2 * 1024 * 1024 + 1000))
    assert response.code == 413 and json.loads(body)["parameter"] == "image"
    assert query(pg_dsn, "SELECT count(*) FROM event_images")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_oversize_dimensions_are_refused(base, partners):
    acme, _ = partners
    response, body = await upload(base, acme, picture("PNG", size=(4097, 8)))
    assert response.code == 400 and "4096" in json.loads(body)["error"]


@pytest_twisted.ensureDeferred
async def test_an_upload_needs_the_csrf_token_and_a_signed_in_operator(base, partners, pg_dsn):
    acme, _ = partners
    response, _ = await upload(base, acme, picture(), csrf=None)
    assert response.code == 403
    response, _ = await upload(base, acme, picture(), csrf="wrong-token-wrong-token-wrong")
    assert response.code == 403
    body, headers = upload_body(picture())
    response, _ = await call("POST", f"{base}/api/events/{acme.event}/images", data=body,
                             headers={**headers, b"Authorization": [f"Bearer {acme.token}".encode()]})
    assert response.code == 403  # an API token reads, it does not change things
    response, _ = await call("POST", f"{base}/api/events/{acme.event}/images", data=body, headers=headers)
    assert response.code == 401
    assert query(pg_dsn, "SELECT count(*) FROM event_images")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_another_partner_can_neither_list_nor_upload_to_my_event(base, partners, pg_dsn):
    acme, zeta = partners
    await upload(base, acme, picture())
    code, answer = await call_json("GET", f"{base}/api/events/{acme.event}/images", cookies=zeta.cookies())
    assert code == 404 and answer["success"] is False
    code, _ = await call_json("GET", f"{base}/api/events/{acme.event}/images",
                              headers={"Authorization": f"Bearer {zeta.token}"})
    assert code == 404
    response, _ = await upload(base, zeta, picture("PNG", size=(5, 5)), event=acme.event)
    assert response.code == 404
    assert query(pg_dsn, "SELECT count(*) FROM event_images WHERE timing_partner_id = "
                         "(SELECT id FROM timing_partners WHERE slug = 'zeta')")[0][0] == 0
    code, mine = await call_json("GET", f"{base}/api/events/{acme.event}/images",
                                 headers={"Authorization": f"Bearer {acme.token}"})
    assert code == 200 and len(mine["images"]) == 1


# Layouts


@pytest_twisted.ensureDeferred
async def test_layouts_are_created_listed_read_updated_and_deleted(base, partners):
    acme, _ = partners
    _, body = await upload(base, acme, picture())
    image = json.loads(body)["image"]
    layouts_url = f"{base}/api/events/{acme.event}/layouts"
    code, created = await call_json("POST", layouts_url, json={"name": "Finish", "layout": a_layout(image["id"])},
                                    **acme.changing())
    assert code == 201, created
    stored = created["layout"]
    assert (stored["name"], stored["event_id"]) == ("Finish", acme.event)
    assert stored["layout"]["fields"][0]["x"] == 10 and stored["layout"]["font"] == "serif"
    assert stored["layout"]["images"] == {str(image["id"]): image["url"]}

    code, listing = await call_json("GET", layouts_url, headers={"Authorization": f"Bearer {acme.token}"})
    assert code == 200 and [item["id"] for item in listing["layouts"]] == [stored["id"]]
    code, read = await call_json("GET", f"{base}/api/layouts/{stored['id']}",
                                 headers={"Authorization": f"Bearer {acme.token}"})
    assert code == 200
    assert {key: read["layout"][key] for key in ("id", "name", "event_id")} == \
        {"id": stored["id"], "name": "Finish", "event_id": acme.event}
    assert read["layout"]["layout"] == stored["layout"]

    moved = a_layout(image["id"])
    moved["fields"][0]["x"] = 25
    code, updated = await call_json("PUT", f"{base}/api/layouts/{stored['id']}",
                                    json={"name": "Finish line", "layout": moved,
                                          "updated_at": stored["updated_at"]}, **acme.changing())
    assert code == 200, updated
    assert updated["layout"]["layout"]["fields"][0]["x"] == 25 and updated["layout"]["name"] == "Finish line"
    assert updated["layout"]["updated_at"] > stored["updated_at"]

    # A save starting from the old version would undo that one: 409, unless it says overwrite.
    code, conflict = await call_json("PUT", f"{base}/api/layouts/{stored['id']}",
                                     json={"name": "Finish line", "layout": a_layout(),
                                           "updated_at": stored["updated_at"]}, **acme.changing())
    assert code == 409 and conflict["current"]["updated_at"] == updated["layout"]["updated_at"]
    code, forced = await call_json("PUT", f"{base}/api/layouts/{stored['id']}",
                                   json={"name": "Finish line", "layout": a_layout(), "overwrite": True},
                                   **acme.changing())
    assert code == 200 and len(forced["layout"]["layout"]["fields"]) == 2

    # A second layout of the same name: 409, or replaces it with overwrite.
    code, taken = await call_json("POST", layouts_url, json={"name": "Finish line", "layout": a_layout()},
                                  **acme.changing())
    assert code == 409
    code, replaced = await call_json("POST", layouts_url, json={"name": "Finish line", "layout": moved,
                                                                "overwrite": True}, **acme.changing())
    assert code == 201 and replaced["layout"]["id"] == stored["id"]

    code, deleted = await call_json("DELETE", f"{base}/api/layouts/{stored['id']}", **acme.changing())
    assert code == 200 and deleted == {"success": True, "deleted": stored["id"]}
    code, _ = await call_json("GET", f"{base}/api/layouts/{stored['id']}", cookies=acme.cookies())
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_a_bad_layout_is_a_400_naming_the_path(base, partners, pg_dsn):
    acme, zeta = partners
    layouts_url = f"{base}/api/events/{acme.event}/layouts"
    bad = a_layout()
    bad["fields"][1]["x"] = 120
    code, answer = await call_json("POST", layouts_url, json={"name": "Bad", "layout": bad}, **acme.changing())
    assert code == 400 and answer["parameter"] == "layout.fields[1].x", answer
    code, answer = await call_json("POST", layouts_url, json={"name": "", "layout": a_layout()}, **acme.changing())
    assert code == 400 and answer["parameter"] == "name"
    code, answer = await call_json("POST", layouts_url, data=b"{not json", **acme.changing())
    assert code == 400 and answer["parameter"] == "body"
    padded = a_layout()
    padded["fields"][0]["text"] = "x" * 40_000
    code, answer = await call_json("POST", layouts_url, json={"name": "Big", "layout": padded}, **acme.changing())
    assert code == 400 and answer["parameter"] == "layout"
    # An image of another partner's event cannot be put on my screen.
    _, body = await upload(base, zeta, picture())
    theirs = json.loads(body)["image"]["id"]
    code, answer = await call_json("POST", layouts_url, json={"name": "Theirs", "layout": a_layout(theirs)},
                                   **acme.changing())
    assert code == 400 and answer["parameter"] == "layout.images"
    assert query(pg_dsn, "SELECT count(*) FROM display_layouts")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_changing_a_layout_needs_csrf_and_an_operator(base, partners, pg_dsn):
    acme, _ = partners
    layouts_url = f"{base}/api/events/{acme.event}/layouts"
    payload = {"name": "Finish", "layout": a_layout()}
    code, _ = await call_json("POST", layouts_url, json=payload, cookies=acme.cookies())
    assert code == 403
    code, _ = await call_json("POST", layouts_url, json=payload, headers={"Authorization": f"Bearer {acme.token}"})
    assert code == 403
    code, _ = await call_json("POST", layouts_url, json=payload,
                              headers={"X-CSRF-Token": CSRF, "Origin": "https://evil.example"},
                              cookies=acme.cookies())
    assert code == 403
    assert query(pg_dsn, "SELECT count(*) FROM display_layouts")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_another_partner_cannot_read_or_write_my_layouts(base, partners, pg_dsn):
    acme, zeta = partners
    code, created = await call_json("POST", f"{base}/api/events/{acme.event}/layouts",
                                    json={"name": "Finish", "layout": a_layout()}, **acme.changing())
    layout_id = created["layout"]["id"]
    for credentials in ({"cookies": zeta.cookies()}, {"headers": {"Authorization": f"Bearer {zeta.token}"}}):
        code, _ = await call_json("GET", f"{base}/api/layouts/{layout_id}", **credentials)
        assert code == 404
        code, _ = await call_json("GET", f"{base}/api/events/{acme.event}/layouts", **credentials)
        assert code == 404
    code, _ = await call_json("PUT", f"{base}/api/layouts/{layout_id}",
                              json={"name": "Mine now", "layout": a_layout(), "overwrite": True}, **zeta.changing())
    assert code == 404
    code, _ = await call_json("DELETE", f"{base}/api/layouts/{layout_id}", **zeta.changing())
    assert code == 404
    code, _ = await call_json("POST", f"{base}/api/events/{acme.event}/layouts",
                              json={"name": "Sneaky", "layout": a_layout()}, **zeta.changing())
    assert code == 404
    preview, _ = await call("GET", f"{base}/layouts/{layout_id}/preview", cookies=zeta.cookies())
    assert preview.code == 404
    assert query(pg_dsn, "SELECT name FROM display_layouts") == [("Finish",)]


@pytest_twisted.ensureDeferred
async def test_the_designer_and_preview_pages_need_a_sign_in_and_show_the_operators_layout(base, partners):
    acme, _ = partners
    code, created = await call_json("POST", f"{base}/api/events/{acme.event}/layouts",
                                    json={"name": "Finish <b>", "layout": a_layout()}, **acme.changing())
    layout_id = created["layout"]["id"]
    for path in ("/designer", f"/layouts/{layout_id}/preview"):
        anonymous, _ = await call("GET", base + path, allow_redirects=False)
        assert anonymous.code == 303 and anonymous.headers.getRawHeaders("location")[0].startswith("/login")
    page, html = await call("GET", f"{base}/designer?event={acme.event}", cookies=acme.cookies())
    assert page.code == 200 and b'data-event="%d"' % acme.event in html and CSRF.encode() in html
    preview, html = await call("GET", f"{base}/layouts/{layout_id}/preview", cookies=acme.cookies())
    assert preview.code == 200 and b"/static/layout.js" in html
    assert b"Finish &lt;b&gt;" in html and b"Finish <b>" not in html
    bad, html = await call("GET", f"{base}/designer?event=abc", cookies=acme.cookies())
    assert bad.code == 400


@pytest_twisted.ensureDeferred
async def test_a_public_display_scope_reads_its_own_events_layout_only(base, partners, database, pg_dsn):
    """What a public screen (one partner, one event) may load: that event's layouts, nothing else."""
    from web import designer_queries
    from web.queries import Scope

    acme, zeta = partners
    code, created = await call_json("POST", f"{base}/api/events/{acme.event}/layouts",
                                    json={"name": "Finish", "layout": a_layout()}, **acme.changing())
    layout_id = created["layout"]["id"]
    acme_id = query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'acme'")[0][0]
    other_event = rows.insert_event(pg_dsn, "second", "Acme Half", partner="acme")
    screen = Scope(frozenset([acme_id]), acme.event)
    found = await designer_queries.layout(database, screen, layout_id)
    assert found is not None and found.layout["fields"][0]["x"] == 10
    assert await designer_queries.layout(database, Scope(frozenset([acme_id]), other_event), layout_id) is None
    zeta_id = query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'zeta'")[0][0]
    assert await designer_queries.layout(database, Scope(frozenset([zeta_id]), acme.event), layout_id) is None


@pytest_twisted.ensureDeferred
async def test_a_public_display_reads_its_events_layout_without_signing_in(base, partners, pg_dsn):
    acme, zeta = partners
    code, created = await call_json("POST", f"{base}/api/events/{acme.event}/layouts",
                                    json={"name": "Finish", "layout": a_layout()}, **acme.changing())
    layout_id = created["layout"]["id"]
    slug = rows.display_slug(pg_dsn, acme.event, public=True)
    code, answer = await call_json("GET", f"{base}/api/layouts/{layout_id}?display={slug}")
    assert code == 200 and answer["layout"]["layout"]["fields"][0]["x"] == 10
    code, _ = await call_json("GET", f"{base}/api/layouts/{layout_id}")
    assert code == 401  # without the display's code: a sign-in or a token
    zeta_slug = rows.display_slug(pg_dsn, zeta.event, public=True)
    code, _ = await call_json("GET", f"{base}/api/layouts/{layout_id}?display={zeta_slug}")
    assert code == 404  # another event's public display does not open this layout
    rows.display_slug(pg_dsn, acme.event, public=False)
    code, _ = await call_json("GET", f"{base}/api/layouts/{layout_id}?display={slug}")
    assert code == 404  # switched off: gone
