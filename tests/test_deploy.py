"""The files in deploy/ parse with the real tools, and say what the operators rely on.

Tools: systemd-analyze, apache2 (or httpd), nginx, haproxy and openssl. ``make test``
installs the missing ones as root (scripts/ensure-deploy-tools). Without them a test
skips with the reason, except under CI=true, where every check must run.

Tricks, so the checks work on a build machine:
- ``systemd-analyze verify`` insists that ExecStart's binary exists, so the unit is
  copied to a temporary directory with ExecStart pointing at this virtualenv's twistd
  (the only change). User=chronotrack stays: verify does not look the user up.
  verify exits 0 even for unknown keys or bad values, so any message naming the unit fails.
- The proxies check that the certificate files exist: a throw-away self-signed one is made
  with ``openssl`` and substituted for the placeholder paths; each file is included in a
  minimal main configuration that loads only what it needs, and nothing is started.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chronotrack.config import SETTINGS, SETTINGS_BY_NAME, read_config_file, resolve_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

CERT_PLACEHOLDER = "/etc/pki/tls/certs/timing.example.com.crt"
KEY_PLACEHOLDER = "/etc/pki/tls/private/timing.example.com.key"
UNITS = ("chronotrack-collector.service", "chronotrack-display.service")


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` installed; skip (fail under CI) without one."""
    for name in names:
        found = shutil.which(name) or next(
            (candidate for candidate in (f"/usr/sbin/{name}", f"/sbin/{name}")
             if os.access(candidate, os.X_OK)), None)
        if found:
            return found
    message = (f"{' or '.join(names)} is not installed: run `make test` or, as root, "
               "scripts/ensure-deploy-tools")
    if IN_CI:
        pytest.fail(message + " (CI=true: the deployment checks must run, not skip)")
    pytest.skip(message)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


def output_of(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).strip()


# systemd units


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file: key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_for_verify(unit: str, directory: Path) -> Path:
    """A copy of the unit whose ExecStart runs this virtualenv's twistd (it must exist)."""
    text = (DEPLOY / unit).read_text()
    twistd = Path(sys.executable).parent / "twistd"
    assert twistd.exists(), f"{twistd} missing: is the package installed in this virtualenv?"
    changed, count = re.subn(r"^ExecStart=/opt/chronotrack/\.venv/bin/twistd ",
                             f"ExecStart={twistd} ", text, flags=re.MULTILINE)
    assert count == 1, f"{unit}: expected one ExecStart=/opt/chronotrack/.venv/bin/twistd line"
    copy = directory / unit
    copy.write_text(changed)
    return copy


@pytest.mark.parametrize("unit", UNITS)
def test_unit_passes_systemd_analyze_verify(unit, tmp_path):
    tool = require_tool("systemd-analyze")
    copy = unit_for_verify(unit, tmp_path)
    result = run([tool, "verify", str(copy)], cwd=tmp_path)
    complaints = [line for line in output_of(result).splitlines() if unit in line]
    assert result.returncode == 0 and not complaints, output_of(result)


