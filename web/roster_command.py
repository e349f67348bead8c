"""``chronotrack-roster import FILE``: load a roster CSV into the timing database.

It uses the same settings (``--dsn``, ``CHRONOTRACK_DSN``, the config file, the embedded
server in ``--data-dir``), the same schema upgrade and the same upsert as the web page,
so a roster imported either way is the same roster. Good rows are imported even when some
lines are bad; the exit status is 1 when any line was rejected, so scripts notice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence, TextIO

from twisted.internet import task
from twisted.internet.defer import ensureDeferred

from chronotrack.config import ConfigError, resolve_settings
from chronotrack.database import Database
from chronotrack.embedded_db import EmbeddedDatabaseError, EmbeddedPostgres
from chronotrack.migrations import migrate
from web import queries
from web.errors import DatabaseUnavailable
from web.roster import ParsedRoster, parse_roster

EXIT_OK = 0
EXIT_LINES_REJECTED = 1
EXIT_FAILED = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronotrack-roster", description="Manage the runner roster.")
    commands = parser.add_subparsers(dest="command", required=True)
    importing = commands.add_parser("import", help="Import (insert or update by bib) runners from a CSV file.")
    importing.add_argument("file", type=Path, help="CSV with a header line; a bib column is required.")
    importing.add_argument("--event", help="The event the runners are in: its id as the controllers report it "
                                           "(or its name when they report no id). Created if new. "
                                           "Default: the event of the newest session.")
    importing.add_argument("--partner", default="default", help="Slug of the timing partner (default: default).")
    importing.add_argument("--dsn", help="PostgreSQL DSN (default: $CHRONOTRACK_DSN, the config file, "
                                         "or the embedded server in the data directory).")
    importing.add_argument("--data-dir", help="Data directory of the embedded server (default ./var).")
    importing.add_argument("--config", help="Config file with a [chronotrack] section.")
    return parser


def report(parsed: ParsedRoster, imported: int, out: TextIO, err: TextIO) -> None:
    for problem in parsed.errors:
        print(f"rejected {problem}", file=err)
    if parsed.ignored_columns:
        print(f"ignored columns: {', '.join(parsed.ignored_columns)}", file=err)
    print(f"imported {_count(imported, 'runner')}; {_count(len(parsed.errors), 'line')} rejected", file=out)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class UnknownPartner(LookupError):
    """The --partner slug names no timing partner."""


async def import_roster(reactor, dsn: str, parsed: ParsedRoster, partner: str = "default",
                        event_key: str | None = None) -> int:
    """Connect, bring the schema up to date, upsert; returns the number of runners written."""
    database = Database(reactor, dsn, pool_size=1)
    try:
        if not await database.start():
            raise DatabaseUnavailable(database.last_error or "cannot connect")
        await migrate(database)
        if event_key is None:
            event_id = await queries.roster_event_id(database)
        else:
            event_id = await queries.event_id_for(database, partner, event_key)
            if event_id is None:
                raise UnknownPartner(partner)
        return await queries.upsert_participants(database, event_id, parsed.participants)
    finally:
        database.close()


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        settings = resolve_settings({"dsn": arguments.dsn, "data-dir": arguments.data_dir},
                                    config_path=arguments.config, names=("dsn", "data-dir"))
    except ConfigError as error:
        print(f"chronotrack-roster: {error}", file=err)
        return EXIT_FAILED
    try:
        data = arguments.file.read_bytes()
    except OSError as error:
        print(f"chronotrack-roster: cannot read {arguments.file}: {error.strerror}", file=err)
        return EXIT_FAILED
    parsed = parse_roster(data)
    if not parsed.participants:
        report(parsed, 0, out, err)
        return EXIT_FAILED

    embedded = None if settings["dsn"] else EmbeddedPostgres(Path(settings["data_dir"]), owner=False)
    try:
        dsn = settings["dsn"] or embedded.start_blocking()
    except EmbeddedDatabaseError as error:
        print(f"chronotrack-roster: {error}", file=err)
        return EXIT_FAILED
    outcome: dict[str, int] = {}

    async def run(reactor) -> None:
        outcome["imported"] = await import_roster(reactor, dsn, parsed, arguments.partner, arguments.event)

    try:
        _react(lambda reactor: ensureDeferred(run(reactor)))
    except DatabaseUnavailable as error:
        print(f"chronotrack-roster: database unavailable: {error}", file=err)
        return EXIT_FAILED
    except UnknownPartner as error:
        print(f"chronotrack-roster: no timing partner {error}; see `chronotrack partner list`", file=err)
        return EXIT_FAILED
    finally:
        if embedded is not None and embedded.started_here:
            embedded.stop_blocking()  # we started it, nobody else is using it
    report(parsed, outcome["imported"], out, err)
    return EXIT_LINES_REJECTED if parsed.errors else EXIT_OK


def _react(work) -> None:
    """``task.react`` without its ``sys.exit``: run ``work`` on the reactor, re-raise its failure."""
    failures = []

    def guarded(reactor):
        return work(reactor).addErrback(lambda failure: failures.append(failure))

    try:
        task.react(guarded)
    except SystemExit:
        pass
    if failures:
        failures[0].raiseException()


if __name__ == "__main__":
    sys.exit(main())
