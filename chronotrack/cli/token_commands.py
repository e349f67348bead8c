"""``chronotrack token create|list|revoke``: bearer tokens for the JSON API and /stream."""

from __future__ import annotations

import argparse
import sys

from chronotrack.accounts import api_tokens
from chronotrack.cli.output import print_table, when
from chronotrack.cli.running import EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, resolve, \
    run_on_database


def add_parsers(commands) -> None:
    group = commands.add_parser("token", help="Create, list and revoke API tokens.",
                                description="Bearer tokens for the JSON API and /stream. A token is shown "
                                            "once, when it is created; only its SHA-256 hash is kept.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="Create a token and print it (once, on the last line).",
                                description="Create a token and print it, once, on the last line of output.")
    create.add_argument("slug", metavar="SLUG", help="The timing partner whose data the token may read.")
    create.add_argument("--name", default="", help="What the token is for (e.g. scoreboard).")
    add_database_options(create)
    create.set_defaults(run=run_create)

    listing = actions.add_parser("list", help="List tokens (never the tokens themselves).",
                                 description="List tokens: id, partner, name, created, last used, revoked.")
    listing.add_argument("slug", nargs="?", metavar="SLUG", help="Only this partner's tokens.")
    add_database_options(listing)
    listing.set_defaults(run=run_list)

    revoke = actions.add_parser("revoke", help="Revoke a token.", description="Revoke a token by its id.")
    revoke.add_argument("id", metavar="ID", type=int, help="The token's id, as `chronotrack token list` shows it.")
    add_database_options(revoke)
    revoke.set_defaults(run=run_revoke)


def run_create(arguments: argparse.Namespace) -> int:
    created = run_on_database(resolve(arguments),
                              lambda database: api_tokens.create_api_token(database, arguments.slug, arguments.name))
    label = f" ({arguments.name.strip()})" if arguments.name.strip() else ""
    print(f"created API token {created.id}{label} for partner {arguments.slug}; "
          "it is shown only this once, so store it now:")
    print(created.token, flush=True)
    return EXIT_OK


def run_list(arguments: argparse.Namespace) -> int:
    found = run_on_database(resolve(arguments),
                            lambda database: api_tokens.list_api_tokens(database, arguments.slug))
    print_table(("ID", "PARTNER", "NAME", "CREATED", "LAST USED", "REVOKED"),
                [(t.id, t.partner_slug, t.name or "-", when(t.created_at), when(t.last_used_at),
                  when(t.revoked_at)) for t in found],
                sys.stdout, empty="no API tokens")
    return EXIT_OK


def run_revoke(arguments: argparse.Namespace) -> int:
    revoked = run_on_database(resolve(arguments),
                              lambda database: api_tokens.revoke_api_token(database, arguments.id))
    if revoked is None:
        raise CommandFailed(f"no API token {arguments.id}; see `chronotrack token list`", EXIT_REFUSED)
    revoked_at, already = revoked
    if already:
        print(f"API token {arguments.id} was already revoked at {when(revoked_at)}")
    else:
        print(f"revoked API token {arguments.id}")
    return EXIT_OK
