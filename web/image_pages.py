"""Event images: upload and list (JSON API, scoped to the viewer's partner), and serving them.

A mixin of ``DisplayApp`` on the same Klein app. An upload is at most 2 MB (``HubRequest``
refuses a bigger body with 413 before reading it, web/limits.py); its bytes are checked and
re-encoded in a thread, two at most at once (``chronotrack.display.images.clean_image``) so a big picture never
stalls the reactor. Images are served at ``/images/<sha256>.<ext>``: the address is the
hash of the stored bytes, so it never changes meaning and is cached for a year.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from twisted.internet.defer import DeferredSemaphore
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.display.images import EXTENSIONS, ImageRefused, check_upload_size, clean_image, safe_file_name
from chronotrack.storage.database import Database
from web import designer_queries, queries
from web.access import Viewer
from web.errors import BadParameter, NotFound
from web.operator_pages import MAX_ID, OperatorPages
from web.thread_pool import in_thread_pool

log = Logger()

app = OperatorPages.app

# A 4096 x 4096 picture takes 64 MB to decode: two at a time keep a burst of uploads from
# filling the memory or every thread of the reactor's pool.
PARALLEL_IMAGE_DECODES = 2
IMAGE_FILE_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|webp)$")
_FILE_NAME_IN_DISPOSITION = re.compile(rb'filename="([^"]{0,400})"')


class ImagePages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    reactor: Any
    database: Callable[[], Database]
    _json: Callable[[IRequest, dict[str, Any]], bytes]

    _image_decodes: DeferredSemaphore | None = None

    async def _clean_off_the_reactor(self, data: bytes):
        """``clean_image`` in the reactor's thread pool (a test clock without one: in line)."""
        if self._image_decodes is None:
            self._image_decodes = DeferredSemaphore(PARALLEL_IMAGE_DECODES)
        return await self._image_decodes.run(in_thread_pool, self.reactor, clean_image, data)

    async def _scoped_event(self, database: Database, viewer: Viewer, event_id: int) -> queries.Event:
        event = await queries.event_in_scope(database, viewer.scope, event_id) if event_id <= MAX_ID else None
        if event is None:
            raise NotFound("no such event")
        return event

    @app.route("/api/events/<int:event_id>/images", methods=["GET"])
    async def api_event_images(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        await self._scoped_event(database, viewer, event_id)
        images = await designer_queries.event_images(database, viewer.scope, event_id)
        return self._json(request, {"success": True, "images": [image.to_json() for image in images]})

    @app.route("/api/events/<int:event_id>/images", methods=["POST"])
    async def api_upload_image(self, request: IRequest, event_id: int) -> bytes:
        database = self.database()
        viewer = await self._api_changer(request, database)
        await self._scoped_event(database, viewer, event_id)
        uploads = request.args.get(b"image")
        if not uploads:
            raise BadParameter("image", "send the picture as the multipart field 'image'")
        data = uploads[0]
        try:
            check_upload_size(len(data))
            cleaned = await self._clean_off_the_reactor(data)
        except ImageRefused as refused:
            if refused.too_large:
                request.setResponseCode(413)
                return self._json(request, {"success": False, "error": str(refused), "parameter": "image"})
            raise BadParameter("image", str(refused)) from None
        stored = await designer_queries.store_image(database, viewer.scope, event_id, _upload_name(request), cleaned)
        if stored is None:
            raise NotFound("no such event")
        log.info("image {image} ({width}x{height} {type}, {size} bytes) uploaded to event {event} by {who}",
                 image=stored.id, width=cleaned.width, height=cleaned.height, type=cleaned.content_type,
                 size=cleaned.byte_size, event=event_id, who=viewer.email or "open mode")
        return self._json(request, {"success": True, "image": stored.to_json()})

    @app.route("/images/<string:file_name>", methods=["GET"])
    async def image_file(self, request: IRequest, file_name: str) -> bytes:
        match = IMAGE_FILE_NAME.match(file_name)
        if match is None:
            raise NotFound("no such image")
        sha256, extension = match.groups()
        content_type = EXTENSIONS[extension]
        data = await designer_queries.image_bytes(self.database(), sha256, content_type)
        if data is None:
            raise NotFound("no such image")
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        request.setHeader(b"Cache-Control", b"public, max-age=31536000, immutable")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Content-Disposition", b"inline")
        return data


def _upload_name(request: IRequest) -> str:
    """The file name the browser gave the upload, as a label only (never trusted for the type)."""
    content_type = request.getHeader(b"Content-Type") or b""
    body = getattr(request, "content", None)
    if body is None or b"multipart/form-data" not in content_type:
        return "image"
    position = body.tell()
    try:
        body.seek(0)
        head = body.read(64 * 1024)
    finally:
        body.seek(position)
    match = _FILE_NAME_IN_DISPOSITION.search(head)
    return safe_file_name(match.group(1).decode("utf-8", "replace")) if match else "image"