def test_backup_timer_and_service_pass_systemd_analyze_verify(tmp_path):
    tool = require_tool("systemd-analyze")
    names = ("chronotrack-backup.service", "chronotrack-backup.timer")
    for name in names:
        shutil.copy(DEPLOY / name, tmp_path / name)
    result = run([tool, "verify", *(str(tmp_path / name) for name in names)], cwd=tmp_path)
    complaints = [line for line in output_of(result).splitlines() if "chronotrack-backup" in line]
    assert result.returncode == 0 and not complaints, output_of(result)
    service = parse_unit(DEPLOY / "chronotrack-backup.service")["Service"]
    assert "pg_dump --format=custom" in service["ExecStart"][0]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened_per_systemd_analyze_security(unit, tmp_path):
    """Overall exposure 2.5 or less ("OK"); the units score 1.9 today."""
    tool = require_tool("systemd-analyze")
    copy = unit_for_verify(unit, tmp_path)
    result = run([tool, "security", "--offline=true", "--threshold=25", "--no-pager", str(copy)],
                 cwd=tmp_path)
    if "unrecognized option" in result.stderr and not IN_CI:
        pytest.skip("this systemd-analyze has no offline security review (systemd < 250)")
    assert result.returncode == 0, output_of(result)[-3000:]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_settings_operators_rely_on(unit):
    sections = parse_unit(DEPLOY / unit)
    unit_section, service, install = sections["Unit"], sections["Service"], sections["Install"]

    def one(key: str) -> str:
        values = service.get(key)
        assert values and len(values) == 1, f"{unit}: [Service] {key}= once, got {values}"
        return values[0]

    def words(section: dict[str, list[str]], key: str) -> list[str]:
        return " ".join(section.get(key, [])).split()

    # PostgreSQL first when there is one, but an embedded-database install still starts.
    assert "postgresql.service" in words(unit_section, "After")
    assert "postgresql.service" in words(unit_section, "Wants")
    for strong in ("Requires", "BindsTo", "Requisite"):
        assert "postgresql.service" not in words(unit_section, strong)
    assert install["WantedBy"] == ["multi-user.target"]

    plugin = unit.removesuffix(".service")
    exec_start = one("ExecStart").split()
    assert exec_start[0] == "/opt/chronotrack/.venv/bin/twistd"
    assert {"--nodaemon", "--pidfile="} <= set(exec_start) and plugin in exec_start
    assert one("User") == "chronotrack" and one("Group") == "chronotrack"
    assert one("Restart") in ("on-failure", "always")
    assert one("KillSignal") == "SIGTERM" and one("KillMode") == "mixed"
    assert int(one("TimeoutStopSec").removesuffix("s")) >= 30
    assert int(one("LimitNOFILE")) >= 65536

    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "SystemCallFilter": "@system-service", "CapabilityBoundingSet": "", "UMask": "0077",
        "StateDirectory": "chronotrack",
    }
    for key, value in expected.items():
        assert one(key) == value, f"{unit}: {key}={one(key)!r}, want {value!r}"
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    # pyOpenSSL's cffi callbacks (any TLS endpoint) need write+execute memory.
    assert "MemoryDenyWriteExecute" not in service
    assert "--data-dir" in exec_start
    assert exec_start[exec_start.index("--data-dir") + 1] == "/var/lib/" + one("StateDirectory")


# TLS reverse proxies


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate and key for timing.example.com."""
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                  "-subj", "/CN=timing.example.com", "-keyout", str(key), "-out", str(cert)])
    assert result.returncode == 0, output_of(result)
    return cert, key


def with_certificate(name: str, certificate: tuple[Path, Path], directory: Path) -> Path:
    """A copy of deploy/<name> using the throw-away certificate instead of the placeholders."""
    text = (DEPLOY / name).read_text()
    assert text.count(CERT_PLACEHOLDER) == 1 and text.count(KEY_PLACEHOLDER) == 1, \
        f"{name}: expected the placeholder certificate paths once each"
    copy = directory / name
    copy.write_text(text.replace(CERT_PLACEHOLDER, str(certificate[0]))
                        .replace(KEY_PLACEHOLDER, str(certificate[1])))
    return copy


def directives(text: str) -> list[str]:
    """Configuration lines without comments, whitespace squeezed."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line]


APACHE_MODULES = ("mpm_event", "authz_core", "alias", "env", "headers", "socache_shmcb", "ssl",
                  "proxy", "proxy_http")
APACHE_MODULE_DIRECTORIES = ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules",
                             "/etc/httpd/modules", "/usr/lib/httpd/modules")


