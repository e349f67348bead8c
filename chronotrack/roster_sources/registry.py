"""The platforms a roster can be pulled from, built with the hub's configured base URLs."""

from __future__ import annotations

from chronotrack.outbound.settings import OutboundSettings
from chronotrack.roster_sources.base import RosterSource
from chronotrack.roster_sources.chronotrack_live import ChronoTrackLive
from chronotrack.roster_sources.race_roster import RaceRoster
from chronotrack.roster_sources.runsignup import RunSignUp

SOURCE_NAMES = ("chronotrack_live", "runsignup", "race_roster")


def roster_sources(settings: OutboundSettings) -> dict[str, RosterSource]:
    return {"chronotrack_live": ChronoTrackLive(settings.chronotrack_live_url),
            "runsignup": RunSignUp(settings.runsignup_url),
            "race_roster": RaceRoster(settings.race_roster_url)}
