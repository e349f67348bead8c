"""``chronotrack controller add|list|remove``: the logins controllers use with CTP01 ``authorize``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chronotrack.accounts import controllers
from chronotrack.accounts.partners import partner_id
from chronotrack.accounts.secret_box import SecretBox, SecretKeyError, key_file_path
from chronotrack.cli.output import print_table, when
from chronotrack.cli.password_input import read_new_password
from chronotrack.cli.running import EXIT_OK, EXIT_REFUSED, CommandFailed, DATABASE_SETTINGS, \
    add_database_options, resolve, run_on_database
from chronotrack.storage.database import Database


def add_parsers(commands) -> None:
    group = commands.add_parser("controller", help="Add, list and remove controller logins.",
                                description="Controller logins for CTP01 authorize. Passwords are kept "
                                            "encrypted with the server key, never printed.")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="Add a controller login.",
        description="Add a controller login. The password is read from standard input (one line) when it "
                    "is not a terminal, otherwise asked twice. It is sent inside CTP01 lines, so it may "
                    "not be empty, contain '~', CR, LF or NUL, or be over 128 characters.")
    add.add_argument("slug", metavar="SLUG", help="The timing partner the controller belongs to.")
    add.add_argument("user", metavar="USER",
                     help="User id: 1-64 letters, digits, '.', '_', '@', '-'; unique across partners.")
    add_database_options(add, secret_key_file=True)
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="List controller logins (never their passwords).",
                                 description="List controller logins (never their passwords).")
    listing.add_argument("slug", nargs="?", metavar="SLUG", help="Only this partner's logins.")
    add_database_options(listing)
    listing.set_defaults(run=run_list)

    remove = actions.add_parser("remove", help="Remove a controller login.",
                                description="Remove a controller login.")
    remove.add_argument("user", metavar="USER", help="The login's user id.")
    add_database_options(remove)
    remove.set_defaults(run=run_remove)


def run_add(arguments: argparse.Namespace) -> int:
    problem = controllers.user_id_problem(arguments.user)
    if problem:
        raise CommandFailed(problem, EXIT_REFUSED)
    settings = resolve(arguments, DATABASE_SETTINGS + ("secret-key-file",))
    key_path = key_file_path(Path(settings["data_dir"]), settings["secret_key_file"]).absolute()
    password = read_new_password(controllers.controller_password_problem)

    async def add(database: Database) -> bool:
        await partner_id(database, arguments.slug)  # an unknown partner creates no key file
        key_existed = key_path.exists()
        box = await _server_key(database, key_path)
        await controllers.add_controller(database, arguments.slug, arguments.user, box.encrypt(password))
        return key_existed

    key_existed = run_on_database(settings, add)
    print(f"added controller login {arguments.user} for partner {arguments.slug}")
    if key_existed:
        print(f"password encrypted with the server key {key_path}")
    else:
        print(f"password encrypted with a new server key, created at {key_path} (mode 0600); "
              "every collector sharing this database needs this file (--secret-key-file)")
    return EXIT_OK


async def _server_key(database: Database, path: Path) -> SecretBox:
    """The server key at ``path``, created when missing, refused if it cannot read the passwords stored."""
    stored = await controllers.any_encrypted_password(database)
    if stored is not None and not path.exists():
        raise CommandFailed(f"controller passwords are already stored, encrypted with a server key that is not "
                            f"at {path}; point --secret-key-file (or CHRONOTRACK_SECRET_KEY_FILE) at the "
                            "collector's key file")
    try:
        box = SecretBox.from_file(path)
    except SecretKeyError as error:
        raise CommandFailed(str(error)) from error
    try:
        if stored is not None:
            box.decrypt(stored)
    except SecretKeyError as error:
        raise CommandFailed(f"the server key {path} cannot decrypt the controller passwords already "
                            "stored; point --secret-key-file at the collector's key file") from error
    return box


def run_list(arguments: argparse.Namespace) -> int:
    found = run_on_database(resolve(arguments),
                            lambda database: controllers.list_controllers(database, arguments.slug))
    print_table(("USER", "PARTNER", "CREATED"), [(c.user_id, c.partner_slug, when(c.created_at)) for c in found],
                sys.stdout, empty="no controller logins")
    return EXIT_OK


def run_remove(arguments: argparse.Namespace) -> int:
    removed = run_on_database(resolve(arguments),
                              lambda database: controllers.remove_controller(database, arguments.user))
    if not removed:
        raise CommandFailed(f"no controller login {arguments.user!r}; see `chronotrack controller list`",
                            EXIT_REFUSED)
    print(f"removed controller login {arguments.user}")
    return EXIT_OK
