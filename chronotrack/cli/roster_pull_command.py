"""``chronotrack roster pull SOURCE``: pull an event's roster from a registration platform.

The same job as the /roster/sources page (``chronotrack.roster_sources.job``), so the rows,
the progress row and the messages are the same. Credentials are never command-line
arguments (other users can read those in ``ps``): they come from environment variables
named ``CHRONOTRACK_<SOURCE>_<FIELD>`` (e.g. ``CHRONOTRACK_RUNSIGNUP_API_SECRET``), or are
asked for at the terminal without echo. Exit status: 0 all stored; 1 some records
rejected (the good ones are stored); 2 the pull failed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from chronotrack.cli.running import EXIT_FAILED, EXIT_OK, CommandFailed, add_database_options, resolve, \
    run_on_database
from chronotrack.outbound.settings import OUTBOUND_SETTINGS, OutboundSettings
from chronotrack.roster_sources import store
from chronotrack.roster_sources.base import RosterSource, SourceRequest
from chronotrack.roster_sources.job import RosterPulls
from chronotrack.roster_sources.registry import SOURCE_NAMES, roster_sources
from chronotrack.storage.database import Database
from web import queries
from web.errors import DatabaseUnavailable
from web.queries import Scope

EXIT_ROWS_REJECTED = 1
PULL_SETTINGS = ("dsn", "data-dir", *OUTBOUND_SETTINGS)


def credential_variable(source: RosterSource, field: str) -> str:
    return f"CHRONOTRACK_{source.name.upper()}_{field.upper()}"


def add_parser(actions) -> None:
    pulling = actions.add_parser(
        "pull", help="Pull (insert or update by bib) runners from RunSignUp, Race Roster or ChronoTrack Live.",
        description="Pull an event's runners from a registration platform, page by page. Credentials come from "
                    "CHRONOTRACK_<SOURCE>_<FIELD> environment variables (e.g. CHRONOTRACK_RUNSIGNUP_API_KEY, "
                    "CHRONOTRACK_RUNSIGNUP_API_SECRET, CHRONOTRACK_RACE_ROSTER_CLIENT_SECRET, "
                    "CHRONOTRACK_RACE_ROSTER_PASSWORD, CHRONOTRACK_CHRONOTRACK_LIVE_PASSWORD) or are asked for. "
                    "Exit status: 0 all stored; 1 some records rejected; 2 the pull failed.")
    pulling.add_argument("source", choices=SOURCE_NAMES, help="The platform.")
    pulling.add_argument("--platform-event", required=True, help="The event id on the platform.")
    pulling.add_argument("--race-id", help="RunSignUp only: the race id.")
    pulling.add_argument("--event", required=True, help="Our event: its id as the controllers report it (or its "
                                                        "name). Created if new.")
    pulling.add_argument("--partner", default="default", help="Slug of the timing partner (default: default).")
    add_database_options(pulling)
    pulling.set_defaults(run=run_pull)


def _credentials(source: RosterSource) -> dict[str, str]:
    credentials = {}
    for field, label in source.credential_fields:
        value = os.environ.get(credential_variable(source, field), "")
        if not value and sys.stdin.isatty():
            try:
                value = getpass.getpass(f"{source.label} {label}: ")
            except EOFError:
                value = ""
        if not value:
            raise CommandFailed(f"no {source.label} {label}: set {credential_variable(source, field)}")
        credentials[field] = value
    return credentials


def run_pull(arguments: argparse.Namespace) -> int:
    settings = resolve(arguments, PULL_SETTINGS)
    source = roster_sources(OutboundSettings.from_settings(settings))[arguments.source]
    remote = {"event_id": arguments.platform_event}
    if any(name == "race_id" for name, _ in source.remote_fields):
        if not arguments.race_id:
            raise CommandFailed(f"{source.label} needs --race-id")
        remote["race_id"] = arguments.race_id
    request = SourceRequest(remote, _credentials(source))
    timeout = OutboundSettings.from_settings(settings).timeout

    async def work(database: Database) -> store.RosterImport:
        from twisted.internet import reactor

        try:
            event_id = await queries.event_id_for(database, arguments.partner, arguments.event)
            if event_id is None:
                raise CommandFailed(f"no partner {arguments.partner!r}")
            event = await queries.event_in_scope(database, Scope(), event_id)
            pulls = RosterPulls(reactor, timeout)
            import_id = await pulls.start(database, event.partner_id, event_id, source, request)
            running = pulls.running.get(import_id)
            if running is not None:
                await running
            return await store.get_import(database, Scope(), import_id)
        except DatabaseUnavailable as error:
            raise CommandFailed(f"database unavailable: {error}") from error

    result = run_on_database(settings, work)
    for problem in result.problems:
        print(f"rejected {problem}", file=sys.stderr)
    if result.status != "done":
        print(f"pull failed after {result.rows_done} runners: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    pages = "1 page" if result.pages_done == 1 else f"{result.pages_done} pages"
    print(f"pulled {result.rows_done} runners in {pages}; {result.rows_rejected} rejected")
    return EXIT_ROWS_REJECTED if result.rows_rejected else EXIT_OK
