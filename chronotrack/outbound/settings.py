"""The hub's settings for talking to other sites, taken from the one settings table (``config.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from chronotrack.accounts.secret_box import key_file_path

# The settings (config.py names) a process that serves the web pages reads for outbound requests.
OUTBOUND_SETTINGS = ("roster-chronotrack-live-url", "roster-runsignup-url", "roster-race-roster-url",
                     "outbound-timeout", "brand-fetch-allow-private")

DEFAULT_CHRONOTRACK_LIVE_URL = "https://api.chronotrack.com"
DEFAULT_RUNSIGNUP_URL = "https://runsignup.com"
DEFAULT_RACE_ROSTER_URL = "https://raceroster.com"


@dataclass(frozen=True)
class OutboundSettings:
    chronotrack_live_url: str = DEFAULT_CHRONOTRACK_LIVE_URL
    runsignup_url: str = DEFAULT_RUNSIGNUP_URL
    race_roster_url: str = DEFAULT_RACE_ROSTER_URL
    timeout: float = 15.0
    brand_allow_private: bool = False
    secret_key_file: Path | None = None  # None: credentials cannot be remembered

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "OutboundSettings":
        data_dir = settings.get("data_dir")
        key_file = (key_file_path(Path(data_dir), settings.get("secret_key_file"))
                    if data_dir or settings.get("secret_key_file") else None)
        return cls(
            chronotrack_live_url=(settings.get("roster_chronotrack_live_url") or DEFAULT_CHRONOTRACK_LIVE_URL),
            runsignup_url=settings.get("roster_runsignup_url") or DEFAULT_RUNSIGNUP_URL,
            race_roster_url=settings.get("roster_race_roster_url") or DEFAULT_RACE_ROSTER_URL,
            timeout=float(settings.get("outbound_timeout") or 15.0),
            brand_allow_private=bool(settings.get("brand_fetch_allow_private") or False),
            secret_key_file=key_file)
