"""``chronotrack export`` and ``chronotrack event list``: a session's or an event's reads for results software.

The export goes to standard output or ``--output FILE`` page by page as it is read (see
``chronotrack.exports``), so an event of a million reads needs no more memory than one page.
A file is written under a temporary name and renamed when complete: an interrupted export
never leaves a file that looks finished.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import BinaryIO

from chronotrack import exports
from chronotrack.cli.output import print_table
from chronotrack.cli.running import EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, resolve, \
    run_on_database
from chronotrack.storage.database import Database


def add_parsers(commands) -> None:
    export = commands.add_parser(
        "export", help="Export a session's or an event's reads as CSV or CT01.",
        description="Write the reads of one session (--session) or of every session of an event (--event) "
                    "to standard output or a file: CSV with a header (event, runner name from the roster, "
                    "and the read's columns), or a CT01_33 text file of the lines exactly as the controllers "
                    "sent them (CR LF), which RunScore, Race Director and other results software import.")
    export.add_argument("--session", type=_positive_id, metavar="ID", help="The session's id (see /sessions).")
    export.add_argument("--event", type=_positive_id, metavar="ID",
                        help="The event's id (see `chronotrack event list`): every session of the event.")
    export.add_argument("--location", metavar="NAME", help="Only the reads of this timing location.")
    export.add_argument("--format", choices=exports.FORMATS, required=True, help="csv or ct01.")
    export.add_argument("--output", type=Path, metavar="FILE", help="Write here instead of standard output.")
    export.add_argument("--partner", metavar="SLUG",
                        help="Refuse the session or event unless it belongs to this timing partner.")
    add_database_options(export)
    export.set_defaults(run=run_export)

    group = commands.add_parser("event", help="List events (with the ids `export --event` takes).",
                                description="Events as the controllers report them, per timing partner.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="List events with their sessions and read counts.",
                                 description="List events with their partner, key, name, sessions and reads.")
    listing.add_argument("partner", nargs="?", metavar="SLUG", help="Only this timing partner's events.")
    add_database_options(listing)
    listing.set_defaults(run=run_event_list)


def _positive_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 2**62:
        raise argparse.ArgumentTypeError(f"not an id: {text!r}")
    return value


def run_export(arguments: argparse.Namespace) -> int:
    if (arguments.session is None) == (arguments.event is None):
        which = "both" if arguments.session is not None else "neither"
        raise CommandFailed(f"give exactly one of --session ID and --event ID ({which} given)", EXIT_REFUSED)
    settings = resolve(arguments)

    async def find(database: Database) -> exports.ExportTarget:
        if arguments.session is not None:
            target = await exports.find_session(database, arguments.session, partner_slug=arguments.partner)
            kind, number = "session", arguments.session
        else:
            target = await exports.find_event(database, arguments.event, partner_slug=arguments.partner)
            kind, number = "event", arguments.event
        if target is None:
            whose = f" of timing partner {arguments.partner!r}" if arguments.partner else ""
            raise CommandFailed(f"no {kind} {number}{whose}", EXIT_REFUSED)
        return target

    async def work(database: Database) -> int:
        target = await find(database)
        if arguments.output is None:
            out = sys.stdout.buffer
            count = await exports.write_export(database, target, arguments.format, _writer(out),
                                               arguments.location)
            out.flush()
            return count
        return await _export_to_file(database, target, arguments)

    try:
        count = run_on_database(settings, work)
    except BrokenPipeError:  # `chronotrack export ... | head`: the reader has all it wants
        sys.stdout = open(os.devnull, "w")  # nothing left to flush at exit
        raise CommandFailed("the output was closed before the export finished") from None
    where = f" to {arguments.output}" if arguments.output else ""
    print(f"exported {count} read{'' if count == 1 else 's'}{where}", file=sys.stderr)
    return EXIT_OK


def _writer(out: BinaryIO):
    def write(data: bytes) -> None:
        out.write(data)
    return write


async def _export_to_file(database: Database, target: exports.ExportTarget, arguments: argparse.Namespace) -> int:
    final: Path = arguments.output
    partial = final.with_name(final.name + ".partial")
    try:
        out = open(partial, "wb")
    except OSError as error:
        raise CommandFailed(f"cannot write {final}: {error.strerror}", EXIT_REFUSED) from error
    try:
        with out:
            count = await exports.write_export(database, target, arguments.format, _writer(out), arguments.location)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def run_event_list(arguments: argparse.Namespace) -> int:
    found = run_on_database(resolve(arguments), lambda database: exports.list_events(database, arguments.partner))
    print_table(("ID", "PARTNER", "KEY", "NAME", "SESSIONS", "READS"),
                [(e.id, e.partner_slug, e.key or "-", e.name or "-", e.sessions, e.reads) for e in found],
                sys.stdout, empty="no events")
    return EXIT_OK
