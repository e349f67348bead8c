"""Who may change things through the JSON API, and the CSRF check fetch() calls go through.

A page's script cannot post a form, so a signed-in browser sends its session's CSRF token in
the ``X-CSRF-Token`` header (or, for a multipart upload, in the ``csrf_token`` field like
the forms do). The same-site check and the rule that an API token only reads are those of
every operator form (``OperatorPages._changer``).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from chronotrack.accounts.tokens import tokens_match
from web.access import Viewer
from web.errors import BadParameter, Forbidden
from web.sign_in import CSRF_FIELD, form_field

CSRF_HEADER = b"X-CSRF-Token"


def check_api_csrf(request: IRequest, viewer: Viewer) -> None:
    """A signed-in browser's change must carry its session's CSRF token (header or form field)."""
    if not viewer.signed_in:
        return
    header = request.getHeader(CSRF_HEADER)
    given = header.decode("ascii", "replace").strip() if header else form_field(request, CSRF_FIELD, 200)
    if not given or not viewer.csrf_token or not tokens_match(viewer.csrf_token, given):
        raise Forbidden("The CSRF token is missing or wrong; reload the page and try again.")


def read_json_object(request: IRequest, max_bytes: int, too_large: BadParameter) -> dict[str, Any]:
    """The request body as a JSON object, reading at most ``max_bytes`` (more: ``too_large``)."""
    if request.content is None:
        raw = b""
    else:
        request.content.seek(0)
        raw = request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    try:
        value = json.loads(raw or b"null")
    except (UnicodeDecodeError, ValueError):
        raise BadParameter("body", "must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadParameter("body", "must be a JSON object")
    return value
