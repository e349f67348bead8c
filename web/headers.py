"""Security headers on every response the web layer sends, decided in one place.

``HubRequest`` (web/site.py) calls ``apply_security_headers`` just before a response's
headers go out, so pages, JSON, static files, errors, 404s, refusals (413, 503) and the
live stream all carry them, whatever the route did or forgot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from twisted.web.iweb import IRequest

# Inline scripts and styles never run: even a missed escape could not execute injected code.
CONTENT_SECURITY_POLICY = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           b"frame-ancestors 'none'")
STRICT_TRANSPORT_SECURITY = b"max-age=31536000"
REFERRER_POLICY = b"same-origin"


@dataclass(frozen=True)
class HeaderPolicy:
    """What ``apply_security_headers`` sends; ``cors_origins`` may read our responses from their pages."""

    content_security_policy: bytes = CONTENT_SECURITY_POLICY
    cors_origins: frozenset[bytes] = frozenset()


def is_loopback(request: IRequest) -> bool:
    host = getattr(request.getClientAddress(), "host", None)
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def served_over_tls(request: IRequest) -> bool:
    """TLS here, or at a reverse proxy on this machine that says so (X-Forwarded-Proto)."""
    if request.isSecure():
        return True
    forwarded = request.getHeader(b"X-Forwarded-Proto")
    return forwarded is not None and forwarded.strip().lower() == b"https" and is_loopback(request)


def apply_security_headers(request: IRequest, policy: HeaderPolicy) -> None:
    headers = request.responseHeaders
    headers.setRawHeaders(b"Content-Security-Policy", [policy.content_security_policy])
    headers.setRawHeaders(b"X-Frame-Options", [b"DENY"])
    headers.setRawHeaders(b"X-Content-Type-Options", [b"nosniff"])
    headers.setRawHeaders(b"Referrer-Policy", [REFERRER_POLICY])
    if served_over_tls(request):
        headers.setRawHeaders(b"Strict-Transport-Security", [STRICT_TRANSPORT_SECURITY])
    else:
        headers.removeHeader(b"Strict-Transport-Security")
    for name in (b"Access-Control-Allow-Origin", b"Access-Control-Allow-Credentials",
                 b"Access-Control-Allow-Methods", b"Access-Control-Allow-Headers"):
        headers.removeHeader(name)  # only the policy below grants cross-origin reads
    if policy.cors_origins:
        headers.addRawHeader(b"Vary", b"Origin")
        origin = request.getHeader(b"Origin")
        if origin is not None and origin in policy.cors_origins:
            headers.setRawHeaders(b"Access-Control-Allow-Origin", [origin])
