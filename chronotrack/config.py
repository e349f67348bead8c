"""Settings: one table, read from the command line, the environment and a config file.

Precedence, highest first: command-line option, environment variable
(``CHRONOTRACK_<NAME>``), the ``[chronotrack]`` section of the config file, the default.
The config file is ``--config PATH``, or ``$CHRONOTRACK_CONFIG``, or ``./chronotrack.ini``
when it exists. Secrets (the DSN's password) belong in the environment or that file,
never in the repository.
"""

from __future__ import annotations

import configparser
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from twisted.python import usage

DEFAULT_CONFIG_FILE = "chronotrack.ini"
CONFIG_SECTION = "chronotrack"


class ConfigError(ValueError):
    """A setting has a value the program cannot use; the message says which and why."""


def _finite_float(text: str) -> float:
    """A number of seconds: nan and inf are refused (a window of nan never closes, a delay of inf never ends)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise ValueError("must be more than zero")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a whole number above zero")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


AUTHENTICATION_MODES = ("none", "plaintext", "hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5")


def _authentication_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in AUTHENTICATION_MODES:
        raise ValueError("must be one of " + ", ".join(AUTHENTICATION_MODES))
    return mode


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError("must be more than 0 and at most 1")
    return value


def _allow_list(text: str):
    from chronotrack.admission import parse_allow_list

    return parse_allow_list(text)


def _log_format(text: str) -> str:
    from chronotrack.logs import log_format

    return log_format(text)


def _message_list(text: str) -> tuple[str, ...]:
    messages = tuple(part.strip() for part in text.split("|") if part.strip())
    if not messages:
        raise ValueError("needs at least one message")
    return messages


def _origin_list(text: str) -> tuple[str, ...]:
    """Web origins separated by spaces or commas; 'none' (or nothing) is none."""
    if text.strip().lower() in ("", "none"):
        return ()
    origins = tuple(part.strip().rstrip("/") for part in text.replace(",", " ").split())
    for origin in origins:
        scheme, _, host = origin.partition("://")
        if scheme not in ("http", "https") or not host or any(c in host for c in "/?#*@"):
            raise ValueError(f"{origin!r} is not an origin like https://results.example.org")
    return origins


def _base_url(text: str) -> str:
    """An http(s) URL without query or fragment; the trailing slash is dropped."""
    from urllib.parse import urlsplit

    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be an http:// or https:// URL without a query")
    return value


@dataclass(frozen=True)
class Setting:
    name: str  # option name with dashes, e.g. "greeting-delay"
    default: str | None
    help: str
    convert: Callable[[str], Any] = str

    @property
    def attribute(self) -> str:
        return self.name.replace("-", "_")

    @property
    def environment_variable(self) -> str:
        return "CHRONOTRACK_" + self.attribute.upper()


DEFAULT_MESSAGES = ("Welcome to Race Display|Real-time timing data|Live race results|"
                    "Timing system connected|Ready for race data")

SETTINGS: tuple[Setting, ...] = (
    Setting("port", "tcp:61611",
            "Endpoint the controllers connect to (CTP01)."),
    Setting("status", "tcp:61612:interface=127.0.0.1",
            "Endpoint of the status API (/health, /status, Prometheus /metrics); 'none' turns it off."),
    Setting("web", "tcp:5000:interface=127.0.0.1",
            "Endpoint of the race display web layer; 'none' turns it off."),
    Setting("dsn", None,
            "PostgreSQL DSN, e.g. 'host=db dbname=timing user=timer'. "
            "Default: an embedded PostgreSQL in the data directory. "
            "Put the password in the environment or PGPASSWORD, not on the command line."),
    Setting("data-dir", "./var",
            "Directory for the embedded database, the read journal and other local state."),
    Setting("greeting-delay", "0.5",
            "Seconds between a controller's greeting and our reply.", _non_negative_float),
    Setting("setting-delay", "0.1",
            "Seconds between the settings lines of our reply.", _non_negative_float),
    Setting("command-delay", "0.2",
            "Seconds between the commands we send after the settings.", _non_negative_float),
    Setting("ping-interval", "30",
            "Seconds between keepalive pings to each controller.", _positive_float),
    Setting("idle-timeout", "90",
            "Close a controller connection silent for this many seconds.", _positive_float),
    Setting("reply-timeout", "5",
            "Seconds to wait for answers to getlocations/getconnectionid before starting "
            "the stream anyway.", _positive_float),
    Setting("event-timezone", None,
            "IANA time zone of the event (e.g. America/Denver) for reads without a zone. "
            "Default: the server's time zone."),
    Setting("authentication", "none",
            "How controllers prove who they are (CTP01 authorize): none, plaintext, hmac-sha1, "
            "hmac-md5, seed-sha1 or seed-md5. Logins are added with `chronotrack controller add`.",
            _authentication_mode),
    Setting("secret-key-file", None,
            "File holding the server key that encrypts controller passwords in the database; "
            "created (mode 0600) on first use. Default: secret.key in the data directory. "
            "Every collector sharing a database needs the same file."),
    Setting("greeting-timeout", "10",
            "Seconds a new connection has to greet (and, with authentication on, authorize) "
            "before it is closed.", _positive_float),
    Setting("max-line-length", "1024",
            "Longest line (bytes, line end excluded) read from a controller; a longer line is "
            "rejected (reason too_long) and never buffered past this.", _positive_int),
    Setting("max-connections", "1000",
            "Most CTP01 connections open at once; more are closed at once, before any data "
            "is read.", _positive_int),
    Setting("max-connections-per-address", "50",
            "Most CTP01 connections open at once from one IP address.", _positive_int),
    Setting("allow", None,
            "Comma-separated CIDR ranges (IPv4 or IPv6, e.g. '10.0.0.0/8,2001:db8::/32') "
            "allowed to connect to the CTP01 port; others are closed before any data is "
            "read. Default: everywhere.", _allow_list),
    Setting("rejected-lines-stored-per-minute", "20",
            "Rejected lines stored in rejected_lines (and logged) per connection per "
            "minute; the rest are only counted, by reason, on /status.", _positive_int),
    Setting("garbage-ratio", "0.9",
            "Close a connection when more than this share of its last 200 lines was "
            "rejected.", _ratio),
    Setting("max-rejected-per-minute", "1000",
            "Close a connection that sends more rejected lines than this in a minute.",
            _positive_int),
    Setting("garbage-penalty", "10",
            "Seconds an address is refused after one of its connections was closed for "
            "sending garbage; 0 turns it off.", _non_negative_float),
    Setting("clock-tolerance", "86400",
            "Seconds a read's time may be from the server's clock before the read is "
            "flagged clock_suspect (it is stored all the same).", _positive_float),
    Setting("log-format", "text",
            "Log output: text (twistd's usual lines) or json (one JSON object per line with time, "
            "level, namespace, message and fields, for journald and log shippers). Same as twistd's "
            "--logger chronotrack.logs.json_observer; json goes to standard output.", _log_format),
    Setting("pushmode-ack", "false",
            "Ask controllers to acknowledge start/stop commands (pushmode-ack=true).", _bool),
    Setting("batch-size", "500",
            "Most reads journaled with one fsync (a batch waits for the database as one).", _positive_int),
    Setting("batch-delay", "0.005",
            "Seconds a read waits for others to share its journal write.", _non_negative_float),
    Setting("write-batch-size", "5000",
            "Most waiting reads written to the database in one statement (whole journal batches).",
            _positive_int),
    Setting("backlog-in-memory", "20000",
            "Waiting reads kept in memory; beyond it they wait in the journal on disk and are read "
            "back when the database can take them.", _positive_int),
    Setting("backlog-limit", "200000",
            "Reads waiting for the database (in memory and in the journal); past it controllers are "
            "paused (they keep their reads) until the backlog drains.", _positive_int),
    Setting("retention-days", "30",
            "Days raw timing data is kept before it is deleted.", _positive_int),
    Setting("messages", DEFAULT_MESSAGES,
            "Rotating messages on the live display, separated by '|'.", _message_list),
    Setting("max-stream-clients", "1000",
            "Most live-display streams (/stream) open at once; past it new ones get 503 with "
            "Retry-After, and the clients already watching keep their stream.", _positive_int),
    Setting("max-streams-per-address", "100",
            "Most live-display streams open at once from one client address (behind a proxy on "
            "this machine, its X-Forwarded-For); past it that address gets 429. Raise it when many "
            "phones share one address (a venue's Wi-Fi, a mobile carrier's NAT).", _positive_int),
    Setting("results-freshness", "1",
            "Seconds a results answer (/api/results, /results, /results.csv) is served while newer "
            "reads wait, so a live race's results are rebuilt at most once per window however many "
            "reads arrive and phones ask; 0 rebuilds at every change.", _non_negative_float),
    Setting("results-memory-mb", "256",
            "Megabytes the results of the events asked for may take in memory (about 100 for a "
            "50,000-runner race, 2 for a 1,000-runner one); past it the least recently asked event "
            "is let go and built again when next asked.", _positive_int),
    Setting("cors-origins", "none",
            "Web origins, separated by spaces or commas (e.g. https://results.example.org), whose "
            "pages may read the display's responses (CORS, GET only); 'none' allows none.", _origin_list),
    Setting("collector-status", "http://127.0.0.1:61612/status",
            "URL of the collector's status API, shown on the display's /status page when "
            "the display runs as its own process; 'none' turns it off."),
    Setting("roster-chronotrack-live-url", "https://api.chronotrack.com",
            "Base URL of the ChronoTrack Live API that rosters are pulled from.", _base_url),
    Setting("roster-runsignup-url", "https://runsignup.com",
            "Base URL of RunSignUp (its REST API is under /Rest) that rosters are pulled from.", _base_url),
    Setting("roster-race-roster-url", "https://raceroster.com",
            "Base URL of Race Roster (OAuth token and /api/v1) that rosters are pulled from.", _base_url),
    Setting("outbound-timeout", "15",
            "Seconds one request to another site (a roster page, an event website) may take in all.",
            _positive_float),
    Setting("brand-fetch-allow-private", "false",
            "Let 'brand from a website' fetch from private and local addresses (only for a hub "
            "on a closed network; operators could otherwise probe the LAN).", _bool),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_config_file(path: Path) -> dict[str, str]:
    """The ``[chronotrack]`` section of an INI file, keys as option names with dashes."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    except configparser.Error as error:
        raise ConfigError(f"config file {path} is not valid INI: {error}") from error
    if not parser.has_section(CONFIG_SECTION):
        raise ConfigError(f"config file {path} has no [{CONFIG_SECTION}] section")
    values = {}
    for key, value in parser.items(CONFIG_SECTION):
        name = key.replace("_", "-")
        if name not in SETTINGS_BY_NAME:
            known = ", ".join(sorted(SETTINGS_BY_NAME))
            raise ConfigError(f"config file {path}: unknown setting '{key}' (known: {known})")
        values[name] = value
    return values


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("CHRONOTRACK_CONFIG"):
        return Path(environ["CHRONOTRACK_CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def resolve_settings(command_line: Mapping[str, str | None], environ: Mapping[str, str] = os.environ,
                     config_path: str | None = None,
                     names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Merge the sources into one dict of converted values, keyed by attribute name.

    ``command_line`` maps option names (with dashes) to the string given, or None when
    the option was not given. Raises ConfigError naming the setting and its source.
    """
    path = find_config_file(config_path, environ)
    from_file = read_config_file(path) if path else {}
    wanted = names if names is not None else tuple(SETTINGS_BY_NAME)
    resolved: dict[str, Any] = {}
    for name in wanted:
        setting = SETTINGS_BY_NAME[name]
        if command_line.get(name) is not None:
            raw, source = command_line[name], f"--{name}"
        elif environ.get(setting.environment_variable):
            raw, source = environ[setting.environment_variable], setting.environment_variable
        elif name in from_file:
            raw, source = from_file[name], f"{path} [{CONFIG_SECTION}] {name}"
        else:
            raw, source = setting.default, "default"
        if raw is None:
            resolved[setting.attribute] = None
            continue
        try:
            resolved[setting.attribute] = setting.convert(raw)
        except ValueError as error:
            shown = "(hidden)" if name == "dsn" else repr(raw)
            raise ConfigError(f"{source}: bad value {shown} for {name}: {error}") from error
    return resolved


def option_parameters(names: tuple[str, ...]) -> list[list]:
    """usage.Options parameters for these settings; defaults are applied by resolve_settings."""
    table = []
    for name in names:
        setting = SETTINGS_BY_NAME[name]
        default = {"dsn": "embedded PostgreSQL", "event-timezone": "the server's zone",
                   "allow": "everywhere",
                   "secret-key-file": "<data-dir>/secret.key"}.get(name, setting.default)
        table.append([name, None, None,
                      f"{setting.help} [default: {default}; env {setting.environment_variable}]"])
    table.append(["config", "c", None,
                  "INI file with a [chronotrack] section (default: ./chronotrack.ini if present; "
                  "env CHRONOTRACK_CONFIG)"])
    return table


def settings_from_options(options: usage.Options, names: tuple[str, ...]) -> dict:
    """Resolve a plugin's parsed options; a bad value becomes twistd's usage error."""
    try:
        return resolve_settings({name: options[name] for name in names},
                                config_path=options["config"], names=names)
    except ConfigError as error:
        raise usage.UsageError(str(error)) from error