def test_apache_vhost_passes_config_test(tmp_path, certificate):
    httpd = require_tool("apache2", "httpd")
    modules = next((Path(d) for d in APACHE_MODULE_DIRECTORIES if (Path(d) / "mod_ssl.so").exists()),
                   None)
    if modules is None:
        message = "Apache has no mod_ssl.so (apt-get install apache2 / dnf install mod_ssl)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    vhost = with_certificate("apache-chronotrack.conf", certificate, tmp_path)
    loads = "\n".join(f"LoadModule {name}_module {modules}/mod_{name}.so" for name in APACHE_MODULES)
    main = tmp_path / "httpd.conf"
    main.write_text(f'ServerRoot "{tmp_path}"\nServerName localhost\n'
                    f'PidFile "{tmp_path}/httpd.pid"\nErrorLog "{tmp_path}/error.log"\n'
                    f"Listen 80\nListen 443 https\n{loads}\nInclude \"{vhost}\"\n")
    result = run([httpd, "-t", "-f", str(main)], cwd=tmp_path)
    assert result.returncode == 0 and "Syntax OK" in output_of(result), output_of(result)
    assert "warn" not in output_of(result).lower(), output_of(result)
    hosts = run([httpd, "-t", "-D", "DUMP_VHOSTS", "-f", str(main)], cwd=tmp_path)
    assert hosts.returncode == 0, output_of(hosts)
    assert re.search(r"\*:80\s.*timing\.example\.com", hosts.stdout), hosts.stdout
    assert re.search(r"\*:443\s.*timing\.example\.com", hosts.stdout), hosts.stdout


def test_apache_vhost_keeps_the_stream_unbuffered_and_the_status_api_local():
    lines = directives((DEPLOY / "apache-chronotrack.conf").read_text())
    assert 'Redirect permanent "/" "https://timing.example.com/"' in lines
    assert 'RequestHeader set X-Forwarded-Proto "https"' in lines
    passes = [line for line in lines if line.startswith("ProxyPass ")]
    assert passes[0].startswith('ProxyPass "/stream" "http://127.0.0.1:5000/stream"'), \
        "the /stream rule must come first: the first matching ProxyPass wins"
    assert "flushpackets=on" in passes[0].split()
    timeout = int(re.search(r"\btimeout=(\d+)", passes[0]).group(1))
    assert timeout >= 3600
    assert "SetEnv no-gzip 1" in lines
    assert not [line for line in lines if "61612" in line], "the status API must stay local"


def test_nginx_server_block_passes_config_test(tmp_path, certificate):
    nginx = require_tool("nginx")
    site = with_certificate("nginx-chronotrack.conf", certificate, tmp_path)
    (tmp_path / "temp").mkdir()
    temp_paths = "\n".join(f"    {kind}_temp_path {tmp_path}/temp/{kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
                    f"http {{\n    access_log off;\n{temp_paths}\n    include {site};\n}}\n")
    result = run([nginx, "-t", "-e", str(tmp_path / "error.log"), "-p", f"{tmp_path}/",
                  "-c", str(main)], cwd=tmp_path)
    assert result.returncode == 0 and "test is successful" in output_of(result), output_of(result)
    assert "[warn]" not in output_of(result), output_of(result)


def test_nginx_server_block_keeps_the_stream_unbuffered_and_the_status_api_local():
    text = (DEPLOY / "nginx-chronotrack.conf").read_text()
    lines = directives(text)
    stream = re.search(r"location /stream \{(.*?)\}", text, re.DOTALL)
    assert stream, "no location /stream block"
    in_stream = directives(stream.group(1))
    for wanted in ("proxy_buffering off;", "proxy_cache off;", "gzip off;",
                   "proxy_pass http://chronotrack_web;"):
        assert wanted in in_stream, wanted
    read_timeout = next(line for line in in_stream if line.startswith("proxy_read_timeout "))
    assert read_timeout in ("proxy_read_timeout 24h;", "proxy_read_timeout 1d;") or \
        int(re.sub(r"\D", "", read_timeout)) >= 3600
    # A proxy_set_header inside a location would silently drop the server-level ones.
    assert not [line for line in in_stream if line.startswith("proxy_set_header")]
    for wanted in ("proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                   "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                   "proxy_set_header X-Forwarded-Proto https;", "client_max_body_size 6m;",
                   "return 301 https://$host$request_uri;"):
        assert wanted in lines, wanted
    assert any("X-Accel-Buffering" in line for line in in_stream)
    assert "server 127.0.0.1:5000;" in lines
    assert not [line for line in lines if "61612" in line], "the status API must stay local"


# HAProxy


