"""An installed copy (pip install ., not editable) finds its twistd plugins, templates and schema."""

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from twisted.plugin import getPlugins
from twisted.application.service import IServiceMaker
import chronotrack, web
names = sorted(p.tapname for p in getPlugins(IServiceMaker) if p.tapname.startswith("chronotrack"))
print("plugins", names)
print("package", chronotrack.__file__)
from chronotrack.storage.migrations import available_migrations
print("schema", [m.name for m in available_migrations()])
from jinja2 import Environment, FileSystemLoader
from web.app import template_directories
loader = FileSystemLoader([str(p) for p in template_directories()])
print("template", Environment(loader=loader).get_template("display.html").filename)
"""


def test_installed_copy_finds_plugins_templates_and_schema(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(REPOSITORY)], check=True, capture_output=True, timeout=600)
    # Only the installed copy and the dependencies of this environment: not the work tree.
    environment = {**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([sys.executable, "-I", "-c",
                             f"import sys; sys.path[:0] = [{str(target)!r}]; sys.path = [p for p in sys.path "
                             f"if p.rstrip('/') != {str(REPOSITORY)!r}]\n" + PROBE],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "plugins ['chronotrack-collector', 'chronotrack-display']" in output
    assert f"package {target}" in output
    assert "0001_initial.sql" in output
    assert f"template {target}" in output
