"""``twistd chronotrack-collector --web none`` (the display served by its own process) does not
load the web layer: its modules, templates and image library were some 8 MB of the collector's
resident memory (bench/memory.py: idle 70.5 -> 62.3 MB)."""

import subprocess
import sys

WEB_LAYER = ("web", "jinja2", "PIL", "treq")

_BUILD_THE_COLLECTOR = """
import sys
from twisted.internet.testing import MemoryReactorClock
from chronotrack.tap import Options, makeService

options = Options()
options.parseOptions(["--data-dir", sys.argv[1], "--dsn", "host=/nowhere dbname=x", "--status", "none",
                      "--web", sys.argv[2]])
services = list(makeService(options, reactor=MemoryReactorClock()))
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[3].split(",")))
print(len(services))
print(",".join(loaded))
"""


def build_collector(tmp_path, web: str) -> tuple[int, list[str]]:
    """(services built, web-layer packages loaded) in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", _BUILD_THE_COLLECTOR, str(tmp_path), web, ",".join(WEB_LAYER)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    services, loaded = (result.stdout.splitlines() + [""])[:2]
    return int(services), [name for name in loaded.split(",") if name]


def test_a_collector_without_the_web_layer_does_not_load_it(tmp_path):
    services, loaded = build_collector(tmp_path, "none")
    assert services == 2  # the database and the collector
    assert loaded == []


def test_a_collector_with_the_web_layer_loads_and_builds_it(tmp_path):
    services, loaded = build_collector(tmp_path, "tcp:0:interface=127.0.0.1")
    assert services == 3
    assert "web" in loaded and "jinja2" in loaded
