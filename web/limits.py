"""How much a client may send or hold: request body sizes and the number of live streams.

twisted.web reads a whole request body (into memory or a temporary file) before any route
runs, so a body limit checked in a route comes too late. ``HubRequest`` (web/site.py) asks
``body_limit`` as soon as the headers are in and refuses with 413 before reading on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MIB = 1024 * 1024
DEFAULT_BODY_BYTES = 64 * 1024
ROSTER_FILE_BYTES = 5 * MIB  # what the roster route accepts as a file
UPLOAD_BODY_BYTES = ROSTER_FILE_BYTES + 64 * 1024  # the file plus its multipart envelope
IMAGE_FILE_BYTES = 2 * MIB  # what an event image upload accepts (chronotrack.display.images)
IMAGE_BODY_BYTES = IMAGE_FILE_BYTES + 64 * 1024
REFUSED_BODY_DISCARD_BYTES = 1 * MIB  # read and dropped after a 413, then reading stops
REFUSED_BODY_LINGER_SECONDS = 2.0  # how long a refused client then has to read the 413 before the cut
DEFAULT_MAX_STREAM_CLIENTS = 1000
# One address may hold at most this many of them: one client cannot fill the hub's streams
# (a venue's Wi-Fi or a mobile carrier can put many phones behind one address: raise it there).
DEFAULT_MAX_STREAMS_PER_ADDRESS = 100
STREAM_RETRY_AFTER_SECONDS = 10


@dataclass(frozen=True)
class BodyLimit:
    bytes: int
    message: str


DEFAULT_LIMIT = BodyLimit(DEFAULT_BODY_BYTES, f"Request bodies may be at most {DEFAULT_BODY_BYTES // 1024} KB.")
UPLOAD_LIMIT = BodyLimit(UPLOAD_BODY_BYTES, f"Roster files may be at most {ROSTER_FILE_BYTES // MIB} MB.")
IMAGE_LIMIT = BodyLimit(IMAGE_BODY_BYTES, f"Images may be at most {IMAGE_FILE_BYTES // MIB} MB.")


def is_upload(method: bytes, path: bytes) -> bool:
    """Roster uploads (``POST /roster``, and ``POST .../roster`` of an event) may be large."""
    return method.upper() == b"POST" and (path == b"/roster" or path.endswith(b"/roster"))


def is_image_upload(method: bytes, path: bytes) -> bool:
    """Image uploads (``POST /api/events/<id>/images``) carry up to 2 MB."""
    return method.upper() == b"POST" and path.startswith(b"/api/events/") and path.endswith(b"/images")


def body_limit(method: bytes, path: bytes) -> BodyLimit:
    if is_image_upload(method, path):
        return IMAGE_LIMIT
    return UPLOAD_LIMIT if is_upload(method, path) else DEFAULT_LIMIT


def is_stream(method: bytes, path: bytes) -> bool:
    """The live stream (``/stream``, or ``.../stream`` of an event): one long response per client."""
    return method.upper() in (b"GET", b"HEAD") and (path == b"/stream" or path.endswith(b"/stream"))


def wants_json(request_path: bytes, accept: bytes | None) -> bool:
    return (request_path.startswith(b"/api/") or request_path.endswith(b"/stream")
            or (accept is not None and b"application/json" in accept and b"text/html" not in accept))


def refusal_body(code: int, error: str, message: str, as_json: bool, **extra) -> tuple[bytes, bytes]:
    """(content type, body) of a refusal written before any route ran; ``message`` is our own text."""
    if as_json:
        payload = {"success": False, "error": error, "message": message, **extra}
        return b"application/json", json.dumps(payload).encode("utf-8")
    page = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n"
            f"  <title>{error.capitalize()} · ChronoTrack</title>\n"
            "  <link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n"
            f"  <main class=\"page\">\n    <h1>{code} {error.capitalize()}</h1>\n    <p>{message}</p>\n"
            "  </main>\n</body>\n</html>\n")
    return b"text/html; charset=utf-8", page.encode("utf-8")
