"""``/roster/sources``: pull an event's roster from a registration platform, and watch it arrive.

One form per platform (its event ids and credentials, CSRF token, "remember"), a POST that
starts the pull as a job on the reactor and sends the browser to the progress display,
and ``GET /api/roster-imports/<id>`` that the page polls. Operators only (an API token
reads, it does not start pulls), and every event and import is looked up in the viewer's
scope. Credentials are used in memory; remembered ones are sealed with the server key.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.accounts.secret_box import SecretKeyError
from chronotrack.outbound.settings import OutboundSettings
from chronotrack.roster_sources import store
from chronotrack.roster_sources.base import RosterSource, SourceRequest
from chronotrack.roster_sources.credentials import CredentialSeal
from chronotrack.roster_sources.job import RosterPulls
from chronotrack.roster_sources.registry import SOURCE_NAMES, roster_sources
from chronotrack.storage.database import Database
from web import queries
from web.access import Viewer
from web.errors import BadParameter, Forbidden, NotFound
from web.operator_pages import MAX_ID, OperatorPages
from web.params import int_param, parse_bounded_int
from web.queries import Event
from web.sign_in import form_field

log = Logger()
app = OperatorPages.app

REMOTE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MAX_CREDENTIAL_LENGTH = 500
RECENT_IMPORTS = 10


class RosterSourcePages:
    """Routes on ``OperatorPages.app``; ``DisplayApp`` provides the plumbing."""

    reactor: Any
    database: Callable[[], Database]
    outbound_settings: OutboundSettings
    _render: Callable[..., bytes]
    _redirect: Callable[[IRequest, bytes | str], bytes]
    _json: Callable[[IRequest, dict[str, Any]], bytes]
    _reader: Callable[..., Any]
    _changer: Callable[..., Any]
    _roster_pulls: RosterPulls | None = None
    _credential_seal: CredentialSeal | None = None
    _abandoned_checked = False

    @property
    def roster_pulls(self) -> RosterPulls:
        if self._roster_pulls is None:
            self._roster_pulls = RosterPulls(self.reactor, self.outbound_settings.timeout)
        return self._roster_pulls

    @property
    def credential_seal(self) -> CredentialSeal:
        key_file = self.outbound_settings.secret_key_file
        if self._credential_seal is None or self._credential_seal.key_file != key_file:
            self._credential_seal = CredentialSeal(key_file)
        return self._credential_seal

    def stop_roster_pulls(self) -> None:
        """On shut-down: running pulls stop (their rows say failed; what they stored stays)."""
        if self._roster_pulls is not None:
            self._roster_pulls.stop_all()

    async def _operator(self, request: IRequest, database: Database) -> Viewer:
        viewer = await self._reader(request, database)
        if not viewer.may_change:
            raise Forbidden("Pulling a roster needs an operator's sign-in; an API token only reads.")
        return viewer

    async def _roster_event(self, database: Database, viewer: Viewer, event_id: int | None) -> Event:
        if event_id is None:
            event_id = await queries.roster_event_id(database, viewer.scope)
        event = await queries.event_in_scope(database, viewer.scope, event_id)
        if event is None:
            raise NotFound("no such event")
        return event

    @app.route("/roster/sources", methods=["GET"])
    async def roster_sources_page(self, request: IRequest) -> bytes:
        database = self.database()
        viewer = await self._operator(request, database)
        if not self._abandoned_checked:  # once per process: pulls a stopped process left 'running'
            self._abandoned_checked = True
            await store.mark_abandoned(database)
        event = await self._roster_event(database, viewer, int_param(request, "event", None, 1, MAX_ID))
        followed_id = int_param(request, "import", None, 1, MAX_ID)
        followed = await store.get_import(database, viewer.scope, followed_id) if followed_id else None
        return self._render(
            request, "roster_sources.html", active="roster", title="Pull a roster", event=event,
            events=await queries.events(database, viewer.scope),
            sources=list(roster_sources(self.outbound_settings).values()),
            remembered=await store.remembered_sources(database, event.partner_id),
            can_remember=self.credential_seal.available, followed=followed,
            imports=await store.recent_imports(database, viewer.scope, RECENT_IMPORTS))

    @app.route("/roster/sources/<string:source_name>", methods=["POST"])
    async def start_roster_pull(self, request: IRequest, source_name: str) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)
        source = self._source(source_name)
        event = await self._roster_event(database, viewer, parse_bounded_int(
            "event", form_field(request, "event", 20).strip() or None, None, 1, MAX_ID))
        remote = {}
        for name, label in source.remote_fields:
            value = form_field(request, name, 40).strip()
            if not REMOTE_ID.match(value):
                raise BadParameter(name, f"{label}: give the platform's id (letters, digits, - or _)")
            remote[name] = value
        credentials = await self._credentials(request, database, event.partner_id, source)
        if form_field(request, "remember", 3) == "on":
            try:
                await store.save_sealed(database, event.partner_id, source.name,
                                        self.credential_seal.seal(credentials))
            except SecretKeyError as error:
                raise BadParameter("remember", str(error)) from None
        import_id = await self.roster_pulls.start(database, event.partner_id, event.id, source,
                                                  SourceRequest(remote, credentials))
        return self._redirect(request, f"/roster/sources?event={event.id}&import={import_id}#progress")

    @app.route("/roster/sources/<string:source_name>/forget", methods=["POST"])
    async def forget_roster_credentials(self, request: IRequest, source_name: str) -> bytes:
        database = self.database()
        viewer = await self._changer(request, database)
        source = self._source(source_name)
        event = await self._roster_event(database, viewer, parse_bounded_int(
            "event", form_field(request, "event", 20).strip() or None, None, 1, MAX_ID))
        await store.forget_sealed(database, event.partner_id, source.name)
        log.info("remembered {source} credentials forgotten by {who}", source=source.label,
                 who=viewer.email or "open mode")
        return self._redirect(request, f"/roster/sources?event={event.id}")

    @app.route("/api/roster-imports/<int:import_id>", methods=["GET"])
    async def api_roster_import(self, request: IRequest, import_id: int) -> bytes:
        database = self.database()
        viewer = await self._reader(request, database)
        found = await store.get_import(database, viewer.scope, import_id) if import_id <= MAX_ID else None
        if found is None:
            raise NotFound("no such roster import")
        return self._json(request, {"success": True, "import": found.to_json()})

    def _source(self, name: str) -> RosterSource:
        if name not in SOURCE_NAMES:
            raise NotFound("no such roster source")
        return roster_sources(self.outbound_settings)[name]

    async def _credentials(self, request: IRequest, database: Database, partner_id: int,
                           source: RosterSource) -> dict[str, str]:
        """The typed credentials; when all are left empty, the remembered ones."""
        typed = {name: form_field(request, name, MAX_CREDENTIAL_LENGTH).strip() for name, _ in source.credential_fields}
        if not any(typed.values()):
            sealed = await store.load_sealed(database, partner_id, source.name)
            if sealed is None:
                first_name, first_label = source.credential_fields[0]
                raise BadParameter(first_name, f"{first_label}: enter the {source.label} credentials")
            try:
                remembered = self.credential_seal.open(sealed)
            except SecretKeyError as error:
                raise BadParameter(source.credential_fields[0][0], str(error)) from None
            typed = {name: remembered.get(name, "") for name, _ in source.credential_fields}
        for name, label in source.credential_fields:
            if not typed[name]:
                raise BadParameter(name, f"{label} is required")
        return typed
