"""Icecast listeners from a real icecast2: ffmpeg is the source, a socket the listener."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator

import aiohttp
import pytest
from icecast_server import Icecast
from waiting import async_wait_for, wait_for

from monitoring.listeners import ListenerPoller
from monitoring.platform_apis import Count
from orchestrator.event.listener_spec import IcecastListeners, listener_spec

ICECAST = shutil.which("icecast2")
pytestmark = pytest.mark.skipif(ICECAST is None, reason="icecast2 is not installed")


async def settles_at(poller: ListenerPoller, session: aiohttp.ClientSession, value: int) -> bool:
    """Polls until the count is ``value`` (Icecast takes a moment to see a listener go)."""

    async def counted() -> bool:
        return await poller.poll(session) == Count(value)

    return await async_wait_for(counted, 4, f"{poller.destination} to count {value}")


@pytest.fixture(scope="module")
def icecast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with Icecast(tmp_path_factory.mktemp("icecast")) as server:
        source = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
             "-i", "sine=frequency=440:sample_rate=44100", "-c:a", "libmp3lame", "-b:a", "64k",
             "-content_type", "audio/mpeg", "-f", "mp3", server.source_url("jalsa.mp3")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(lambda: "/jalsa.mp3" in server.status(), 15, "the mount", detail=server.errors)
            yield server.port
        finally:
            source.terminate()
            source.wait(10)


async def test_listeners_of_our_mount(icecast: int) -> None:
    url = f"icecast://source@127.0.0.1:{icecast}/jalsa.mp3"
    spec = listener_spec({}, "custom", "icecast", url)
    assert spec == IcecastListeners(f"http://127.0.0.1:{icecast}/status-json.xsl", "/jalsa.mp3")
    poller = ListenerPoller("radio", spec)
    async with aiohttp.ClientSession() as session:
        assert await settles_at(poller, session, 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", icecast)
        writer.write(b"GET /jalsa.mp3 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await reader.read(1024)  # the stream is flowing: we are a listener
        try:
            assert await settles_at(poller, session, 1)
            # Every poll counts, even when status-json.xsl comes out malformed (status.xsl)
            assert [await poller.poll(session) for _ in range(10)] == [Count(1)] * 10
            other = ListenerPoller("other", IcecastListeners(spec.status_url, "/other.mp3"))
            assert await settles_at(other, session, 0)
        finally:
            writer.transport.abort()
        assert await settles_at(poller, session, 0)
        assert poller.snapshot().value == 0
