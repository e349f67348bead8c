"""A real headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Installed on demand when we run as root (apt-get), skipped when it cannot be had on a
developer's machine, and never skipped under CI (``CI=true``): there a missing browser is
a failure, so the browser tests cannot silently stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


def ensure_chromium() -> str:
    """The path of Debian's chromium, installing it first when missing and we are root."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update"], check=False, env=environment, capture_output=True)
        install = subprocess.run(["apt-get", "install", "-y", "chromium"], env=environment,
                                 capture_output=True, text=True)
        if install.returncode != 0:
            _unavailable(f"apt-get install chromium failed: {install.stderr.strip()[-500:]}")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install playwright)")
    return str(CHROMIUM)


def launch(playwright):
    """Launch headless chromium with the flags that keep it quiet and runnable as root."""
    return playwright.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS, headless=True)
