"""``chronotrack``: one command for the hub's administration, with a subcommand per task.

Every database subcommand takes ``--dsn``, ``--data-dir`` and ``--config`` (or
CHRONOTRACK_DSN, CHRONOTRACK_DATA_DIR, CHRONOTRACK_CONFIG) and works against the embedded
database of ``make run`` whether the collector is running or not.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from chronotrack.accounts.errors import AccountError
from chronotrack.cli import (controller_commands, export_commands, operator_commands, partner_commands,
                             readonly_commands, retention_command, roster_commands, simulate_command,
                             token_commands)
from chronotrack.cli.running import EXIT_INTERRUPTED, EXIT_REFUSED, EXIT_STATUS_HELP, CommandFailed

PROGRAM = "chronotrack"
DESCRIPTION = ("Administer the race-timing hub: timing partners, controller logins, operators, "
               "API tokens, the roster, exports, raw-data retention, read-only database roles, and the "
               "controller simulator.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=DESCRIPTION,
                                     epilog=EXIT_STATUS_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (partner_commands, controller_commands, operator_commands, token_commands, roster_commands,
                  export_commands, retention_command, readonly_commands, simulate_command):
        group.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        return simulate_command.run(argv[1:])
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except CommandFailed as failure:
        print(f"{PROGRAM}: {failure}", file=sys.stderr)
        return failure.status
    except AccountError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def roster_alias(argv: Sequence[str] | None = None) -> int:
    """``chronotrack-roster ...`` is ``chronotrack roster ...``."""
    return main(["roster", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
