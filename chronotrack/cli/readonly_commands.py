"""``chronotrack readonly-role NAME [--partner SLUG]``: a PostgreSQL login for query tools.

The role can log in and SELECT the views of 0005_readonly_views.sql (reads_with_runners,
latest_reads, event_summary) and nothing else: no table, so neither credentials,
password hashes, tokens nor web sessions, and no writes. With ``--partner`` the views
show it that partner's rows only. Running the command again updates the role: new
password, and the partner as given now (without ``--partner``: every partner).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

import psycopg2.extensions
from twisted.internet.defer import inlineCallbacks

from chronotrack.accounts.passwords import password_problem
from chronotrack.cli.password_input import read_new_password
from chronotrack.cli.running import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, \
    resolve, run_on_database
from chronotrack.storage.database import Database

READONLY_VIEWS = ("reads_with_runners", "latest_reads", "event_summary")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def add_parsers(commands) -> None:
    command = commands.add_parser(
        "readonly-role", help="Create or update a read-only PostgreSQL role for query tools.",
        description="Create (or update) a PostgreSQL login role that can only SELECT the views "
                    f"{', '.join(READONLY_VIEWS)}: for a query assistant, PostgREST or psql. It can read "
                    "no table, so no credentials, password hashes, tokens or web sessions, and write "
                    "nothing. The password is read from standard input (one line) when it is not a "
                    "terminal, otherwise asked twice. The database user needs CREATEROLE (or to be a "
                    "superuser, as with the embedded server) and to own the views.")
    command.add_argument("name", metavar="NAME",
                         help="Role name: lower-case letters, digits and underscores (e.g. query_assistant).")
    command.add_argument("--partner", metavar="SLUG",
                         help="Show this timing partner's rows only (default: every partner).")
    add_database_options(command)
    command.set_defaults(run=run_readonly_role)


def role_name_problem(name: str) -> str | None:
    if not _ROLE_NAME.match(name):
        return (f"{name!r} is not a usable role name: 1-63 lower-case letters, digits and underscores, "
                "not starting with a digit")
    if name.startswith("pg_"):
        return "role names starting with pg_ are reserved by PostgreSQL"
    return None


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class RoleResult:
    created: bool
    partner: str | None


class _Refused(Exception):
    def __init__(self, message: str, status: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.status = status


@inlineCallbacks
def _make_role(cursor, name: str, password: str, partner_slug: str | None):
    yield cursor.execute("SELECT current_user, current_database(), r.rolsuper, r.rolcreaterole"
                         " FROM pg_roles r WHERE r.rolname = current_user")
    me, database_name, superuser, create_role = cursor.fetchone()
    if name == me:
        raise _Refused(f"{name} is the database user this command runs as; choose another name")
    if not (superuser or create_role):
        raise _Refused(f"the database user {me} cannot create roles: it needs CREATEROLE (ALTER ROLE {me} "
                       "CREATEROLE, as a superuser) or run this command with a DSN of a user that has it",
                       EXIT_FAILED)
    partner_id = None
    if partner_slug is not None:
        yield cursor.execute("SELECT id FROM timing_partners WHERE slug = %s", (partner_slug,))
        row = cursor.fetchone()
        if row is None:
            raise _Refused(f"no timing partner {partner_slug!r}; see `chronotrack partner list`")
        partner_id = row[0]
    yield cursor.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"
                         " FROM pg_roles WHERE rolname = %s", (name,))
    existing = cursor.fetchone()
    yield cursor.execute("SELECT 1 FROM readonly_roles WHERE role_name = %s", (name,))
    ours = cursor.fetchone() is not None
    if existing is not None and (not ours or existing[0]):
        raise _Refused(f"a role {name} already exists and is not a read-only role made by this command; "
                       "choose another name")
    # Only the SCRAM verifier goes to the server: the password is never in a statement it could log.
    verifier = psycopg2.extensions.encrypt_password(password, name, cursor._cursor, "scram-sha-256")
    role = _identifier(name)
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
    if existing is None:
        yield cursor.execute(f"CREATE ROLE {role} {attributes} PASSWORD %s", (verifier,))
    else:
        yield cursor.execute(f"ALTER ROLE {role} {attributes} PASSWORD %s", (verifier,))
    yield cursor.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    # A clean slate on every run: whatever this role was granted before goes.
    yield cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    yield cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    yield cursor.execute(f"GRANT CONNECT ON DATABASE {_identifier(database_name)} TO {role}")
    yield cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    yield cursor.execute(f"GRANT SELECT ON {', '.join(READONLY_VIEWS)} TO {role}")
    yield cursor.execute(
        "INSERT INTO readonly_roles (role_name, timing_partner_id) VALUES (%s, %s)"
        " ON CONFLICT (role_name) DO UPDATE SET timing_partner_id = excluded.timing_partner_id, updated_at = now()",
        (name, partner_id))
    return RoleResult(created=existing is None, partner=partner_slug)


async def make_readonly_role(database: Database, name: str, password: str, partner_slug: str | None) -> RoleResult:
    try:
        return await database.run_interaction(_make_role, name, password, partner_slug)
    except _Refused as refused:
        raise CommandFailed(str(refused), refused.status) from None
    except psycopg2.errors.InsufficientPrivilege as error:
        first = str(error).strip().splitlines()[0]
        raise CommandFailed(f"the database refused ({first}): the DSN's user needs CREATEROLE and must own "
                            f"the views {', '.join(READONLY_VIEWS)} (the user the collector migrates with)",
                            EXIT_FAILED) from error


def run_readonly_role(arguments: argparse.Namespace) -> int:
    problem = role_name_problem(arguments.name)
    if problem:
        raise CommandFailed(problem, EXIT_REFUSED)
    settings = resolve(arguments)
    password = read_new_password(password_problem)
    result = run_on_database(settings, lambda database: make_readonly_role(database, arguments.name, password,
                                                                           arguments.partner))
    scope = f"partner {result.partner} only" if result.partner else "every partner"
    print(f"{'created' if result.created else 'updated'} read-only role {arguments.name}: "
          f"SELECT on {', '.join(READONLY_VIEWS)} ({scope})")
    return EXIT_OK
