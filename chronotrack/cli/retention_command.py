"""``chronotrack retention``: remove expired raw data now (the collector also does it every hour).

It deletes in the same small batches as the collector, so it can run while controllers are
sending. ``--dry-run`` only counts.
"""

from __future__ import annotations

import argparse
import sys

from chronotrack.storage import retention
from chronotrack.cli.output import print_table, when
from chronotrack.cli.running import DATABASE_SETTINGS, EXIT_OK, EXIT_REFUSED, CommandFailed, add_database_options, \
    resolve, run_on_database
from chronotrack.storage.database import Database


def add_parsers(commands) -> None:
    command = commands.add_parser(
        "retention", help="Delete raw reads older than the retention period now.",
        description="Delete raw reads, rejected lines and old controller connection records older than "
                    "--days (default: the collector's retention-days setting, 30), in batches, and say "
                    "how many went from each table. Sessions, events, rosters and resume points are kept.")
    command.add_argument("--days", type=int, metavar="N",
                         help="Keep this many days (default: $CHRONOTRACK_RETENTION_DAYS, the config file, or 30).")
    command.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
    command.add_argument("--batch-size", type=int, default=retention.BATCH_SIZE, metavar="ROWS",
                         help=f"Most rows deleted per statement (default {retention.BATCH_SIZE}).")
    add_database_options(command)
    command.set_defaults(run=run_retention)


def run_retention(arguments: argparse.Namespace) -> int:
    if arguments.days is not None and arguments.days < 1:
        raise CommandFailed("--days must be at least 1", EXIT_REFUSED)
    if arguments.batch_size < 1:
        raise CommandFailed("--batch-size must be at least 1", EXIT_REFUSED)
    arguments.retention_days = None if arguments.days is None else str(arguments.days)
    settings = resolve(arguments, (*DATABASE_SETTINGS, "retention-days"))
    days = settings["retention_days"]

    async def work(database: Database) -> retention.RetentionReport:
        if arguments.dry_run:
            return await retention.count_expired(database, days)
        return await retention.delete_expired(database, days, database.reactor, batch_size=arguments.batch_size)

    report = run_on_database(settings, work)
    verb = "would delete" if report.dry_run else "deleted"
    print(f"{verb} rows received before {when(report.cutoff)} ({days} days):")
    print_table(("TABLE", "WOULD DELETE" if report.dry_run else "DELETED"),
                [(table, report.removed[table]) for table in retention.TABLES], sys.stdout, empty="")
    if not report.dry_run:
        print(f"in {report.batches} batch{'' if report.batches == 1 else 'es'} "
              f"of at most {arguments.batch_size} rows")
    return EXIT_OK
