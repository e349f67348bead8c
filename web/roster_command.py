"""``chronotrack-roster`` (and ``python -m web.roster_command``): kept for old scripts.

The command now lives in ``chronotrack.cli.roster_commands`` as ``chronotrack roster import``.
"""

from __future__ import annotations

import sys

from chronotrack.cli.main import roster_alias as main
from chronotrack.cli.roster_commands import import_roster, report

__all__ = ["import_roster", "main", "report"]

if __name__ == "__main__":
    sys.exit(main())
