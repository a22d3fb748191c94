"""The platforms' listener-count APIs, as pure request builders and response parsers.

Sans-I/O: :func:`request_for` says what to GET, :func:`parse_response` turns what came
back (status, headers, body) into an :class:`Outcome`. The poller does the I/O.

Documented response shapes:

- YouTube Data API v3 ``videos?part=snippet,liveStreamingDetails``:
  ``{"items": [{"snippet": {"liveBroadcastContent": "live"}, "liveStreamingDetails":
  {"concurrentViewers": "123"}}]}``; the count is a string, absent when the broadcast is
  not live; no item: no such video. Errors are
  ``{"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}``. The same answer
  says whether the broadcast is live (:func:`monitoring.broadcast.youtube_verdict`): one
  request, one quota unit (``videos.list`` costs 1 whatever the parts), for both.
- Facebook Graph ``/<live_video_id>?fields=live_views``: ``{"live_views": 123}``; errors
  ``{"error": {"code": 4, "message": ...}}`` (codes 4, 17, 32, 613: rate limits).
- Twitch Helix ``streams?user_login=``: ``{"data": [{"viewer_count": 123}]}``, empty
  ``data`` when offline; 429 with ``Ratelimit-Reset`` (epoch seconds).
- X API v2 ``spaces/<id>?space.fields=participant_count``:
  ``{"data": {"participant_count": 12}}``; a missing Space is a 200 with ``errors``;
  429 with ``x-rate-limit-reset`` (epoch seconds).
- Icecast ``/status-json.xsl``: ``{"icestats": {"source": {...} | [...]}}``, each source
  with ``listenurl`` (ending in its mount) and ``listeners``.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from orchestrator.event.listener_spec import (
    FacebookListeners,
    IcecastListeners,
    TwitchListeners,
    XListeners,
    YouTubeListeners,
)
from orchestrator.event.secret import MASK, Secret

Reason = Literal[
    "timeout", "network", "rate_limited", "quota", "auth", "not_found", "server", "bad_response"
]
REASONS: Final[tuple[Reason, ...]] = (
    "timeout",
    "network",
    "rate_limited",
    "quota",
    "auth",
    "not_found",
    "server",
    "bad_response",
)
PolledSpec = YouTubeListeners | FacebookListeners | TwitchListeners | XListeners | IcecastListeners
_FACEBOOK_RATE_CODES: Final = {4, 17, 32, 613}
_FACEBOOK_AUTH_CODES: Final = {10, 102, 190, 200}
_YOUTUBE_QUOTA: Final = {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded"}
_YOUTUBE_AUTH: Final = {"keyInvalid", "forbidden", "accessNotConfigured", "ipRefererBlocked"}
_MAX_DETAIL: Final = 160
# The count (liveStreamingDetails) and the broadcast's life cycle (snippet), in one request.
YOUTUBE_PARTS: Final = "snippet,liveStreamingDetails"


@dataclass(frozen=True, slots=True, repr=False)
class ApiRequest:
    """A GET to make. ``params`` and ``headers`` may hold secrets: use :meth:`describe`."""

    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def describe(self) -> str:
        """The URL for a log line: no query string, so no key or token."""
        return self.url

    def __repr__(self) -> str:
        return f"ApiRequest({self.url!r}, params={sorted(self.params)}, headers=...)"


@dataclass(frozen=True, slots=True)
class Count:
    """The platform answered with a listener count (0 when the broadcast is not live)."""

    value: int


@dataclass(frozen=True, slots=True)
class Failure:
    """No count this time. ``retry_after`` is the wait the platform asked for, if any."""

    reason: Reason
    detail: str
    retry_after: float | None = None


Outcome = Count | Failure


def request_for(spec: PolledSpec) -> ApiRequest:
    """The GET that fetches ``spec``'s count (for YouTube, also the broadcast's state)."""
    if isinstance(spec, YouTubeListeners):
        key = spec.api_key.reveal()
        return ApiRequest(
            f"{spec.api_base}/youtube/v3/videos",
            {"part": YOUTUBE_PARTS, "id": spec.video_id, "key": key},
            secrets=(key,),
        )
    if isinstance(spec, FacebookListeners):
        token = spec.access_token.reveal()
        return ApiRequest(
            f"{spec.api_base}/{spec.api_version}/{spec.live_video_id}",
            {"fields": "live_views", "access_token": token},
            secrets=(token,),
        )
    if isinstance(spec, TwitchListeners):
        token = spec.access_token.reveal()
        return ApiRequest(
            f"{spec.api_base}/helix/streams",
            {"user_login": spec.user_login},
            {"Client-Id": spec.client_id, "Authorization": f"Bearer {token}"},
            secrets=(token,),
        )
    if isinstance(spec, XListeners):
        token = spec.bearer_token.reveal()
        return ApiRequest(
            f"{spec.api_base}/2/spaces/{spec.space_id}",
            {"space.fields": "participant_count"},
            {"Authorization": f"Bearer {token}"},
            secrets=(token,),
        )
    return ApiRequest(spec.status_url)


def parse_response(
    spec: PolledSpec, status: int, headers: Mapping[str, str], body: bytes, now: float
) -> Outcome:
    """Judge one response.

    Args:
        spec: what was asked for.
        status: the HTTP status.
        headers: response headers (case-insensitive lookups are done here).
        body: the response body.
        now: wall-clock time (epoch seconds), to turn reset times into waits.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    data = _json(body)
    if status == 429:
        return Failure("rate_limited", f"HTTP 429{_message(data)}", retry_after(lower, now))
    if isinstance(spec, YouTubeListeners):
        return _youtube(status, data, lower, now)
    if isinstance(spec, FacebookListeners):
        return _facebook(status, data, lower, now)
    if status >= 400 or data is None:
        return _http_failure(status, data, lower, now)
    if isinstance(spec, TwitchListeners):
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return Failure("bad_response", "no data array")
        if not items:
            return Count(0)  # the channel is offline
        return _count(items[0].get("viewer_count") if isinstance(items[0], dict) else None)
    if isinstance(spec, XListeners):
        space = data.get("data") if isinstance(data, dict) else None
        if not isinstance(space, dict):
            if isinstance(data, dict) and data.get("errors"):
                return Failure("not_found", f"no such Space{_message(data)}")
            return Failure("bad_response", "no data object")
        if "participant_count" not in space:
            return Count(0)  # ended or scheduled Spaces have no participants
        return _count(space["participant_count"])
    return _icecast(spec, data)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The wait asked for by ``Retry-After`` (seconds or an HTTP date), Twitch's
    ``Ratelimit-Reset`` or X's ``x-rate-limit-reset`` (epoch seconds). Keys lowercase."""
    value = headers.get("retry-after")
    if value is not None:
        text = value.strip()
        if text.isdigit():
            return float(text)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - now)
    for name in ("ratelimit-reset", "x-rate-limit-reset"):
        value = headers.get(name)
        if value is not None and value.strip().isdigit():
            return max(0.0, float(value.strip()) - now)
    return None


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """``text`` with every secret masked and shortened for a log line or a snapshot."""
    for value in secrets:
        if value:
            text = text.replace(value, MASK)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def secrets_of(spec: PolledSpec) -> tuple[str, ...]:
    return tuple(
        getattr(spec, name).reveal()
        for name in ("api_key", "access_token", "bearer_token")
        if isinstance(getattr(spec, name, None), Secret)
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _count(value: Any) -> Outcome:
    if isinstance(value, bool):
        return Failure("bad_response", "the count is not a number")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and value >= 0:
        return Count(value)
    return Failure("bad_response", "the count is not a number")


def _message(data: Any) -> str:
    """The platform's own error message, if it gave one: ``": <message>"``."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return f": {error['message']}"
    if isinstance(error, str):
        return f": {error}"
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = first.get("detail") or first.get("title") or first.get("message")
        if isinstance(text, str):
            return f": {text}"
    message = data.get("message")
    return f": {message}" if isinstance(message, str) else ""


def _http_failure(status: int, data: Any, headers: Mapping[str, str], now: float) -> Failure:
    detail = f"HTTP {status}{_message(data)}"
    if data is None and status < 400:
        return Failure("bad_response", f"HTTP {status}: the body is not JSON")
    if status in (401, 403):
        return Failure("auth", detail)
    if status == 404:
        return Failure("not_found", detail)
    if status >= 500:
        return Failure("server", detail, retry_after(headers, now))
    return Failure("bad_response", detail)


def _youtube(status: int, data: Any, headers: Mapping[str, str], now: float) -> Outcome:
    if status >= 400 or data is None:
        reasons: set[object] = set()
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and isinstance(error.get("errors"), list):
            reasons = {e.get("reason") for e in error["errors"] if isinstance(e, dict)}
        if reasons & _YOUTUBE_QUOTA:
            return Failure("quota", f"HTTP {status}{_message(data)}", retry_after(headers, now))
        if reasons & _YOUTUBE_AUTH:
            return Failure("auth", f"HTTP {status}{_message(data)}")
        return _http_failure(status, data, headers, now)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return Failure("bad_response", "no items array")
    if not items:
        return Failure("not_found", "no such video (check video_id)")
    details = items[0].get("liveStreamingDetails") if isinstance(items[0], dict) else None
    if not isinstance(details, dict) or "concurrentViewers" not in details:
        return Count(0)  # not live (yet, or any more)
    return _count(details["concurrentViewers"])


def _facebook(status: int, data: Any, headers: Mapping[str, str], now: float) -> Outcome:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        detail = f"HTTP {status}{_message(data)}"
        if code in _FACEBOOK_RATE_CODES:
            return Failure("quota", detail, retry_after(headers, now))
        if code in _FACEBOOK_AUTH_CODES:
            return Failure("auth", detail)
        if code == 100:
            return Failure("not_found", detail)
    if status >= 400 or data is None:
        return _http_failure(status, data, headers, now)
    if not isinstance(data, dict):
        return Failure("bad_response", "not a JSON object")
    return _count(data.get("live_views", 0))


def _icecast(spec: IcecastListeners, data: Any) -> Outcome:
    stats = data.get("icestats") if isinstance(data, dict) else None
    if not isinstance(stats, dict):
        return Failure("bad_response", "no icestats object")
    sources = stats.get("source", [])
    if isinstance(sources, dict):
        sources = [sources]
    if not isinstance(sources, list):
        return Failure("bad_response", "icestats.source is not a list")
    for source in sources:
        if not isinstance(source, dict) or not isinstance(source.get("listenurl"), str):
            continue
        try:
            path = urlsplit(source["listenurl"]).path
        except ValueError:
            continue
        if path == spec.mount:
            return _count(source.get("listeners", 0))
    return Count(0)  # our source is not connected: nobody can be listening


_MOUNT_HEADING: Final = re.compile(r'<h3 class="mount">Mount Point ([^<]*)</h3>')
_CURRENT: Final = re.compile(r"Listeners \(current\):</td>\s*<td[^>]*>\s*(\d+)\s*<")


def icecast_html_url(spec: IcecastListeners) -> str | None:
    """Icecast's HTML status page beside ``status-json.xsl``, or None for another URL."""
    head, sep, tail = spec.status_url.rpartition("/status-json.xsl")
    return f"{head}/status.xsl{tail}" if sep and not tail.strip("/") else None


def parse_icecast_html(html: str, mount: str) -> Outcome:
    """``Listeners (current)`` of ``mount`` on Icecast's ``/status.xsl`` page."""
    if "Icecast" not in html and 'class="roundbox"' not in html:
        return Failure("bad_response", "status.xsl is not Icecast's status page")
    headings = list(_MOUNT_HEADING.finditer(html))
    for index, heading in enumerate(headings):
        if heading.group(1).strip() != mount:
            continue
        end = headings[index + 1].start() if index + 1 < len(headings) else len(html)
        found = _CURRENT.search(html, heading.end(), end)
        if found is None:
            return Failure("bad_response", "no listener count for the mount on status.xsl")
        return Count(int(found.group(1)))
    return Count(0)  # our source is not connected: nobody can be listening
