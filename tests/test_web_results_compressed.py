"""A big /api/results answer goes gzip-compressed to clients that accept it, the same JSON
once uncompressed; others, and small answers, get the plain bytes. StubTreq in memory
against a real PostgreSQL (the results fixtures of test_web_results)."""

from __future__ import annotations

import gzip
import json

import pytest
import pytest_twisted
import treq
from twisted.web.http_headers import Headers
from twisted.web.test.requesthelper import DummyRequest

from tests.test_web_access import BASE
from tests.test_web_results import display, race, stub  # noqa: F401 (fixtures)
from tests.test_web_routes import settle
from web import compressed
from web.compressed import accepts_gzip


async def raw_get(stub, path: str, who, headers: dict | None = None):  # noqa: F811
    """The response and its body as the hub sent them: treq's own client asks for gzip on every
    request and decodes it, so this goes to StubTreq's agent directly."""
    cookie = "; ".join(f"{name}={value}" for name, value in who.cookies.items())
    sent = Headers({"Cookie": [cookie], **{name: [value] for name, value in (headers or {}).items()}})
    response = await settle(stub, stub._agent.request(b"GET", (BASE + path).encode("ascii"), sent))
    return response, await settle(stub, treq.content(response))


@pytest_twisted.ensureDeferred
async def test_a_big_answer_is_gzipped_for_a_client_that_accepts_it_and_plain_for_others(
        stub, race, monkeypatch):  # noqa: F811
    monkeypatch.setattr(compressed, "MIN_COMPRESSED_BYTES", 100)  # the test race's answer is small
    plain_response, plain = await raw_get(stub, "/api/results", race.acme)
    assert plain_response.code == 200
    assert plain_response.headers.getRawHeaders("content-encoding") is None
    assert plain_response.headers.getRawHeaders("vary") == ["Accept-Encoding"]
    zipped_response, zipped = await raw_get(stub, "/api/results", race.acme, {"Accept-Encoding": "gzip, deflate, br"})
    assert zipped_response.code == 200
    assert zipped_response.headers.getRawHeaders("content-encoding") == ["gzip"]
    assert zipped_response.headers.getRawHeaders("content-type") == ["application/json"]
    assert gzip.decompress(zipped) == plain
    assert json.loads(plain)["count"] == len(json.loads(plain)["results"]) > 0
    refused_response, refused = await raw_get(stub, "/api/results", race.acme, {"Accept-Encoding": "gzip;q=0"})
    assert refused_response.headers.getRawHeaders("content-encoding") is None and refused == plain


@pytest_twisted.ensureDeferred
async def test_a_small_answer_goes_plain_even_to_a_client_that_accepts_gzip(stub, race):  # noqa: F811
    response, body = await raw_get(stub, "/api/results", race.acme, {"Accept-Encoding": "gzip"})
    assert response.code == 200 and len(body) < compressed.MIN_COMPRESSED_BYTES
    assert response.headers.getRawHeaders("content-encoding") is None
    assert json.loads(body)["success"] is True


@pytest.mark.parametrize("header, accepted", [
    (None, False), ("", False), ("gzip", True), ("GZIP", True), ("deflate, gzip;q=0.5", True),
    ("gzip;q=0", False), ("gzip; q=0.0", False), ("*", True), ("br, identity", False), ("x-gzip", True),
    ("gzip;q=nonsense", False)])
def test_accept_encoding_is_read_with_its_quality_values(header, accepted):
    request = DummyRequest([b""])
    if header is not None:
        request.requestHeaders.setRawHeaders(b"Accept-Encoding", [header.encode()])
    assert accepts_gzip(request) is accepted