def test_haproxy_config_passes_check(tmp_path):
    haproxy = require_tool("haproxy")
    result = run([haproxy, "-c", "-f", str(DEPLOY / "haproxy-chronotrack.cfg")], cwd=tmp_path)
    assert result.returncode == 0 and "valid" in output_of(result), output_of(result)
    assert "[WARNING]" not in output_of(result) and "[ALERT]" not in output_of(result), \
        output_of(result)


def test_haproxy_balances_controllers_with_status_api_health_checks():
    lines = directives((DEPLOY / "haproxy-chronotrack.cfg").read_text())
    assert "mode tcp" in lines and "bind :61611" in lines
    assert "balance leastconn" in lines or "balance source" in lines
    assert "option httpchk GET /health" in lines
    for timeout in ("timeout client", "timeout server"):
        value = next(line for line in lines if line.startswith(timeout + " "))
        assert value.endswith("h"), f"{value}: controllers stay connected for hours"
    servers = [line for line in lines if line.startswith("server ")]
    assert len(servers) >= 2
    for server in servers:
        assert re.search(r":61611 check port 61612\b", server), server
        assert "send-proxy" not in server, "the collector does not speak the PROXY protocol"


# The settings example


EXAMPLE = DEPLOY / "chronotrack.ini.example"
COMMENTED_KEY = re.compile(r"^#\s*([a-z][a-z0-9-]*)\s*=\s*(.*)$")


def example_entries() -> dict[str, tuple[str, bool, str]]:
    """key -> (value, active?, the comment line just above it)."""
    entries: dict[str, tuple[str, bool, str]] = {}
    previous = ""
    in_section = False
    for line in EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if stripped == "[chronotrack]":
            in_section = True
        elif in_section and (match := COMMENTED_KEY.match(stripped)) and \
                match.group(1) in SETTINGS_BY_NAME:
            assert match.group(1) not in entries, f"{match.group(1)} listed twice"
            entries[match.group(1)] = (match.group(2), False, previous)
        elif in_section and stripped and not stripped.startswith(("#", ";")):
            key, _, value = stripped.partition("=")
            assert key.strip() not in entries, f"{key.strip()} listed twice"
            entries[key.strip()] = (value.strip(), True, previous)
        previous = stripped
    return entries


def test_ini_example_lists_every_setting_once_with_its_default_and_a_comment():
    entries = example_entries()
    missing = sorted(set(SETTINGS_BY_NAME) - set(entries))
    unknown = sorted(set(entries) - set(SETTINGS_BY_NAME))
    assert not missing and not unknown, \
        f"deploy/chronotrack.ini.example is out of step with chronotrack/config.py SETTINGS: " \
        f"add {missing}, remove {unknown}"
    for setting in SETTINGS:
        value, active, comment = entries[setting.name]
        assert comment.startswith("# ") and len(comment) > 10, \
            f"{setting.name}: needs a one-line comment just above it"
        if setting.default is None:
            assert not active, f"{setting.name} has no default: show it commented out"
        else:
            assert active and value == setting.default, \
                f"{setting.name} = {value!r} in the example, default {setting.default!r}"


def test_ini_example_is_accepted_by_the_collector(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./chronotrack.ini in the way
    assert set(read_config_file(EXAMPLE)) == {s.name for s in SETTINGS if s.default is not None}
    defaults = resolve_settings({}, environ={})
    assert resolve_settings({}, environ={}, config_path=str(EXAMPLE)) == defaults
    # The commented-out examples are valid values too.
    uncommented = tmp_path / "uncommented.ini"
    uncommented.write_text("\n".join(
        re.sub(r"^#\s*(?=[a-z][a-z0-9-]*\s*=)", "", line)
        if (match := COMMENTED_KEY.match(line)) and match.group(1) in SETTINGS_BY_NAME else line
        for line in EXAMPLE.read_text().splitlines()) + "\n")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(uncommented)
    assert set(parser["chronotrack"]) == set(SETTINGS_BY_NAME)
    resolved = resolve_settings({}, environ={}, config_path=str(uncommented))
    assert resolved["dsn"] and resolved["event_timezone"] and resolved["secret_key_file"]
