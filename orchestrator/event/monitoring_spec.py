"""``[monitoring]``: jalsa's own probe vantage, remote probe agents, outage alerts, samples.

Everything is optional. Without the table jalsa still counts listeners (the platform
APIs configured per destination, the HLS mirror, Icecast) and keeps samples for
``jalsa report``, but sends no probe to the internet::

    [monitoring]
    probes = true                  # probe from this machine (vantage "jalsa")
    city = "Lahore"                # required with probes = true
    isp = "PTCL"                   # required with probes = true
    # vantage = "jalsa"
    # targets = "targets.toml"     # default: the built-in platform and control targets
    # control_resolver = "1.1.1.1" # "" for none
    # probe_seconds = 30
    # agents = ["http://probe-lahore:9109/metrics"]   # `jalsa probe` agents to read; or
    # agents = [{url = "https://probe-lahore:9109/metrics", token = "${LAHORE_TOKEN}"}]
    # agent_token = "${JALSA_AGENT_TOKEN}"  # the bearer token of agents without their own
    # webhook = "${JALSA_WEBHOOK}" # Slack-compatible: JSON with "text"
    # sample_seconds = 10
    # outage_for_seconds = 60      # an outage must hold this long to start ...
    # outage_clear_seconds = 120   # ... and be gone this long to clear
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from orchestrator.event.reader import Table, check_readable, quote, resolve_path
from orchestrator.event.secret import Secret

DEFAULT_CONTROL_RESOLVER: Final = ("1.1.1.1", 53)
_KEYS: Final = (
    "probes",
    "vantage",
    "city",
    "isp",
    "targets",
    "control_resolver",
    "probe_seconds",
    "agents",
    "agent_token",
    "webhook",
    "sample_seconds",
    "outage_for_seconds",
    "outage_clear_seconds",
)
# key -> (default, low, high)
_SECONDS: Final = {
    "probe_seconds": (30.0, 5.0, 3600.0),
    "sample_seconds": (10.0, 1.0, 300.0),
    "outage_for_seconds": (60.0, 0.0, 3600.0),
    "outage_clear_seconds": (120.0, 0.0, 3600.0),
}
MIN_AGENT_TOKEN: Final = 16
LABEL_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}")


@dataclass(frozen=True, slots=True, repr=False)
class AgentSpec:
    """A ``jalsa probe`` agent to read: its /metrics URL and the bearer token it wants
    (``jalsa probe --token-file``; None: the agent asks for none)."""

    url: str
    token: Secret | None = None

    def __repr__(self) -> str:
        return f"AgentSpec(url={self.url!r}, token={'***' if self.token else None})"


@dataclass(frozen=True, slots=True, repr=False)
class MonitoringSpec:
    """``[monitoring]``; the defaults mean: no probes, no agents, no webhook."""

    probes: bool = False
    vantage: str = "jalsa"
    city: str = ""
    isp: str = ""
    targets: Path | None = None
    control_resolver: tuple[str, int] | None = DEFAULT_CONTROL_RESOLVER
    probe_seconds: float = 30.0
    agents: tuple[AgentSpec, ...] = ()
    webhook: Secret | None = None
    sample_seconds: float = 10.0
    outage_for_seconds: float = 60.0
    outage_clear_seconds: float = 120.0

    def __repr__(self) -> str:
        return (
            f"MonitoringSpec(probes={self.probes!r}, vantage={self.vantage!r}, "
            f"city={self.city!r}, isp={self.isp!r}, agents={len(self.agents)}, "
            f"webhook={'***' if self.webhook else None})"
        )


def parse_resolver(text: str) -> tuple[str, int] | None:
    """``"1.1.1.1"``, ``"9.9.9.9:5353"``, ``"[2606:4700::1111]:53"``; ``""`` is none.

    Raises:
        ValueError: not an IP address with an optional port.
    """
    text = text.strip()
    if not text:
        return None
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"{text!r} is not IP[:PORT]")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            raise ValueError(f"{text!r} is not IP[:PORT]")
        port = int(digits)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address: a resolver is asked by address, like 1.1.1.1"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: the port is out of range")
    return host, port


def parse_monitoring(table: Table, base_dir: Path, check_files: bool) -> MonitoringSpec:
    """Read ``[monitoring]`` (an empty table when absent); problems go to its collector."""
    table.check_keys(_KEYS)
    probes = table.boolean("probes", False)
    vantage = _label(table, "vantage", "jalsa") or "jalsa"
    city = _label(table, "city", "")
    isp = _label(table, "isp", "")
    if probes:
        for name, example in (("city", "Lahore"), ("isp", "PTCL")):
            if not table.has(name):
                table.problem(
                    name, f'is missing: probes need it as a label: add {name} = "{example}"'
                )
    targets = None
    text = table.string("targets")
    if text is not None:
        targets = resolve_path(text, base_dir)
        if check_files:
            check_readable(table, "targets", text, targets, "the targets file")
    resolver: tuple[str, int] | None = DEFAULT_CONTROL_RESOLVER
    text = table.string("control_resolver")
    if text is not None:
        try:
            resolver = parse_resolver(text)
        except ValueError as exc:
            table.problem("control_resolver", str(exc))
    seconds = {name: _seconds(table, name, *limits) for name, limits in _SECONDS.items()}
    return MonitoringSpec(
        probes=probes,
        vantage=vantage,
        city=city,
        isp=isp,
        targets=targets,
        control_resolver=resolver,
        agents=_agents(table),
        webhook=_webhook(table),
        **seconds,
    )


def _label(table: Table, name: str, default: str) -> str:
    text = table.string(name)
    if text is None:
        return default
    if not LABEL_PATTERN.fullmatch(text):
        table.problem(
            name, f"{quote(text)} is not a label: use 1-40 letters, digits, spaces, . _ and -"
        )
        return default
    return str(text)


def _seconds(table: Table, name: str, default: float, low: float, high: float) -> float:
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        table.problem(name, f"expected a number of seconds, got {quote(value)}")
        return default
    if not low <= value <= high:
        table.problem(name, f"{value} is out of range: use {low:g} to {high:g} seconds")
        return default
    return float(value)


def _http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_AGENT_KEYS: Final = ("url", "token")


def _agents(table: Table) -> tuple[AgentSpec, ...]:
    shared = _agent_token(table, "agent_token")
    value = table.raw("agents")
    if value is None:
        return ()
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, list):
        table.problem("agents", f"expected an array of URLs, got {quote(value)}")
        return ()
    result = []
    for index, item in enumerate(value):
        token = shared
        if isinstance(item, Mapping):
            entry = Table(item, table.at(f"agents[{index}]"), table.problems)
            entry.check_keys(_AGENT_KEYS)
            url = entry.string("url", required='add url = "http://probe-lahore:9109/metrics"')
            if entry.has("token"):
                token = _agent_token(entry, "token")
            if url is None:
                continue
        else:
            url = item
        if not isinstance(url, str) or not _http_url(url):
            table.problem(
                f"agents[{index}]",
                f"{quote(url)} is not an http(s) URL: write it like http://probe-lahore:9109/metrics",
            )
            continue
        result.append(AgentSpec(str(url), token))
    return tuple(result)


def _agent_token(table: Table, name: str) -> Secret | None:
    text = table.string(name, secret=True)
    if text is None:
        return None
    if len(text) < MIN_AGENT_TOKEN or any(c.isspace() for c in text):
        table.problem(
            name,
            f"is not a usable token: use at least {MIN_AGENT_TOKEN} characters without spaces, "
            'the same as the agent\'s --token-file, as token = "${AGENT_TOKEN}"',
        )
        return None
    return Secret(str(text))


def _webhook(table: Table) -> Secret | None:
    text = table.string("webhook", secret=True)
    if text is None:
        return None
    if not _http_url(text):
        table.problem(
            "webhook",
            'is not an http(s) URL: write webhook = "${JALSA_WEBHOOK}" and export the URL '
            "(a Slack incoming webhook or any endpoint that takes JSON)",
        )
        return None
    return Secret(str(text))
