"""``chronotrack operator add|list|remove``: the people who sign in to the web pages."""

from __future__ import annotations

import argparse
import sys

from chronotrack.accounts import operators
from chronotrack.accounts.passwords import MIN_PASSWORD_LENGTH, hash_password, password_problem
from chronotrack.cli.output import print_table, when
from chronotrack.cli.password_input import read_new_password
from chronotrack.cli.running import EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, resolve, \
    run_on_database


def add_parsers(commands) -> None:
    group = commands.add_parser("operator", help="Add, list and remove operators (web sign-in).",
                                description="Operators sign in to the web pages; only an argon2id hash "
                                            "of their password is kept.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="Add an operator.",
        description=f"Add an operator. The password (at least {MIN_PASSWORD_LENGTH} characters) is read from "
                    "standard input (one line) when it is not a terminal, otherwise asked twice.")
    add.add_argument("slug", metavar="SLUG", help="The timing partner the operator works for.")
    add.add_argument("email", metavar="EMAIL", help="E-mail address to sign in with (stored in lower case).")
    add_database_options(add)
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="List operators.", description="List operators.")
    listing.add_argument("slug", nargs="?", metavar="SLUG", help="Only this partner's operators.")
    add_database_options(listing)
    listing.set_defaults(run=run_list)

    remove = actions.add_parser("remove", help="Remove an operator.", description="Remove an operator.")
    remove.add_argument("email", metavar="EMAIL", help="The operator's e-mail address.")
    add_database_options(remove)
    remove.set_defaults(run=run_remove)


def run_add(arguments: argparse.Namespace) -> int:
    email = operators.normalize_email(arguments.email)
    problem = operators.email_problem(email)
    if problem:
        raise CommandFailed(problem, EXIT_REFUSED)
    settings = resolve(arguments)
    password_hash = hash_password(read_new_password(password_problem))
    run_on_database(settings, lambda database: operators.add_operator(database, arguments.slug, email,
                                                                      password_hash))
    print(f"added operator {email} for partner {arguments.slug}")
    return EXIT_OK


def run_list(arguments: argparse.Namespace) -> int:
    found = run_on_database(resolve(arguments),
                            lambda database: operators.list_operators(database, arguments.slug))
    print_table(("EMAIL", "PARTNER", "CREATED", "DISABLED"),
                [(o.email, o.partner_slug, when(o.created_at), when(o.disabled_at)) for o in found],
                sys.stdout, empty="no operators")
    return EXIT_OK


def run_remove(arguments: argparse.Namespace) -> int:
    email = operators.normalize_email(arguments.email)
    removed = run_on_database(resolve(arguments), lambda database: operators.remove_operator(database, email))
    if not removed:
        raise CommandFailed(f"no operator {email!r}; see `chronotrack operator list`", EXIT_REFUSED)
    print(f"removed operator {email}")
    return EXIT_OK
