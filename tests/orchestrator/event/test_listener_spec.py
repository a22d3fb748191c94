"""``[destinations.listeners]``: validated with the event, every problem naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import EventError, parse_event
from orchestrator.event.listener_spec import (
    FacebookListeners,
    HlsListeners,
    IcecastListeners,
    TwitchListeners,
    XListeners,
    YouTubeListeners,
    listener_spec,
)

STREAM_KEY = "stream-KEY-12345"
API_KEY = "api-KEY-abcdef-123"
ENV = {"KEY": STREAM_KEY, "YT_API_KEY": API_KEY}


def event(destination: dict[str, Any]) -> dict[str, Any]:
    return {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [destination],
    }


def platform(name: str, listeners: dict[str, Any]) -> dict[str, Any]:
    return event({"name": "d", "platform": name, "key": "${KEY}", "listeners": listeners})


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(EventError) as info:
        parse_event(data, base_dir=Path("/srv"), env=ENV, check_files=False)
    assert API_KEY not in str(info.value)
    return [(p.key, p.message) for p in info.value.problems]


def spec_of(data: dict[str, Any]) -> object:
    parsed = parse_event(data, base_dir=Path("/srv"), env=ENV, check_files=False)
    d = parsed.destinations[0]
    return listener_spec(d.listeners, d.platform, d.kind, d.url)


def test_youtube_from_the_environment() -> None:
    spec = spec_of(platform("youtube", {"video_id": "dQw4w9WgXcQ", "api_key": "${YT_API_KEY}"}))
    assert isinstance(spec, YouTubeListeners)
    assert spec.api_key.reveal() == API_KEY
    assert (spec.api_base, spec.poll_seconds) == ("https://www.googleapis.com", 15.0)
    assert API_KEY not in repr(spec)


def test_every_platform_with_overrides() -> None:
    fb = spec_of(
        platform(
            "facebook",
            {
                "live_video_id": "1234567",
                "access_token": "fb-token-1",
                "api_version": "19.0",
                "api_base": "http://127.0.0.1:9/",
                "poll_seconds": 30,
            },
        )
    )
    assert fb == FacebookListeners(
        "1234567",
        fb.access_token,
        "v19.0",
        "http://127.0.0.1:9",
        30.0,  # type: ignore[union-attr]
    )
    tw = spec_of(
        platform(
            "twitch", {"user_login": "jalsa_tv", "client_id": "abc123", "access_token": "tok-12"}
        )
    )
    assert isinstance(tw, TwitchListeners) and tw.client_id == "abc123"
    x = spec_of(platform("x", {"space_id": "1DXxyRYNejbKM", "bearer_token": "bearer-1"}))
    assert isinstance(x, XListeners) and x.api_base == "https://api.x.com"


def test_no_table_no_poller_but_hls_and_icecast_count_by_default() -> None:
    assert spec_of(event({"name": "yt", "platform": "youtube", "key": "${KEY}"})) is None
    assert spec_of(event({"name": "m", "url": "hls"})) == HlsListeners()
    ice = spec_of(event({"name": "r", "url": "icecast://source:pw-1234@radio.example:8010/a.mp3"}))
    assert ice == IcecastListeners("http://radio.example:8010/status-json.xsl", "/a.mp3", 15.0)
    custom = {"status_url": "https://radio.example/status-json.xsl", "poll_seconds": 60}
    ice = spec_of(
        event({"name": "r", "url": "icecast://source:pw-1234@radio:8000/a", "listeners": custom})
    )
    assert ice == IcecastListeners("https://radio.example/status-json.xsl", "/a", 60.0)


def test_missing_and_wrong_keys_are_named() -> None:
    found = problems(platform("youtube", {"video_id": "https://youtu.be/x", "apikey": "k"}))
    assert {k for k, _ in found} == {  # a missing key sorts at its table's place
        "destinations[0].listeners.video_id",
        "destinations[0].listeners.apikey",
        "destinations[0].listeners.api_key",
    }
    messages = dict(found)
    assert "looks like a URL" in messages["destinations[0].listeners.video_id"]
    assert "did you mean 'api_key'" in messages["destinations[0].listeners.apikey"]
    assert "${YT_API_KEY}" in messages["destinations[0].listeners.api_key"]


@pytest.mark.parametrize(
    ("listeners", "key", "hint"),
    [
        ({"poll_seconds": 1}, "poll_seconds", "out of range"),
        ({"poll_seconds": "15"}, "poll_seconds", "number of seconds"),
        ({"api_base": "ftp://x"}, "api_base", "http(s) URL"),
        ({"api_base": "https://proxy/?key=1"}, "api_base", "query"),
        ({"api_key": " "}, "api_key", "empty"),
        ({"api_key": 12345678}, "api_key", "expected a string, got an integer"),
    ],
)
def test_youtube_values(listeners: dict[str, Any], key: str, hint: str) -> None:
    data = platform("youtube", {"video_id": "dQw4w9WgXcQ", "api_key": API_KEY, **listeners})
    found = problems(data)
    assert [k for k, _ in found] == [f"destinations[0].listeners.{key}"]
    assert hint in found[0][1]
    assert "12345678" not in found[0][1]


def test_twitch_and_facebook_specific_keys() -> None:
    found = problems(platform("twitch", {"user_login": "a b", "access_token": "t-123"}))
    assert {k for k, _ in found} == {
        "destinations[0].listeners.user_login",
        "destinations[0].listeners.client_id",
    }
    found = problems(
        platform("facebook", {"live_video_id": "12", "access_token": "t", "api_version": "x"})
    )
    assert [k for k, _ in found] == ["destinations[0].listeners.api_version"]


def test_tables_where_counts_do_not_apply() -> None:
    found = problems(event({"name": "f", "url": "out.mkv", "listeners": {"video_id": "x"}}))
    assert [k for k, _ in found] == ["destinations[0].listeners"]
    found = problems(event({"name": "m", "url": "hls", "listeners": {"window": 30}}))
    assert [k for k, _ in found] == ["destinations[0].listeners"]
    assert "counts its own viewers" in found[0][1]


def test_listeners_are_checked_even_when_the_destination_has_other_problems() -> None:
    data = event({"name": "yt", "platform": "youtube", "listeners": {"video_id": "dQw4w9WgXcQ"}})
    keys = [k for k, _ in problems(data)]
    assert keys == ["destinations[0].key", "destinations[0].listeners.api_key"]
