"""The platforms' responses judged: counts, offline, errors, rate limits and quotas."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitoring.platform_apis import (
    Count,
    Failure,
    PolledSpec,
    icecast_html_url,
    parse_icecast_html,
    parse_response,
    request_for,
    retry_after,
    scrub,
)
from orchestrator.event.listener_spec import (
    FacebookListeners,
    IcecastListeners,
    TwitchListeners,
    XListeners,
    YouTubeListeners,
)
from orchestrator.event.secret import Secret

NOW = 1_800_000_000.0
YT = YouTubeListeners("dQw4w9WgXcQ", Secret("yt-key-123"))
FB = FacebookListeners("1234", Secret("fb-token-123"))
TW = TwitchListeners("jalsa", "client1", Secret("tw-token-123"))
X = XListeners("1DXxyRYNejbKM", Secret("x-token-123"))
ICE = IcecastListeners("http://radio:8000/status-json.xsl", "/jalsa.mp3")


def judge(spec: PolledSpec, body: Any, status: int = 200, **headers: str) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_response(spec, status, headers, raw, NOW)


def test_requests_carry_credentials_where_each_platform_wants_them() -> None:
    yt = request_for(YT)
    assert yt.url == "https://www.googleapis.com/youtube/v3/videos"
    assert yt.params == {
        "part": "snippet,liveStreamingDetails",
        "id": "dQw4w9WgXcQ",
        "key": "yt-key-123",
    }
    fb = request_for(FB)
    assert fb.url == "https://graph.facebook.com/v23.0/1234"
    assert fb.params == {"fields": "live_views", "access_token": "fb-token-123"}
    tw = request_for(TW)
    assert tw.headers == {"Client-Id": "client1", "Authorization": "Bearer tw-token-123"}
    assert tw.params == {"user_login": "jalsa"}
    x = request_for(X)
    assert x.url == "https://api.x.com/2/spaces/1DXxyRYNejbKM"
    assert x.params == {"space.fields": "participant_count"}
    assert x.headers == {"Authorization": "Bearer x-token-123"}
    for request in (yt, fb, tw, x):
        assert "token-123" not in repr(request) and "key-123" not in repr(request)
        assert "123" not in request.describe().split("/")[-1] or request is fb


def test_counts() -> None:
    yt = {"items": [{"liveStreamingDetails": {"concurrentViewers": "1520"}}]}
    assert judge(YT, yt) == Count(1520)
    assert judge(FB, {"live_views": 77, "id": "1234"}) == Count(77)
    assert judge(TW, {"data": [{"viewer_count": 9}], "pagination": {}}) == Count(9)
    assert judge(X, {"data": {"id": "1", "participant_count": 31}}) == Count(31)
    ice = {"icestats": {"source": [{"listenurl": "http://radio:8000/jalsa.mp3", "listeners": 4}]}}
    assert judge(ICE, ice) == Count(4)


def test_not_live_is_zero() -> None:
    assert judge(YT, {"items": [{"liveStreamingDetails": {"actualEndTime": "..."}}]}) == Count(0)
    assert judge(TW, {"data": []}) == Count(0)
    assert judge(X, {"data": {"id": "1", "state": "ended"}}) == Count(0)
    one = {"icestats": {"source": {"listenurl": "http://radio:8000/other", "listeners": 5}}}
    assert judge(ICE, one) == Count(0)
    assert judge(ICE, {"icestats": {"admin": "x"}}) == Count(0)


@pytest.mark.parametrize(
    ("spec", "body", "status", "reason"),
    [
        (YT, {"items": []}, 200, "not_found"),
        (YT, {"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}, 403, "quota"),
        (YT, {"error": {"code": 400, "errors": [{"reason": "keyInvalid"}]}}, 400, "auth"),
        (
            YT,
            {"items": [{"liveStreamingDetails": {"concurrentViewers": "many"}}]},
            200,
            "bad_response",
        ),
        (FB, {"error": {"code": 4, "message": "(#4) Application request limit"}}, 400, "quota"),
        (FB, {"error": {"code": 190, "message": "Invalid OAuth access token."}}, 400, "auth"),
        (FB, {"error": {"code": 100, "message": "Unsupported get request."}}, 400, "not_found"),
        (TW, {"error": "Unauthorized", "status": 401}, 401, "auth"),
        (TW, {"data": [{"viewer_count": -1}]}, 200, "bad_response"),
        (X, {"errors": [{"title": "Not Found Error"}]}, 200, "not_found"),
        (X, {"data": {"participant_count": True}}, 200, "bad_response"),
        (ICE, b"<html>not json", 200, "bad_response"),
        (ICE, b"", 503, "server"),
        (TW, b"oops", 502, "server"),
        (FB, b"", 404, "not_found"),
    ],
)
def test_failures(spec: PolledSpec, body: Any, status: int, reason: str) -> None:
    outcome = judge(spec, body, status)
    assert isinstance(outcome, Failure) and outcome.reason == reason, outcome


def test_rate_limits_and_their_waits() -> None:
    outcome = judge(YT, {"error": {"message": "slow down"}}, 429, **{"Retry-After": "120"})
    assert outcome == Failure("rate_limited", "HTTP 429: slow down", 120.0)
    reset = str(int(NOW) + 45)
    assert judge(TW, {}, 429, **{"Ratelimit-Reset": reset}) == Failure(
        "rate_limited", "HTTP 429", 45.0
    )
    assert judge(X, {}, 429, **{"x-rate-limit-reset": reset}).retry_after == 45.0  # type: ignore[attr-defined]
    assert judge(ICE, b"", 503, **{"Retry-After": "7"}).retry_after == 7.0  # type: ignore[attr-defined]


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "30"}, NOW) == 30.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, NOW) == 0.0
    assert retry_after({"retry-after": "Fri, 15 Jan 2027 09:00:00 GMT"}, NOW) == 3600.0
    assert retry_after({"retry-after": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None


def test_scrub_masks_secrets_and_bounds_length() -> None:
    assert scrub("bad key yt-key-123 in url", ["yt-key-123"]) == "bad key *** in url"
    assert len(scrub("x" * 1000, [])) == 160


def test_icecast_html_status_page() -> None:
    page = (
        '<h3 class="mount">Mount Point /other.ogg</h3><table><tr><td>Listeners (current):</td>'
        '<td class="streamstats">99</td></tr></table>'
        '<div class="roundbox"><h3 class="mount">Mount Point /jalsa.mp3</h3><table><tr>'
        '<td>Stream started:</td><td class="streamstats">now</td></tr><tr>'
        '<td>Listeners (current):</td><td class="streamstats">7</td></tr></table></div>'
    )
    assert parse_icecast_html(page, "/jalsa.mp3") == Count(7)
    assert parse_icecast_html(page, "/gone.mp3") == Count(0)
    assert isinstance(parse_icecast_html("<html>proxy error</html>", "/jalsa.mp3"), Failure)
    assert icecast_html_url(ICE) == "http://radio:8000/status.xsl"
    assert icecast_html_url(IcecastListeners("http://r/stats.json", "/a")) is None
