"""Big JSON answers sent gzip-compressed to the clients that accept it.

A big race's whole results table is megabytes of JSON (16 MB for 49,000 runners), asked for
every few seconds by phones on a mobile network. Compressed once per change of the results
(level 1: about 30 ms for 16 MB, a sixteenth of the size) and kept beside the plain bytes,
it costs each request a sixteenth of the bytes to write. Small answers go as they are.
"""

from __future__ import annotations

import gzip

from twisted.web.iweb import IRequest

MIN_COMPRESSED_BYTES = 64 * 1024
COMPRESS_LEVEL = 1


def accepts_gzip(request: IRequest) -> bool:
    """Whether ``Accept-Encoding`` names gzip (or ``*``) without ``q=0``."""
    header = request.getHeader(b"Accept-Encoding")
    if not header:
        return False
    for item in header.decode("latin-1").split(","):
        coding, _, parameters = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = parameters.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def wants_compressed(request: IRequest, body: bytes) -> bool:
    """Whether ``body`` should go compressed to this client; says ``Vary`` either way, for caches."""
    if len(body) < MIN_COMPRESSED_BYTES:
        return False
    request.setHeader(b"Vary", b"Accept-Encoding")
    return accepts_gzip(request)


def gzipped(body: bytes) -> bytes:
    """``body`` as a gzip member (no timestamp in it, so equal bodies give equal bytes)."""
    return gzip.compress(body, compresslevel=COMPRESS_LEVEL, mtime=0)


def send_gzipped(request: IRequest, compressed: bytes) -> bytes:
    request.setHeader(b"Content-Encoding", b"gzip")
    return compressed
