"""``chronotrack roster import FILE``: load a roster CSV into the timing database.

It uses the same settings as every subcommand, the same schema upgrade and the same
upsert as the web page, so a roster imported either way is the same roster. Good rows
are imported even when some lines are bad; the exit status is 1 when any line was
rejected, so scripts notice, and 2 when nothing could be imported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from chronotrack.accounts.errors import UnknownPartner
from chronotrack.cli import roster_pull_command
from chronotrack.cli.running import EXIT_FAILED, EXIT_OK, CommandFailed, add_database_options, resolve, \
    run_on_database
from chronotrack.storage.database import Database
from web import queries
from web.errors import DatabaseUnavailable
from web.roster import ParsedRoster, parse_roster

EXIT_LINES_REJECTED = 1


def add_parsers(commands) -> None:
    group = commands.add_parser("roster", help="Import the runner roster.", description="Manage the runner roster.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    importing = actions.add_parser(
        "import", help="Import (insert or update by bib) runners from a CSV file.",
        description="Import (insert or update by bib) runners from a CSV file. Exit status: 0 all lines "
                    "imported; 1 some lines rejected (the good ones are imported); 2 nothing imported.")
    importing.add_argument("file", metavar="FILE", type=Path, help="CSV with a header line; a bib column is required.")
    importing.add_argument("--event", help="The event the runners are in: its id as the controllers report it "
                                           "(or its name when they report no id). Created if new. "
                                           "Default: the event of the newest session.")
    importing.add_argument("--partner", default="default", help="Slug of the timing partner (default: default).")
    add_database_options(importing)
    importing.set_defaults(run=run_import)
    roster_pull_command.add_parser(actions)


def report(parsed: ParsedRoster, imported: int, out: TextIO, err: TextIO) -> None:
    for problem in parsed.errors:
        print(f"rejected {problem}", file=err)
    if parsed.ignored_columns:
        print(f"ignored columns: {', '.join(parsed.ignored_columns)}", file=err)
    print(f"imported {_count(imported, 'runner')}; {_count(len(parsed.errors), 'line')} rejected", file=out)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


async def import_roster(database: Database, parsed: ParsedRoster, partner: str = "default",
                        event_key: str | None = None) -> int:
    """Upsert the runners into the event; returns the number of runners written."""
    if event_key is None:
        event_id = await queries.roster_event_id(database)
    else:
        event_id = await queries.event_id_for(database, partner, event_key)
        if event_id is None:
            raise UnknownPartner(partner)
    return await queries.upsert_participants(database, event_id, parsed.participants)


def run_import(arguments: argparse.Namespace) -> int:
    settings = resolve(arguments)
    try:
        data = arguments.file.read_bytes()
    except OSError as error:
        raise CommandFailed(f"cannot read {arguments.file}: {error.strerror}") from error
    parsed = parse_roster(data)
    if not parsed.participants:
        report(parsed, 0, sys.stdout, sys.stderr)
        return EXIT_FAILED

    async def work(database: Database) -> int:
        try:
            return await import_roster(database, parsed, arguments.partner, arguments.event)
        except DatabaseUnavailable as error:
            raise CommandFailed(f"database unavailable: {error}") from error
        except UnknownPartner as error:
            raise CommandFailed(str(error)) from error

    imported = run_on_database(settings, work)
    report(parsed, imported, sys.stdout, sys.stderr)
    return EXIT_LINES_REJECTED if parsed.errors else EXIT_OK
