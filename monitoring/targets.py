"""What the probes check: each platform's web and ingest endpoints, and control targets.

A target is a URL whose scheme says which checks apply:

- ``https://host[:port]/path``: dns, tcp, tls (SNI = host), http (a GET of the path);
- ``http://host[:port]/path``: dns, tcp, http;
- ``tls://host:port``: dns, tcp, tls (an RTMPS ingest);
- ``tcp://host:port``: dns, tcp (an RTMP ingest).

``download``, when set, is fetched (http or https) for at most a few seconds to measure
throughput. Control targets (``platform = "control"``) are sites that are not social
media and stay up unless the network itself is down; a vantage whose controls fail has
lost its uplink.

A targets file (``jalsa probe --targets FILE``, ``[monitoring] targets``) replaces the
defaults::

    control_resolver = "1.1.1.1"        # or "9.9.9.9:53"; "" for none

    [[targets]]
    platform = "control"
    url = "https://www.debian.org/"

    [[targets]]
    platform = "youtube"
    url = "https://www.youtube.com/generate_204"
    download = "https://www.youtube.com/"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from monitoring.outage import CONTROL, Check
from orchestrator.event.monitoring_spec import DEFAULT_CONTROL_RESOLVER, parse_resolver
from orchestrator.event.problems import EventError, Problem, Problems
from orchestrator.event.reader import Table

Scheme = Literal["https", "http", "tls", "tcp"]
CHECKS: Final[dict[str, tuple[Check, ...]]] = {
    "https": ("dns", "tcp", "tls", "http"),
    "http": ("dns", "tcp", "http"),
    "tls": ("dns", "tcp", "tls"),
    "tcp": ("dns", "tcp"),
}
_DEFAULT_PORT: Final = {"https": 443, "http": 80}
_LABEL: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint to probe.

    Attributes:
        platform: the ``platform`` label (``"control"`` for control targets).
        role: what the endpoint is for the platform: ``web``, ``ingest``, ``chat``...
        url: as written.
        download: an http(s) URL fetched to measure throughput, or None.
    """

    platform: str
    role: str
    url: str
    download: str | None = None

    @property
    def scheme(self) -> Scheme:
        return _scheme(self.url)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _DEFAULT_PORT.get(parts.scheme, 0)

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def checks(self) -> tuple[Check, ...]:
        return CHECKS[self.scheme]


@dataclass(frozen=True, slots=True)
class Targets:
    targets: tuple[Target, ...]
    control_resolver: tuple[str, int] | None = DEFAULT_CONTROL_RESOLVER

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.platform for t in self.targets))


def _t(platform: str, role: str, url: str, download: str | None = None) -> Target:
    return Target(platform, role, url, download)


# Best-effort public endpoints; a targets file overrides them. Controls are not social
# media; several, since a control check succeeds when any control target answers.
DEFAULT_TARGETS: Final = Targets(
    (
        _t("control", "web", "https://www.debian.org/"),
        _t(
            "control",
            "web",
            "https://cloudflare.com/cdn-cgi/trace",
            "https://speed.cloudflare.com/__down?bytes=1000000",
        ),
        _t("youtube", "web", "https://www.youtube.com/generate_204", "https://www.youtube.com/"),
        _t("youtube", "ingest", "tls://a.rtmps.youtube.com:443"),
        _t("facebook", "web", "https://www.facebook.com/", "https://www.facebook.com/"),
        _t("facebook", "ingest", "tls://live-api-s.facebook.com:443"),
        _t("x", "web", "https://x.com/", "https://x.com/"),
        _t("x", "ingest", "tls://va.pscp.tv:443"),
        _t("twitch", "web", "https://www.twitch.tv/", "https://www.twitch.tv/"),
        _t("twitch", "ingest", "tls://ingest.global-contribute.live-video.net:443"),
        _t("whatsapp", "web", "https://web.whatsapp.com/", "https://web.whatsapp.com/"),
        _t("whatsapp", "chat", "tls://g.whatsapp.net:443"),
    )
)


def load_targets(path: Path) -> Targets:
    """Read a targets file.

    Raises:
        EventError: unreadable, not TOML, or with problems (each naming its key).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError([Problem("<file>", f"{path} cannot be read: {exc}")], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise EventError([Problem("<file>", f"{path} is not valid TOML: {exc}")], path) from None
    try:
        return parse_targets(data)
    except EventError as exc:
        raise EventError(exc.problems, path) from None


def parse_targets(data: dict[str, object]) -> Targets:
    """Validate a targets file's data.

    Raises:
        EventError: with every problem.
    """
    problems = Problems()
    top = Table(data, "", problems)
    top.check_keys(("control_resolver", "targets"))
    resolver: tuple[str, int] | None = DEFAULT_CONTROL_RESOLVER
    text = top.string("control_resolver")
    if text is not None:
        try:
            resolver = parse_resolver(text)
        except ValueError as exc:
            top.problem("control_resolver", str(exc))
    targets = read_targets(top.tables("targets"))
    if not top.has("targets"):
        top.problem("targets", "none defined: add [[targets]] tables with platform and url")
    elif targets and not any(t.platform == CONTROL for t in targets):
        top.problem(
            "targets",
            'no control target: add one with platform = "control" (a site that is not social '
            "media), or every failure would look like a blocked platform",
        )
    problems.raise_if_any()
    return Targets(tuple(targets), resolver)


def read_targets(tables: Sequence[Table]) -> list[Target]:
    result = []
    for table in tables:
        table.check_keys(("platform", "role", "url", "download"))
        platform = table.string("platform", required='add platform = "youtube" (or "control")')
        if platform is not None and not _LABEL.fullmatch(platform):
            table.problem("platform", "use lowercase letters, digits, - and _")
            platform = None
        url = table.string("url", required='add url = "https://host/path" (or tcp:// or tls://)')
        if url is not None and not _valid_url(table, "url", url, tuple(CHECKS)):
            url = None
        download = table.string("download")
        if download is not None and not _valid_url(table, "download", download, ("http", "https")):
            download = None
        if platform is None or url is None:
            continue
        role = table.string("role") or ("web" if _scheme(url).startswith("http") else "ingest")
        if not _LABEL.fullmatch(role):
            table.problem("role", "use lowercase letters, digits, - and _")
            continue
        result.append(Target(str(platform), str(role), str(url), download and str(download)))
    return result


def _scheme(url: str) -> Scheme:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in CHECKS:
        raise ValueError(f"unsupported scheme in {url!r}")
    return scheme  # type: ignore[return-value]


def _valid_url(table: Table, key: str, url: str, schemes: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        table.problem(key, f"{url!r} is not a URL")
        return False
    if parts.scheme.lower() not in schemes or not parts.hostname:
        table.problem(key, f"{url!r}: write {' or '.join(s + '://host' for s in schemes)}")
        return False
    if parts.scheme in ("tcp", "tls") and port is None:
        table.problem(key, f"{url!r} needs a port, like {parts.scheme}://host:443")
        return False
    return True
