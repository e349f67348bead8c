"""safe_fetch: what the hub refuses to fetch (private addresses, too much, too slow, too many hops)."""

from __future__ import annotations

import ipaddress

import pytest
import pytest_twisted
from twisted.internet import reactor

from twisted.internet.protocol import Factory

from chronotrack.outbound import safe_fetch
from chronotrack.outbound.safe_fetch import (BadURL, ConnectFailed, FetchPolicy, FetchError, HTTPError,
                                             PrivateAddress, SafeFetcher, Timeout, TooLarge, is_public_address)
from tests.stubs.http_stub import StubServer, fixed

PRIVATE_OK = FetchPolicy(allow_private=True, timeout=5)


@pytest_twisted.async_yield_fixture
async def site():
    server = StubServer().start()
    yield server
    await server.stop()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1",
])
def test_special_addresses_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_internet_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["ftp://example.org/", "file:///etc/passwd", "http://", "example.org",
                                 "http://user:pw@example.org/", "http://example.org:0/", "http://[::1"])
@pytest_twisted.ensureDeferred
async def test_urls_that_are_not_plain_http_or_https_are_bad_urls(url):
    with pytest.raises(BadURL):
        await SafeFetcher(reactor, PRIVATE_OK).fetch(url)


@pytest_twisted.ensureDeferred
async def test_loopback_literal_is_refused_by_default_and_nothing_is_sent(site):
    site.routes["/"] = fixed(200, b"secret")
    with pytest.raises(PrivateAddress) as refused:
        await SafeFetcher(reactor, FetchPolicy(timeout=5)).fetch(site.url("/"))
    assert "private or local" in str(refused.value)
    assert site.requests == []


@pytest_twisted.ensureDeferred
async def test_a_host_name_that_resolves_to_loopback_is_refused(site):
    site.routes["/"] = fixed(200, b"secret")
    url = f"http://localhost:{site.port.getHost().port}/"
    with pytest.raises(PrivateAddress):
        await SafeFetcher(reactor, FetchPolicy(timeout=5)).fetch(url)
    assert site.requests == []


@pytest_twisted.ensureDeferred
async def test_link_local_metadata_address_is_refused():
    with pytest.raises(PrivateAddress):
        await SafeFetcher(reactor, FetchPolicy(timeout=5)).fetch("http://169.254.169.254/latest/meta-data/")


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_a_private_address_is_refused(site, monkeypatch):
    """Each hop is checked again, so a page may not bounce the fetch inward.

    The stub itself lives on 127.0.0.1, so for this test only that one address counts as
    public; the redirect's target, 10.255.255.1, stays private and must be refused.
    """
    site.routes["/start"] = fixed(302, b"", Location="http://10.255.255.1:9/inside")
    real_check = safe_fetch.is_public_address
    monkeypatch.setattr(safe_fetch, "is_public_address",
                        lambda address: str(address) == "127.0.0.1" or real_check(address))
    with pytest.raises(PrivateAddress):
        await SafeFetcher(reactor, FetchPolicy(timeout=5)).fetch(site.url("/start"))
    assert [request.path for request in site.requests] == ["/start"]


@pytest_twisted.ensureDeferred
async def test_private_addresses_are_allowed_when_the_policy_says_so(site):
    site.routes["/ok"] = fixed(200, b"<html>hello</html>")
    result = await SafeFetcher(reactor, PRIVATE_OK).fetch(site.url("/ok"))
    assert (result.code, result.body, result.content_type) == (200, b"<html>hello</html>", "text/html")


@pytest_twisted.ensureDeferred
async def test_an_answer_over_the_size_limit_is_refused_while_streaming(site):
    chunk = b"x" * 4096

    def streamed(request):  # no Content-Length: the limit must be enforced on the bytes themselves
        for _ in range(64):
            request.write(chunk)
        request.finish()
        return None

    site.routes["/big"] = streamed
    with pytest.raises(TooLarge):
        await SafeFetcher(reactor, FetchPolicy(allow_private=True, max_bytes=10_000, timeout=5)).fetch(
            site.url("/big"))


@pytest_twisted.ensureDeferred
async def test_a_declared_content_length_over_the_limit_is_refused(site):
    site.routes["/big"] = fixed(200, b"y" * 20_000)
    with pytest.raises(TooLarge):
        await SafeFetcher(reactor, FetchPolicy(allow_private=True, max_bytes=10_000, timeout=5)).fetch(
            site.url("/big"))


@pytest_twisted.ensureDeferred
async def test_an_answer_exactly_at_the_limit_is_accepted(site):
    site.routes["/exact"] = fixed(200, b"z" * 10_000)
    result = await SafeFetcher(reactor, FetchPolicy(allow_private=True, max_bytes=10_000, timeout=5)).fetch(
        site.url("/exact"))
    assert len(result.body) == 10_000


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_times_out(site):
    site.routes["/slow"] = lambda request: None
    with pytest.raises(Timeout) as timed_out:
        await SafeFetcher(reactor, FetchPolicy(allow_private=True, timeout=0.5)).fetch(site.url("/slow"))
    assert "0.5 seconds" in str(timed_out.value)


@pytest_twisted.ensureDeferred
async def test_redirects_are_followed_up_to_the_limit_and_no_further(site):
    for hop in range(5):
        site.routes[f"/hop{hop}"] = fixed(302, b"", Location=f"/hop{hop + 1}")
    site.routes["/hop5"] = fixed(200, b"arrived")
    fetcher = SafeFetcher(reactor, FetchPolicy(allow_private=True, max_redirects=5, timeout=5))
    result = await fetcher.fetch(site.url("/hop0"))
    assert result.body == b"arrived" and result.url == site.url("/hop5")
    with pytest.raises(FetchError, match="more than 4 redirects"):
        await SafeFetcher(reactor, FetchPolicy(allow_private=True, max_redirects=4, timeout=5)).fetch(
            site.url("/hop0"))


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_another_scheme_is_a_bad_url(site):
    site.routes["/r"] = fixed(301, b"", Location="file:///etc/passwd")
    with pytest.raises(BadURL):
        await SafeFetcher(reactor, PRIVATE_OK).fetch(site.url("/r"))


@pytest_twisted.ensureDeferred
async def test_error_statuses_come_back_for_the_caller_to_judge(site):
    site.routes["/gone"] = fixed(404, b"nope")
    result = await SafeFetcher(reactor, PRIVATE_OK).fetch(site.url("/gone"))
    assert result.code == 404
    assert str(HTTPError(404)) == "the server answered HTTP 404"


@pytest_twisted.ensureDeferred
async def test_a_closed_port_is_a_connect_failure_not_a_crash():
    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    with pytest.raises(ConnectFailed):
        await SafeFetcher(reactor, PRIVATE_OK).fetch(f"http://127.0.0.1:{number}/")
