"""``chronotrack simulate ...``: the controller simulator (also installed as ``chronotrack-simulate``)."""

from __future__ import annotations

from typing import Sequence

from chronotrack import simulator

HELP = "Simulate ChronoTrack controllers against a collector (see `chronotrack simulate --help`)."


def add_parsers(commands) -> None:
    """Listed in ``chronotrack --help``; ``main`` hands the arguments to ``run`` before parsing."""
    commands.add_parser("simulate", help=HELP, add_help=False)


def run(argv: Sequence[str]) -> int:
    """Runs the simulator; like ``chronotrack-simulate`` it ends the process with its exit status."""
    parser = simulator.build_parser()
    parser.prog = "chronotrack simulate"
    parser.parse_args(argv)  # --help and usage errors speak as `chronotrack simulate`
    simulator.main(list(argv))
    return 0
