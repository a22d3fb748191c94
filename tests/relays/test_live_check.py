"""Live verification: a push that "works" into an ended YouTube broadcast is flagged.

The verdict is unit-tested on the API's documented answers; then a destination pushes
to nginx-rtmp while a stand-in YouTube API (a real aiohttp server) first says the
broadcast is live, then that it ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from nginx_rtmp import NginxRtmp
from program_replay import Replay, encode_loop, tiny_spec

from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.secret import Secret
from relays.live_check import youtube_verdict
from relays.relay import Relay

VIDEO = "AbCdEfGhIj0"
API_KEY = "yt-api-key-for-tests-77"


def video(content: str, **details: str) -> dict[str, Any]:
    item = {"id": VIDEO, "snippet": {"liveBroadcastContent": content}}
    item["liveStreamingDetails"] = {"actualStartTime": "2026-12-17T20:30:00Z", **details}
    return {"kind": "youtube#videoListResponse", "items": [item]}


@pytest.mark.parametrize(
    ("status", "body", "live", "starts"),
    [
        (200, video("live"), True, "live"),
        (200, video("none", actualEndTime="2026-12-17T21:00:00Z"), False, "ended"),
        (200, video("upcoming"), False, "not started"),
        (200, {"items": []}, False, "gone"),
        (403, {"error": {"errors": [{"reason": "quotaExceeded"}]}}, None, "unknown"),
        (500, None, None, "unknown"),
    ],
)
def test_verdicts(status: int, body: Any, live: bool | None, starts: str) -> None:
    verdict = youtube_verdict(status, body, VIDEO)
    assert verdict.live is live
    assert verdict.text.startswith(starts)


class YouTubeStandIn:
    """``GET /youtube/v3/videos`` answering with ``self.answer`` (needs the API key)."""

    def __init__(self) -> None:
        self.answer = video("live")
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _videos(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.query.get("key") != API_KEY or request.query.get("id") != VIDEO:
            return web.json_response({"error": {"errors": [{"reason": "keyInvalid"}]}}, status=400)
        return web.json_response(self.answer)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/youtube/v3/videos", self._videos)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> YouTubeStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def youtube() -> Iterator[YouTubeStandIn]:
    with YouTubeStandIn() as standin:
        yield standin


@pytest.mark.media
def test_a_push_into_an_ended_broadcast_is_flagged(
    youtube: YouTubeStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    encoder, packets = encode_loop(tiny_spec(), gops=1)
    listeners = {
        "video_id": VIDEO,
        "api_key": API_KEY,
        "api_base": f"http://127.0.0.1:{youtube.port}",
    }
    with NginxRtmp(tmp_path / "nginx") as nginx:
        spec = DestinationSpec(
            "yt", "youtube", "rtmp", f"rtmp://127.0.0.1:{nginx.port}/live",
            key=Secret("yt-stream-key-1"), listeners=listeners,
        )  # fmt: skip
        relay = Relay((encoder.video_stream, encoder.audio_stream), tmp_path / "state")
        destination = relay.add(spec)
        destination._live_check._interval = 0.5  # type: ignore[union-attr]
        with caplog.at_level(logging.WARNING), Replay(packets, relay.publish):
            assert _wait(lambda: destination.snapshot().live_check == "live")
            youtube.answer = video("none", actualEndTime="2026-12-17T21:00:00Z")
            assert _wait(lambda: (destination.snapshot().live_check or "").startswith("ended"))
            snapshot = destination.snapshot()
            relay.close(3.0)
    assert snapshot.state == "live"  # the push itself "works": that is the point
    assert "reaches no viewer" in (snapshot.live_check or "")
    flagged = [r.getMessage() for r in caplog.records if "YouTube says ended" in r.getMessage()]
    assert len(flagged) == 1
    assert API_KEY not in caplog.text and API_KEY not in repr(snapshot)


def _wait(condition: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False
