"""A new password, from standard input when it is piped, otherwise typed twice at a prompt.

The password is never echoed, logged or quoted in a message.
"""

from __future__ import annotations

import getpass
import sys
from typing import Callable, TextIO

from chronotrack.cli.running import EXIT_REFUSED, CommandFailed

READ_LIMIT = 4096  # more than any accepted password; a longer line is refused by its length


def read_new_password(problem: Callable[[str], str | None], stdin: TextIO | None = None,
                      prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The password, checked by ``problem`` (which says why a password is refused, or None)."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin.isatty():
        try:
            password = prompt("Password: ")
            _check(problem, password)
            if prompt("Password again: ") != password:
                raise CommandFailed("the two passwords typed differ", EXIT_REFUSED)
        except EOFError:
            raise CommandFailed("no password typed", EXIT_REFUSED) from None
        return password
    line = stdin.readline(READ_LIMIT)
    if not line:
        raise CommandFailed("no password on standard input (give it as one line)", EXIT_REFUSED)
    password = line[:-1] if line.endswith("\n") else line
    password = password[:-1] if password.endswith("\r") else password
    _check(problem, password)
    return password


def _check(problem: Callable[[str], str | None], password: str) -> None:
    refused = problem(password)
    if refused:
        raise CommandFailed(refused, EXIT_REFUSED)
