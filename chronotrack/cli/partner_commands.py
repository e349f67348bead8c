"""``chronotrack partner add|list``: the timing companies that share the hub."""

from __future__ import annotations

import argparse
import sys

from chronotrack.accounts import partners
from chronotrack.cli.output import print_table, when
from chronotrack.cli.running import EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, resolve, \
    run_on_database


def add_parsers(commands) -> None:
    group = commands.add_parser("partner", help="Add and list timing partners.",
                                description="Timing partners: the timing companies that share this hub.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="Add a timing partner.", description="Add a timing partner.")
    add.add_argument("slug", metavar="SLUG",
                     help="Short name: 1-63 lower-case letters, digits and dashes (e.g. acme-timing).")
    add.add_argument("--name", help="Display name (default: the slug).")
    add_database_options(add)
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="List the timing partners.", description="List the timing partners.")
    add_database_options(listing)
    listing.set_defaults(run=run_list)


def run_add(arguments: argparse.Namespace) -> int:
    problem = partners.slug_problem(arguments.slug)
    if problem:
        raise CommandFailed(problem, EXIT_REFUSED)
    partner = run_on_database(resolve(arguments),
                              lambda database: partners.add_partner(database, arguments.slug, arguments.name))
    print(f"added timing partner {partner.slug} ({partner.name})")
    return EXIT_OK


def run_list(arguments: argparse.Namespace) -> int:
    found = run_on_database(resolve(arguments), partners.list_partners)
    print_table(("SLUG", "NAME", "CREATED"), [(p.slug, p.name, when(p.created_at)) for p in found],
                sys.stdout, empty="no timing partners")
    return EXIT_OK
