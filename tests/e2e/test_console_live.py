"""The console's live channel, ``/api/live``: the token in the first message (never the
URL), 4401 without it, 20 consoles at once on a real ``jalsa run``; and, in-process, a
console that never reads costs a bounded amount of memory while the others go on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from event_toml import event_toml, slot, speaker
from fastapi import Depends, FastAPI
from fastapi.responses import Response
from jalsa_run import JalsaRun, free_port
from waiting import async_wait_for
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from orchestrator.api import live
from orchestrator.api.auth import RequireOperator
from orchestrator.event.secret import Secret

pytestmark = pytest.mark.timeout(120)
media = pytest.mark.media  # the tests on a real jalsa run (it encodes)

UNAUTHORIZED = 4401


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("console-live")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Live Channel",
            event={"on_end": "slate"},
            speakers=[speaker("host", source="testsrc"), speaker("blue", source="testsrc")],
            rundown=[slot("host", "10m"), slot("blue", "10m")],
            destinations=[{"name": "mirror", "platform": "custom", "url": "hls"}],
        )
    )
    with JalsaRun(event, work / "state") as jalsa:
        jalsa.wait_ready()
        yield jalsa


def url(run: JalsaRun, query: str = "") -> str:
    return f"ws://127.0.0.1:{run.http_port}/api/live{query}"


async def frames(ws: ClientConnection, wanted: int, topic: str, within: float) -> list[Any]:
    """The next ``wanted`` frames of ``topic`` (others are skipped)."""
    seen: list[Any] = []
    async with asyncio.timeout(within):
        while len(seen) < wanted:
            frame = json.loads(await ws.recv())
            if frame["type"] == topic:
                seen.append(frame)
    return seen


async def closed_with(ws: ClientConnection, within: float) -> int | None:
    """The close code the server sent (``None``: it sent a frame instead)."""
    try:
        async with asyncio.timeout(within):
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    return None


@media
async def test_the_token_in_the_first_message_opens_the_channel(run: JalsaRun) -> None:
    async with connect(url(run)) as ws:
        await ws.send(json.dumps({"token": run.token()}))
        first, second = await frames(ws, 2, "state", within=10)
    assert first["status"] == 200 and first["data"]["event"] == "Live Channel"
    assert second["data"]["program"]["seconds"] > first["data"]["program"]["seconds"]
    assert abs(second["at"] - time.time()) < 5  # the server's clock, for countdowns
    assert 0.5 < second["at"] - first["at"] < 2.0  # about 1 Hz (a busy machine is late)


@media
async def test_every_topic_comes_at_once_with_its_status(run: JalsaRun) -> None:
    async with connect(url(run)) as ws:
        await ws.send(json.dumps({"token": run.token()}))
        topics: dict[str, int] = {}
        async with asyncio.timeout(10):
            while len(topics) < len(live.TOPICS):
                frame = json.loads(await ws.recv())
                topics[frame["type"]] = frame["status"]
    assert set(topics) == {t.name for t in live.TOPICS}
    # What each GET answers: 200 where the API is there, else (say) 404 until it lands.
    for topic in live.TOPICS:
        status, _ = run.http(topic.path, token=run.token())
        assert topics[topic.name] == status, topic


@media
async def test_no_token_is_closed_with_4401(run: JalsaRun) -> None:
    started = time.monotonic()
    async with connect(url(run)) as ws:
        code = await closed_with(ws, within=live.AUTH_SECONDS + 5)
    assert code == UNAUTHORIZED
    assert time.monotonic() - started >= live.AUTH_SECONDS - 0.5


@media
@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"token": "not-the-operator-token"}),
        json.dumps({"token": 12345}),
        json.dumps(["token"]),
        "not json at all",
        "x" * 10_000,
    ],
    ids=["wrong", "not-a-string", "not-an-object", "not-json", "huge"],
)
async def test_a_bad_first_message_is_closed_with_4401(run: JalsaRun, first: str) -> None:
    async with connect(url(run)) as ws:
        await ws.send(first)
        assert await closed_with(ws, within=5) == UNAUTHORIZED


@media
async def test_a_token_in_the_url_does_not_count(run: JalsaRun) -> None:
    async with connect(url(run, f"?token={run.token()}")) as ws:
        assert await closed_with(ws, within=live.AUTH_SECONDS + 5) == UNAUTHORIZED


@media
async def test_twenty_consoles_get_every_update(run: JalsaRun) -> None:
    async def console() -> list[float]:
        async with connect(url(run)) as ws:
            await ws.send(json.dumps({"token": run.token()}))
            got = await frames(ws, 3, "state", within=20)
            return [f["data"]["program"]["seconds"] for f in got]

    seconds = await asyncio.gather(*(console() for _ in range(20)))
    assert len(seconds) == 20
    for each in seconds:
        assert each == sorted(each) and each[-1] > each[0]


@media
async def test_a_rundown_change_is_pushed_to_every_console(run: JalsaRun) -> None:
    status, body = run.http("/api/rundown", token=run.token())
    assert status == 200, body
    version = json.loads(body)["version"]
    async with contextlib.AsyncExitStack() as stack:
        consoles = [await stack.enter_async_context(connect(url(run))) for _ in range(3)]
        for ws in consoles:
            await ws.send(json.dumps({"token": run.token()}))
            (latest,) = await frames(ws, 1, "rundown", within=10)
            assert latest["data"]["version"] == version
        answer = await asyncio.to_thread(
            _post, run, "/api/rundown/hold", {"version": version, "text": "Pushed"}
        )
        assert answer["state"] == "hold"
        for ws in consoles:
            (pushed,) = await frames(ws, 1, "rundown", within=2)
            assert pushed["data"]["version"] == version + 1 and pushed["data"]["hold"] == "Pushed"
        await asyncio.to_thread(_post, run, "/api/rundown/resume", {"version": version + 1})


def _post(run: JalsaRun, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {run.token()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# -- in-process: a console that never reads -----------------------------------------------

BIG = 1_000_000  # bytes of each frame
TOKEN = "in-process-operator-token-0123456789"


@pytest.fixture
async def big_frames(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[int, live.LiveChannel]]:
    """An app whose one topic is a 1 MB snapshot made 100 times a second, served by uvicorn
    on a free port."""
    monkeypatch.setattr(live, "TICK", 0.01)
    app = FastAPI()
    operator = Depends(RequireOperator(Secret(TOKEN)))
    counter = 0

    @app.get("/api/state", dependencies=[operator])
    async def state() -> Response:
        nonlocal counter
        counter += 1
        body = json.dumps({"n": counter, "filler": "x" * BIG})
        return Response(body, media_type="application/json")

    channel = live.LiveChannel(app, Secret(TOKEN), (live.Topic("state", "/api/state", 0.0),))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await async_wait_for(lambda: server.started, 10, "uvicorn to start")
    try:
        yield port, channel
    finally:
        await channel.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _never_reads(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that authenticates and then never reads a byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    payload = json.dumps({"token": TOKEN}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # one masked text frame
    await writer.drain()
    return reader, writer


async def test_a_console_that_never_reads_does_not_grow_memory(
    big_frames: tuple[int, live.LiveChannel],
) -> None:
    port, _ = big_frames
    reader, writer = await _never_reads(port)
    try:
        async with connect(f"ws://127.0.0.1:{port}/api/live", max_size=2 * BIG) as fast:
            await fast.send(json.dumps({"token": TOKEN}))
            await fast.recv()
            await asyncio.sleep(1.0)  # the slow one's socket buffers fill up
            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                got = []
                async with asyncio.timeout(10):
                    deadline = time.monotonic() + 3.0
                    while time.monotonic() < deadline:
                        got.append(json.loads(await fast.recv())["data"]["n"])
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    # ~100 frames of 1 MB a second were made; kept for the slow client they would be
    # hundreds of MB. Bounded: the latest frame per topic, and what is in flight.
    assert after - before < 20 * BIG, f"grew by {(after - before) / 1e6:.0f} MB"
    assert len(got) >= 10 and got == sorted(got)  # the fast console went on meanwhile
    assert not reader.at_eof()  # the slow one was still connected all along
