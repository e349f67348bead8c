"""``POST /api/events/<id>/brand-from-url``: an event's brand colours and fonts from its website.

Operator-only (it makes the hub fetch a URL), scoped to the viewer's partner's events, and
the fetch goes through ``safe_fetch``: private and local addresses are refused unless the
hub is configured to allow them (``brand-fetch-allow-private``). A JSON POST carries the
CSRF token in the ``X-CSRF-Token`` header (a form post may use the ``csrf_token`` field).
At most a few fetches run at once hub-wide, so pasting URLs cannot tie up the reactor.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import DeferredSemaphore, ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.outbound.brand import fetch_brand
from chronotrack.outbound.safe_fetch import BadURL, FetchError, Target, safe_url_text
from chronotrack.outbound.settings import OutboundSettings
from chronotrack.storage.database import Database
from web import queries
from web.api_changes import read_json_object
from web.errors import BadParameter, NotFound
from web.operator_pages import MAX_ID, OperatorPages
from web.sign_in import form_field

log = Logger()
app = OperatorPages.app

MAX_URL_LENGTH = 2000
MAX_JSON_BODY = 16 * 1024
PARALLEL_BRAND_FETCHES = 4


def json_body(request: IRequest) -> dict[str, Any]:
    """The posted JSON object; a form post's fields are read as text instead."""
    content_type = (request.getHeader(b"Content-Type") or b"").split(b";", 1)[0].strip().lower()
    if content_type != b"application/json":
        return {}
    return read_json_object(request, MAX_JSON_BODY,
                            BadParameter("body", f"must be at most {MAX_JSON_BODY // 1024} KB of JSON"))


class BrandPages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    reactor: Any
    database: Callable[[], Database]
    _json: Callable[[IRequest, dict[str, Any]], bytes]
    _api_changer: Callable[..., Any]
    outbound_settings: OutboundSettings = OutboundSettings()
    _brand_fetches: DeferredSemaphore | None = None

    def configure_outbound(self, settings: dict[str, Any]) -> None:
        """Called at start-up with the resolved settings (base URLs, timeouts, the server key file)."""
        self.outbound_settings = OutboundSettings.from_settings(settings)

    @app.route("/api/events/<int:event_id>/brand-from-url", methods=["POST"])
    async def brand_from_url(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer = await self._api_changer(request, database)
        if event_id > MAX_ID or await queries.event_in_scope(database, viewer.scope, event_id) is None:
            raise NotFound("no such event")
        url = json_body(request).get("url")
        if url is None:
            url = form_field(request, "url", MAX_URL_LENGTH)
        if not isinstance(url, str) or not url.strip():
            raise BadParameter("url", "give the event website's address, e.g. https://myrace.example.org")
        url = url.strip()
        if len(url) > MAX_URL_LENGTH:
            raise BadParameter("url", f"must be at most {MAX_URL_LENGTH} characters")
        try:
            Target.of(url)
        except BadURL as error:
            raise BadParameter("url", str(error)) from None
        if self._brand_fetches is None:
            self._brand_fetches = DeferredSemaphore(PARALLEL_BRAND_FETCHES)
        settings = self.outbound_settings
        try:
            brand = await self._brand_fetches.run(
                lambda: ensureDeferred(fetch_brand(self.reactor, url, settings.brand_allow_private, settings.timeout)))
        except FetchError as error:
            log.info("brand from {url} for event {event} failed: {error}", url=safe_url_text(url), event=event_id,
                     error=str(error))
            request.setResponseCode(422)
            return self._json(request, {"success": False, "error": str(error)})
        return self._json(request, {"success": True, **brand.to_json()})

