"""Listener pollers against the platform API stand-ins: counts, errors, 429s, timeouts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jalsa_run import free_port
from platform_standin import (
    FB_TOKEN,
    SECRETS,
    TWITCH_CLIENT,
    TWITCH_TOKEN,
    X_TOKEN,
    YT_KEY,
    PlatformStandIn,
)

from monitoring.broadcast import Broadcasts
from monitoring.hls_viewers import HlsViewers
from monitoring.listeners import ListenerPoller, Listeners
from monitoring.platform_apis import Count, Failure
from monitoring.poll_schedule import PollSchedule
from orchestrator.event import parse_event
from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.listener_spec import (
    FacebookListeners,
    IcecastListeners,
    TwitchListeners,
    XListeners,
    YouTubeListeners,
)
from orchestrator.event.secret import Secret


@pytest.fixture(scope="module")
def standin() -> Iterator[PlatformStandIn]:
    with PlatformStandIn() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for secret in SECRETS:
        assert secret not in caplog.text


def specs(base: str) -> dict[str, object]:
    return {
        "youtube": YouTubeListeners("dQw4w9WgXcQ", Secret(YT_KEY), base),
        "facebook": FacebookListeners("1234567", Secret(FB_TOKEN), "v19.0", base),
        "twitch": TwitchListeners("jalsa_tv", TWITCH_CLIENT, Secret(TWITCH_TOKEN), base),
        "x": XListeners("1DXxyRYNejbKM", Secret(X_TOKEN), base),
        "icecast": IcecastListeners(f"{base}/status-json.xsl", "/jalsa.mp3"),
    }


async def test_each_platform_counts_with_its_credentials(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    for n, (platform, spec) in enumerate(specs(standin.base).items()):
        standin.script(platform, ("count", 100 + n))
        poller = ListenerPoller(f"d-{platform}", spec)  # type: ignore[arg-type]
        assert await poller.poll(session) == Count(100 + n)
        snap = poller.snapshot()
        assert (snap.platform, snap.value, snap.errors) == (platform, 100 + n, ())
        assert snap.age_seconds is not None and snap.age_seconds < 1
    youtube = standin.seen("youtube")[-1]
    assert youtube.query == {
        "part": "snippet,liveStreamingDetails",
        "id": "dQw4w9WgXcQ",
        "key": YT_KEY,
    }
    facebook = standin.seen("facebook")[-1]
    assert facebook.path == "/v19.0/1234567"
    assert facebook.query == {"fields": "live_views", "access_token": FB_TOKEN}
    twitch = standin.seen("twitch")[-1]
    assert twitch.headers["Client-Id"] == TWITCH_CLIENT
    assert twitch.query == {"user_login": "jalsa_tv"}
    assert standin.seen("x")[-1].query == {"space.fields": "participant_count"}


async def test_offline_and_wrong_credentials(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    for platform, spec in specs(standin.base).items():
        standin.script(platform, ("offline",))
        assert await ListenerPoller("d", spec).poll(session) == Count(0), platform  # type: ignore[arg-type]
    wrong = YouTubeListeners("dQw4w9WgXcQ", Secret("not-the-key-000"), standin.base)
    poller = ListenerPoller("yt", wrong)
    outcome = await poller.poll(session)
    assert isinstance(outcome, Failure) and outcome.reason == "auth"
    assert "not-the-key-000" not in repr(poller.snapshot())
    assert (
        poller.snapshot().last_error
        == "auth: HTTP 400: API key not valid. Please pass a valid API key."
    )


def verdicts() -> tuple[Broadcasts, list[str | None]]:
    """Broadcasts whose verdicts (as the wiring gets them) land in the list."""
    broadcasts, texts = Broadcasts(), []
    broadcasts.connect(lambda name, text: texts.append(text), lambda name: False)
    return broadcasts, texts


async def test_one_youtube_request_gives_the_count_and_the_broadcast_verdict(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    # The count and whether the broadcast is live come from the same answer: one request
    # per poll (one quota unit), not one for the count and another for the verdict.
    spec = YouTubeListeners("Br0adcast01", Secret(YT_KEY), standin.base)
    broadcasts, texts = verdicts()
    poller = ListenerPoller("yt", spec, broadcasts=broadcasts)
    standin.script("youtube", ("count", 321), ("ended",), ("offline",))
    before = len(standin.seen("youtube"))
    assert await poller.poll(session) == Count(321)
    assert texts == ["live"]
    assert await poller.poll(session) == Count(0)
    assert (texts[-1] or "").startswith(
        "ended: broadcast Br0adcast01 ended at 2026-12-17T21:00:00Z; what is pushed now "
        "reaches no viewer"
    )
    assert await poller.poll(session) == Count(0)
    assert (texts[-1] or "").startswith("not started: broadcast Br0adcast01 is still upcoming")
    seen = standin.seen("youtube")[before:]
    assert len(seen) == len(texts) == 3  # three polls, three requests, three verdicts
    assert all(r.query["part"] == "snippet,liveStreamingDetails" for r in seen)


async def test_the_verdict_when_youtube_cannot_be_asked(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    broadcasts, texts = verdicts()
    wrong = YouTubeListeners("Br0adcast01", Secret("not-the-key-000"), standin.base)
    await ListenerPoller("yt", wrong, broadcasts=broadcasts).poll(session)
    port = free_port()
    spec = YouTubeListeners("Br0adcast01", Secret(YT_KEY), f"http://127.0.0.1:{port}")
    await ListenerPoller("yt", spec, broadcasts=broadcasts).poll(session)
    assert texts == [
        "unknown: the YouTube API answered 400 keyInvalid",
        f"unknown: the YouTube API could not be reached (cannot connect to 127.0.0.1:{port})",
    ]


async def test_timeout_keeps_the_last_value_and_counts_errors(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    spec = specs(standin.base)["twitch"]
    standin.script("twitch", ("count", 42), ("hang", 3), ("error", 503), ("quota",))
    poller = ListenerPoller("tw", spec, timeout=0.3)  # type: ignore[arg-type]
    assert await poller.poll(session) == Count(42)
    started = time.monotonic()
    assert await poller.poll(session) == Failure("timeout", "no answer within 0.3s")
    assert time.monotonic() - started < 2
    await poller.poll(session)
    snap = poller.snapshot()
    assert snap.value == 42 and snap.updated_at is not None
    assert dict(snap.errors) == {"timeout": 1, "server": 1}
    assert snap.last_error == "server: HTTP 503"


async def test_refused_connection_is_a_network_error(session: aiohttp.ClientSession) -> None:
    port = free_port()
    spec = YouTubeListeners("dQw4w9WgXcQ", Secret(YT_KEY), f"http://127.0.0.1:{port}")
    outcome = await ListenerPoller("yt", spec).poll(session)
    assert outcome == Failure("network", f"cannot connect to 127.0.0.1:{port}")


async def test_429_retry_after_is_respected_by_the_loop(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    standin.script("x", ("429", 1), ("count", 5))
    spec = specs(standin.base)["x"]
    before = len(standin.seen("x"))
    poller = ListenerPoller("x", spec, schedule=PollSchedule(0.05, jitter=0))  # type: ignore[arg-type]
    task = asyncio.create_task(poller.run(session))
    await asyncio.sleep(0.7)
    assert len(standin.seen("x")) - before == 1  # still waiting out Retry-After
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(standin.seen("x")) - before >= 2
    assert poller.snapshot().value == 5
    assert dict(poller.snapshot().errors) == {"rate_limited": 1}


async def test_quota_error_backs_off_for_minutes(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    standin.script("youtube", ("quota",))
    outcome = await ListenerPoller("yt", specs(standin.base)["youtube"]).poll(session)  # type: ignore[arg-type]
    assert isinstance(outcome, Failure) and outcome.reason == "quota"
    assert PollSchedule(15, jitter=0).next_delay(outcome) == 300


async def test_one_line_per_change_of_trouble(
    standin: PlatformStandIn, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    standin.script("facebook", ("error", 500))
    poller = ListenerPoller("fb", specs(standin.base)["facebook"])  # type: ignore[arg-type]
    for _ in range(5):
        await poller.poll(session)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "fb (facebook): server: HTTP 500" in warnings[0].getMessage()


def destinations_of(tables: list[dict[str, Any]]) -> tuple[DestinationSpec, ...]:
    """``[[destinations]]`` tables as an event file holding them reads them."""
    data = {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": tables,
    }
    return parse_event(data, base_dir=Path("/tmp"), env={"YT_API_KEY": YT_KEY}).destinations


async def test_listeners_of_an_event(standin: PlatformStandIn) -> None:
    standin.script("youtube", ("count", 1500))
    standin.script("twitch", ("count", 20))
    standin.script("icecast", ("count", 7))
    destinations = destinations_of(
        [
            {
                "name": "yt",
                "platform": "youtube",
                "key": "k-1234",
                "listeners": {
                    "video_id": "dQw4w9WgXcQ",
                    "api_key": "${YT_API_KEY}",
                    "api_base": standin.base,
                },
            },
            {
                "name": "yt-backup",
                "platform": "youtube",
                "key": "k-5678",
                "listeners": {
                    "video_id": "dQw4w9WgXcQ",
                    "api_key": "${YT_API_KEY}",
                    "api_base": standin.base,
                },
            },
            {
                "name": "tw",
                "platform": "twitch",
                "key": "k-9999",
                "listeners": {
                    "user_login": "jalsa_tv",
                    "client_id": TWITCH_CLIENT,
                    "access_token": TWITCH_TOKEN,
                    "api_base": standin.base,
                },
            },
            {
                "name": "radio",
                "url": "icecast://source:pw-1234@127.0.0.1:1/jalsa.mp3",
                "listeners": {"status_url": f"{standin.base}/status-json.xsl"},
            },
            {"name": "mirror", "url": "hls"},
            {"name": "rec", "url": "rec.mkv"},
        ]
    )
    hls = HlsViewers()
    hls.seen("mirror", "10.1.1.1", "a")
    listeners = Listeners(destinations, hls)
    assert [p.destination for p in listeners.pollers] == ["yt", "yt-backup", "tw", "radio"]
    task = asyncio.create_task(listeners.run())
    for _ in range(100):
        if len(listeners.snapshot().by_platform()) == 4 and all(
            d.value is not None for d in listeners.snapshot().destinations
        ):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = listeners.snapshot()
    assert snapshot.by_platform() == {"youtube": 3000, "twitch": 20, "icecast": 7, "hls": 1}
    for secret in SECRETS:
        assert secret not in repr(snapshot)


async def test_destinations_added_and_removed_while_live(standin: PlatformStandIn) -> None:
    standin.script("icecast", ("count", 7))
    standin.script("youtube", ("count", 12))
    radio, yt = destinations_of(
        [
            {
                "name": "radio",
                "url": "icecast://source:pw-1234@127.0.0.1:1/jalsa.mp3",
                "listeners": {"status_url": f"{standin.base}/status-json.xsl"},
            },
            {
                "name": "yt2",
                "platform": "youtube",
                "key": "k-1234",
                "listeners": {
                    "video_id": "Br0adcast02",
                    "api_key": "${YT_API_KEY}",
                    "api_base": standin.base,
                },
            },
        ]
    )
    listeners = Listeners((), HlsViewers())  # an event with nothing to count at start
    notes: list[tuple[str, str | None]] = []
    listeners.broadcasts.connect(lambda name, text: notes.append((name, text)), lambda _: True)
    task = asyncio.create_task(listeners.run())
    try:
        listeners.add(radio)  # POST /api/destinations
        listeners.add(yt)  # with its listeners table: its broadcast is judged too
        for _ in range(100):
            if len(listeners.snapshot().by_platform()) == 2 and notes:
                break
            await asyncio.sleep(0.05)
        assert listeners.snapshot().by_platform() == {"icecast": 7, "youtube": 12}
        assert notes[0] == ("yt2", "live")
        listeners.remove("radio")  # DELETE /api/destinations/radio
        listeners.remove("yt2")
        assert listeners.snapshot().destinations == ()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_icecast_falls_back_to_the_html_status_page(
    standin: PlatformStandIn, session: aiohttp.ClientSession
) -> None:
    standin.script("icecast", ("broken", 12))
    poller = ListenerPoller("radio", specs(standin.base)["icecast"])  # type: ignore[arg-type]
    assert await poller.poll(session) == Count(12)
    assert standin.seen("icecast-html")
