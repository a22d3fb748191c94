"""``[destinations.listeners]``: where a destination's listener count comes from.

A platform destination names its broadcast and an API credential; the self-hosted HLS
mirror and an Icecast mount need nothing (they are counted by default)::

    [destinations.listeners]          # youtube
    video_id = "dQw4w9WgXcQ"
    api_key = "${YT_API_KEY}"
    # api_base = "https://www.googleapis.com"   (a proxy or a stand-in)
    # poll_seconds = 15

Credentials (``api_key``, ``access_token``, ``bearer_token``) are held as
:class:`Secret`. Ids are checked against the platform's alphabet, which also keeps them
safe to put in a URL path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from orchestrator.event.problems import Problems
from orchestrator.event.reader import Table, quote
from orchestrator.event.secret import Secret

POLL_LIMITS: Final = (5.0, 3600.0)
DEFAULT_POLL_SECONDS: Final = 15.0
API_BASE: Final = {
    "youtube": "https://www.googleapis.com",
    "facebook": "https://graph.facebook.com",
    "twitch": "https://api.twitch.tv",
    "x": "https://api.x.com",
}
FACEBOOK_VERSION: Final = "v23.0"
_VERSION: Final = re.compile(r"v?(\d{1,3}\.\d{1,3})")


@dataclass(frozen=True, slots=True)
class YouTubeListeners:
    """``concurrentViewers`` of a live video, from the YouTube Data API v3."""

    video_id: str
    api_key: Secret
    api_base: str = API_BASE["youtube"]
    poll_seconds: float = DEFAULT_POLL_SECONDS


@dataclass(frozen=True, slots=True)
class FacebookListeners:
    """``live_views`` of a live video, from the Graph API."""

    live_video_id: str
    access_token: Secret
    api_version: str = FACEBOOK_VERSION
    api_base: str = API_BASE["facebook"]
    poll_seconds: float = DEFAULT_POLL_SECONDS


@dataclass(frozen=True, slots=True)
class TwitchListeners:
    """``viewer_count`` of a channel's stream, from Twitch Helix."""

    user_login: str
    client_id: str
    access_token: Secret
    api_base: str = API_BASE["twitch"]
    poll_seconds: float = DEFAULT_POLL_SECONDS


@dataclass(frozen=True, slots=True)
class XListeners:
    """``participant_count`` of a Space, from the X API v2."""

    space_id: str
    bearer_token: Secret
    api_base: str = API_BASE["x"]
    poll_seconds: float = DEFAULT_POLL_SECONDS


@dataclass(frozen=True, slots=True)
class IcecastListeners:
    """``listeners`` of our mount, from Icecast's ``/status-json.xsl``."""

    status_url: str
    mount: str
    poll_seconds: float = DEFAULT_POLL_SECONDS
    # The status pages of Icecast relays (slaves) of this mount: their listeners are
    # added to the master's (docs/mirror.md: audio at Spaces scale).
    relays: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HlsListeners:
    """The self-hosted mirror: distinct sessions seen recently, counted in-process."""


ApiListeners = YouTubeListeners | FacebookListeners | TwitchListeners | XListeners
ListenerSpec = ApiListeners | IcecastListeners | HlsListeners

# platform -> (id key, its pattern, what it looks like, credential keys)
_IDS: Final = {
    "youtube": ("video_id", re.compile(r"[A-Za-z0-9_-]{11}"), '11 characters, like "dQw4w9WgXcQ"'),
    "facebook": ("live_video_id", re.compile(r"[0-9]{1,30}"), 'digits, like "1234567890"'),
    "twitch": ("user_login", re.compile(r"[A-Za-z0-9_]{1,25}"), 'the channel name, like "jalsa"'),
    "x": ("space_id", re.compile(r"[A-Za-z0-9]{1,20}"), 'like "1DXxyRYNejbKM"'),
}
_CREDENTIAL: Final = {
    "youtube": ("api_key", "YT_API_KEY", "a YouTube Data API v3 key"),
    "facebook": ("access_token", "FB_ACCESS_TOKEN", "a Page access token"),
    "twitch": ("access_token", "TWITCH_ACCESS_TOKEN", "an app access token"),
    "x": ("bearer_token", "X_BEARER_TOKEN", "an app bearer token"),
}
_EXTRA: Final = {"facebook": ("api_version",), "twitch": ("client_id",)}


def read_listeners(table: Table, platform: str, kind: str, url: str) -> ListenerSpec | None:
    """The listener source of a destination, or None when it has none.

    Args:
        table: the ``listeners`` table (empty when absent); problems go to its collector.
        platform: the destination's platform.
        kind: how the destination is written (``rtmp``, ``icecast``, ``hls``, ``file``).
        url: the destination's URL without credentials (for Icecast's status page).
    """
    if kind == "hls":
        if table.data:
            table.problem("", "the HLS mirror counts its own viewers: remove this table")
        return HlsListeners()
    if kind == "icecast":
        return _icecast(table, url)
    if platform in _IDS:
        return _api(table, platform) if table.data else None
    if table.data:
        table.problem(
            "",
            "listener counts come from youtube, facebook, twitch and x destinations, the "
            "HLS mirror and Icecast: remove this table",
        )
    return None


