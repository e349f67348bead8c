"""Downloads of a session's reads: CSV for spreadsheets, CT01 for results software.

A mixin of ``DisplayApp`` on the same Klein app (so the one error hook answers for it). Whoever
may read pages may download (open mode, an operator, an API token), and only a session of
their own partner: another partner's session is not found (404), as everywhere else. The
session is looked up before anything is sent, so a refusal is a proper error page; after that
the file goes out with ``request.write`` one page of reads at a time (``chronotrack.exports``),
and a database failure half-way drops the connection, so a browser never keeps a cut-off file
as if it were whole.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack import exports
from chronotrack.storage.database import Database
from web.errors import DatabaseUnavailable, NotFound
from web.operator_pages import MAX_ID, OperatorPages
from web.params import text_param

log = Logger()

CONTENT_TYPES = {"csv": b"text/csv; charset=utf-8", "ct01": b"text/plain; charset=utf-8"}


class ExportPages:
    app = OperatorPages.app

    # Provided by DisplayApp
    database: Callable[[], Database]

    @app.route("/sessions/<int:session_id>/export.csv", methods=["GET"])
    async def export_session_csv(self, request: IRequest, session_id: int) -> None:
        await self._export_session(request, session_id, "csv")

    @app.route("/sessions/<int:session_id>/export.ct01", methods=["GET"])
    async def export_session_ct01(self, request: IRequest, session_id: int) -> None:
        await self._export_session(request, session_id, "ct01")

    async def _export_session(self, request: IRequest, session_id: int, export_format: str) -> None:
        location = text_param(request, "location")
        database = self.database()
        viewer = await self._reader(request, database)  # type: ignore[attr-defined]
        target = await self._session_in_scope(database, viewer.scope, session_id)
        filename = exports.export_filename("session", target.id, target.title, export_format)
        request.setHeader(b"Content-Type", CONTENT_TYPES[export_format])
        request.setHeader(b"Content-Disposition", f'attachment; filename="{filename}"'.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        pace = _Pace()
        gone: list[object] = []
        request.notifyFinish().addBoth(gone.append)
        request.registerProducer(pace, True)
        try:
            count = await exports.write_export(database, target, export_format, pace.writer(request), location,
                                               page_size=exports.PAGE_SIZE)
        except CancelledError:
            raise  # the browser went away: nothing more to send
        except Exception:
            if gone:
                log.info("download of session {session} closed by the browser", session=target.id)
                return
            log.failure("export of session {session} failed part-way; dropping the download", session=target.id)
            request.channel.transport.abortConnection()  # no final chunk: the file is known to be incomplete
            return
        finally:
            request.unregisterProducer()
        log.info("session {session} exported as {export_format} ({count} reads) by {who}", session=target.id,
                 export_format=export_format, count=count, who=viewer.email or viewer.kind)

    async def _session_in_scope(self, database: Database, scope, session_id: int) -> exports.ExportTarget:
        if session_id > MAX_ID or scope.event_id is not None:
            raise NotFound("no such session")
        try:
            target = await exports.find_session(database, session_id, partner_ids=scope.partners)
        except Exception as error:
            raise DatabaseUnavailable(str(error)) from error
        if target is None:
            raise NotFound("no such session")
        return target


class _Pace:
    """A streaming producer that only remembers whether the connection asked us to wait.

    A slow download must not pile the whole event up in the transport's buffer: after each
    page the export waits here until the buffer has drained.
    """

    def __init__(self) -> None:
        self._paused = False
        self._waiting: list[Deferred[None]] = []

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def stopProducing(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.errback(CancelledError("the download was closed"))

    def writer(self, request: IRequest) -> Callable[[bytes], Deferred[None]]:
        def write(data: bytes) -> Deferred[None]:
            request.write(data)
            if not self._paused:
                return succeed(None)
            waiter: Deferred[None] = Deferred()
            self._waiting.append(waiter)
            return waiter
        return write
