"""What every database subcommand shares: its options, its settings, and one database session.

A subcommand resolves ``--dsn``/``--data-dir``/``--config`` (and their environment
variables) the way the collector does, uses the embedded server of ``make run`` when no
DSN is given (starting it only if it is not already running, and stopping it afterwards
only if it started it here), brings the schema up to date, and runs its work on a reactor.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, TypeVar

import psycopg2
from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred
from txpostgres.reconnection import ConnectionDead

from chronotrack.config import SETTINGS_BY_NAME, ConfigError, resolve_settings
from chronotrack.storage.database import Database, redact_dsn
from chronotrack.storage.embedded_db import EmbeddedDatabaseError, EmbeddedPostgres
from chronotrack.storage.migrations import migrate

EXIT_OK = 0
EXIT_REFUSED = 1  # the request itself cannot be carried out: bad value, taken name, nothing to remove
EXIT_FAILED = 2  # the command could not run: settings, database unreachable, server key
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = ("Exit status: 0 done; 1 refused (bad value, name taken, unknown name); "
                    "2 could not run (settings, database unreachable, server key).")

DATABASE_SETTINGS = ("dsn", "data-dir")
CONNECT_TIMEOUT = 30.0  # seconds; libpq's connect_timeout does not apply to asynchronous connections

T = TypeVar("T")


class CommandFailed(Exception):
    """End the command with this one-line message on standard error and this exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def add_database_options(parser: argparse.ArgumentParser, secret_key_file: bool = False) -> None:
    """--dsn, --data-dir and --config (and --secret-key-file where the server key is used)."""
    options = parser.add_argument_group("database (as for the collector)")
    options.add_argument("--dsn", help="PostgreSQL DSN (default: $CHRONOTRACK_DSN, the config file, "
                                       "or the embedded server in the data directory).")
    options.add_argument("--data-dir", help="Data directory of the embedded server "
                                            "(default: $CHRONOTRACK_DATA_DIR, the config file, or ./var).")
    options.add_argument("--config", help="INI file with a [chronotrack] section "
                                          "(default: $CHRONOTRACK_CONFIG, or ./chronotrack.ini if present).")
    if secret_key_file:
        options.add_argument("--secret-key-file",
                             help="Server key that encrypts controller passwords; created (mode 0600) when "
                                  "missing (default: $CHRONOTRACK_SECRET_KEY_FILE, the config file, "
                                  "or secret.key in the data directory).")


def resolve(arguments: argparse.Namespace, names: tuple[str, ...] = DATABASE_SETTINGS) -> dict[str, Any]:
    """The settings this command needs; a bad value ends the command naming its source."""
    given = {name: getattr(arguments, SETTINGS_BY_NAME[name].attribute, None) for name in names}
    try:
        return resolve_settings(given, config_path=arguments.config, names=names)
    except ConfigError as error:
        raise CommandFailed(str(error)) from error


def run_on_database(settings: Mapping[str, Any], work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work(database)`` on a reactor with the schema up to date; returns what it returns."""
    embedded = None if settings["dsn"] else EmbeddedPostgres(Path(settings["data_dir"]), owner=False)
    try:
        dsn = settings["dsn"] or embedded.start_blocking()
    except EmbeddedDatabaseError as error:
        raise CommandFailed(f"cannot start the embedded database: {error}") from error
    try:
        return react(lambda reactor: _with_database(reactor, dsn, work))
    finally:
        if embedded is not None and embedded.started_here:
            embedded.stop_blocking()  # we started it, so nobody else is using it


async def _with_database(reactor, dsn: str, work: Callable[[Database], Awaitable[T]]) -> T:
    try:
        database = Database(reactor, dsn, pool_size=1)
    except ValueError as error:  # the message hides the password
        raise CommandFailed(str(error)) from error
    try:
        if not await _connected_in_time(reactor, database):
            reason = database.last_error or f"no answer within {CONNECT_TIMEOUT:g} seconds"
            raise CommandFailed(f"cannot reach the database ({redact_dsn(dsn)}): {reason}")
        await migrate(database)
        return await work(database)
    except (psycopg2.Error, ConnectionDead) as error:
        raise CommandFailed(f"database error ({redact_dsn(dsn)}): {_first_line(error)}") from error
    finally:
        database.close()


def _connected_in_time(reactor, database: Database) -> Deferred[bool]:
    """``database.start()``, or False after CONNECT_TIMEOUT (txpostgres cannot cancel a connect)."""
    outcome: Deferred[bool] = Deferred()
    timer = reactor.callLater(CONNECT_TIMEOUT, outcome.callback, False)

    def started(connected: bool) -> None:
        if not outcome.called:
            timer.cancel()
            outcome.callback(connected)

    database.start().addCallback(started)
    return outcome


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def react(work: Callable[[Any], Awaitable[T]]) -> T:
    """``task.react`` without its ``sys.exit``: run ``work(reactor)``, return its result or raise its error."""
    outcome: dict[str, Any] = {}

    def guarded(reactor):
        def failed(failure) -> None:
            outcome["failure"] = failure  # raised again after the reactor stops

        d = ensureDeferred(work(reactor))
        d.addCallbacks(lambda result: outcome.update(result=result), failed)
        return d

    try:
        task.react(guarded)
    except SystemExit:
        pass
    if "failure" in outcome:
        outcome["failure"].raiseException()
    if "result" not in outcome:  # the reactor stopped first: Ctrl-C or a signal
        raise CommandFailed("interrupted before it finished", EXIT_INTERRUPTED)
    return outcome["result"]