def listener_spec(
    raw: object, platform: str, kind: str, url: str, *, key: str = "listeners"
) -> ListenerSpec | None:
    """:func:`read_listeners` of an already validated destination's raw table.

    Raises:
        ValueError: the table has problems (the event was not validated).
    """
    problems = Problems()
    data = dict(raw) if isinstance(raw, Mapping) else {}
    spec = read_listeners(Table(data, key, problems), platform, kind, url)
    if len(problems):
        raise ValueError("; ".join(str(p) for p in problems))
    return spec


def _api(table: Table, platform: str) -> ApiListeners | None:
    id_key, pattern, example = _IDS[platform]
    credential, variable, what = _CREDENTIAL[platform]
    table.check_keys((id_key, credential, *_EXTRA.get(platform, ()), "api_base", "poll_seconds"))
    resource = table.string(id_key, required=f"add {id_key} = ... ({example})")
    if resource is not None and not pattern.fullmatch(resource):
        hint = " (it looks like a URL: put only the id)" if "/" in resource else ""
        table.problem(id_key, f"{quote(resource)} is not a {platform} id{hint}: {example}")
        resource = None
    token = _credential(table, credential, variable, what)
    api_base = _api_base(table, API_BASE[platform])
    poll = _poll_seconds(table)
    if platform == "youtube":
        if resource is None or token is None or api_base is None:
            return None
        return YouTubeListeners(resource, token, api_base, poll)
    if platform == "facebook":
        version = _facebook_version(table)
        if resource is None or token is None or api_base is None or version is None:
            return None
        return FacebookListeners(resource, token, version, api_base, poll)
    if platform == "twitch":
        client_id = table.string(
            "client_id", required='add client_id = "..." (your Twitch application\'s Client ID)'
        )
        if client_id is not None and not re.fullmatch(r"[A-Za-z0-9]{1,64}", client_id):
            table.problem("client_id", "is not a Twitch Client ID: letters and digits only")
            client_id = None
        if resource is None or token is None or api_base is None or client_id is None:
            return None
        return TwitchListeners(resource, str(client_id), token, api_base, poll)
    if resource is None or token is None or api_base is None:
        return None
    return XListeners(resource, token, api_base, poll)


def _credential(table: Table, name: str, variable: str, what: str) -> Secret | None:
    value = table.string(
        name,
        required=f'add {name} = "${{{variable}}}" and export {variable} ({what})',
        secret=True,
    )
    if value is None:
        return None
    if not value.strip() or any(c.isspace() for c in value):
        table.problem(name, f"is empty or contains spaces: set {variable} to {what}")
        return None
    return Secret(str(value))


def _api_base(table: Table, default: str) -> str | None:
    text = table.string("api_base")
    if text is None:
        return None if table.has("api_base") else default
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        table.problem("api_base", f"{quote(text)} is not an http(s) URL: write it like {default}")
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        table.problem(
            "api_base", "must not carry a query, a fragment or credentials: use api_key etc."
        )
        return None
    return str(text).rstrip("/")


def _poll_seconds(table: Table) -> float:
    value = table.raw("poll_seconds")
    low, high = POLL_LIMITS
    if value is None:
        return DEFAULT_POLL_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float):
        table.problem("poll_seconds", f"expected a number of seconds, got {quote(value)}")
        return DEFAULT_POLL_SECONDS
    if not low <= value <= high:
        table.problem(
            "poll_seconds", f"{value} is out of range: poll every {low:g} to {high:g} seconds"
        )
        return DEFAULT_POLL_SECONDS
    return float(value)


def _facebook_version(table: Table) -> str | None:
    text = table.string("api_version")
    if text is None:
        return None if table.has("api_version") else FACEBOOK_VERSION
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        table.problem(
            "api_version", f'{quote(text)} is not a Graph API version: write it like "23.0"'
        )
        return None
    return f"v{match.group(1)}"


def _icecast(table: Table, url: str) -> IcecastListeners | None:
    table.check_keys(("status_url", "poll_seconds", "relays"))
    poll = _poll_seconds(table)
    relays = _relays(table)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 8000
    except ValueError:
        return None  # the url's own problem is already recorded
    mount = parts.path or "/"
    status = table.string("status_url")
    if status is None:
        if table.has("status_url") or not host:
            return None
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return IcecastListeners(f"http://{netloc}/status-json.xsl", mount, poll, relays)
    try:
        status_parts = urlsplit(status)
    except ValueError:
        status_parts = None
    if status_parts is None or status_parts.scheme not in ("http", "https"):
        table.problem(
            "status_url",
            f"{quote(status)} is not an http(s) URL: write it like "
            "http://icecast.example.org:8000/status-json.xsl",
        )
        return None
    return IcecastListeners(str(status), mount, poll, relays)


def _relays(table: Table) -> tuple[str, ...]:
    """``relays``: the relays' status-json.xsl URLs, each http(s)."""
    value = table.raw("relays")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        table.problem(
            "relays",
            'expected a list of URLs, like ["http://relay-1.example.org:8000/status-json.xsl"]',
        )
        return ()
    for url in value:
        try:
            parts = urlsplit(url)
            good = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            good = False
        if not good:
            table.problem(
                "relays",
                f"{quote(url)} is not an http(s) URL: write each relay's status page like "
                "http://relay-1.example.org:8000/status-json.xsl",
            )
            return ()
    return tuple(str(v) for v in value)
