"""WHIP against a real ``jalsa run``, with aiortc as the speaker's client.

One jalsa run for the module: a live speaker's long slot. Each test joins, drops,
rejoins or misbehaves and reads the outcome from /metrics, the status endpoint and the
HTTP answers; the last test stops jalsa with live sessions and expects a clean exit.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from waiting import async_wait_for
from whip_client import WhipClient

from orchestrator.event import load_event
from orchestrator.speakers.links import Links

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    work = tmp_path_factory.mktemp("whip")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "WHIP Test",
            program=program(video_bitrate_kbps=300),
            speakers=[speaker("guest", "Guest Speaker"), speaker("other", "Other Speaker")],
            rundown=[slot("guest", "10m"), slot("other", "1m")],
        )
    )
    with JalsaRun(event, work / "state") as running:
        running.wait_ready()
        yield running


def _link(run: JalsaRun, speaker: str = "guest", *extra: str) -> str:
    lines = run.links(*extra)
    assert set(lines) == {"guest", "other"}
    return lines[speaker]


def _whip(link: str) -> str:
    return link.replace("/join/", "/whip/")


async def _until(run: JalsaRun, name: str, value: float, within: float = 10, **labels: str) -> None:
    async def reads() -> bool:
        return await asyncio.to_thread(run.metric, name, **labels) == value

    await async_wait_for(
        reads, within, f"{name}{labels} to read {value}", detail=lambda: run.logs[-3000:]
    )


def _logged(run: JalsaRun, line: str) -> bool:
    return line in run.logs


def _bitrate(run: JalsaRun) -> float:
    return run.metric("jalsa_speaker_bitrate_bps", speaker="guest") or 0.0


async def _status(link: str, session: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(link + "/status", json={"session": session, "rtt": 0.05}) as response,
    ):
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        result: dict[str, object] = await response.json()
        return result


async def test_join_goes_on_air_and_a_stall_is_a_drop(run: JalsaRun) -> None:
    link = _link(run)
    client = WhipClient(_whip(link))
    try:
        assert await _publish(client) == 201, client.body
        assert client.headers["Content-Type"].startswith("application/sdp")
        assert client.location is not None
        token = link.rsplit("/", 1)[1]
        assert client.location.startswith(f"/whip/{token}/")
        session = client.location.rsplit("/", 1)[1]
        await _until(run, "jalsa_on_air", 1, speaker="guest")
        await _until(run, "jalsa_speaker_connected", 1, speaker="guest")
        status = await _status(link, session)
        assert status["session"] == "live" and status["live"] is True
        assert status["standing"] == "on_now" and status["connected"] is True
        # After a stats interval: the bitrate, the loss and the RTT the page reported.
        await async_wait_for(
            lambda: asyncio.to_thread(lambda: _bitrate(run) > 10_000), 6, "a bitrate reading"
        )
        assert (
            await asyncio.to_thread(run.metric, "jalsa_speaker_rtt_seconds", speaker="guest")
            == 0.05
        )
        assert (
            await asyncio.to_thread(run.metric, "jalsa_speaker_packet_loss_ratio", speaker="guest")
            == 0
        )
        # The page hears what jalsa receives (its link line shows it).
        received = (await _status(link, session))["received_bps"]
        assert isinstance(received, int) and received > 10_000, received
        assert (await _status(link, "not-a-session"))["received_bps"] is None
        # Media stops, the connection stays open: a drop (after the media timeout, which
        # test_webrtc_source pins with a fake clock), covered by the slate.
        assert client.video is not None and client.audio is not None
        client.video.flowing.clear()
        client.audio.flowing.clear()
        await _until(run, "jalsa_on_air", 1, speaker="slate")
        assert await asyncio.to_thread(run.metric, "jalsa_speaker_connected", speaker="guest") == 0
        assert (await _status(link, session))["session"] == "live"  # a drop, not an end
        client.video.flowing.set()
        client.audio.flowing.set()
        await _until(run, "jalsa_on_air", 1, speaker="guest")
        assert await client.delete() == 200
        assert await client.delete() == 404
        # Ended by the DELETE (held, ≤ 1 s: test_webrtc_source), then covered.
        await _until(run, "jalsa_on_air", 1, speaker="slate")
        assert (await _status(link, session))["session"] == "ended"
        assert _logged(run, f"session {session[:4]}… ended (the speaker left)")
    finally:
        await client.close()


async def test_a_rejoin_replaces_the_first_session(run: JalsaRun) -> None:
    link = _link(run)
    first, second = WhipClient(_whip(link), (0, 200, 0)), WhipClient(_whip(link), (200, 0, 0))
    try:
        assert await _publish(first) == 201
        await _until(run, "jalsa_on_air", 1, speaker="guest")
        # A rejoin within the per-speaker retry interval is told to retry (429); it does.
        assert await _publish(second) == 201, second.body
        assert first.location is not None and second.location is not None
        one, two = first.location.rsplit("/", 1)[1], second.location.rsplit("/", 1)[1]

        async def replaced() -> bool:
            return (await _status(link, one))["session"] == "replaced"

        await async_wait_for(
            replaced, 10, "the first session replaced", detail=lambda: run.logs[-2000:]
        )
        assert (await _status(link, two))["session"] == "live"
        assert await asyncio.to_thread(run.metric, "jalsa_on_air", speaker="guest") == 1
        _, body = run.http("/api/state", token=run.token())
        assert body.count(b'"kind": "webrtc"') + body.count(b'"kind":"webrtc"') == 1
        assert await second.delete() == 200
    finally:
        await first.close()
        await second.close()


async def _publish(client: WhipClient) -> int:
    """POST the offer as the join page does: again while told to retry (429, joining
    faster than once a second); the status of the first answer that is not a 429."""

    async def admitted() -> int | None:
        status = await client.publish()
        return None if status == 429 else status

    return await async_wait_for(admitted, 10, "a POST not told to retry")


async def _post(url: str, body: bytes, content_type: str = "application/sdp") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.text()


async def test_refusals_say_why(run: JalsaRun) -> None:
    link = _link(run, "other")
    whip = _whip(link)
    assert (await _post(whip, b"v=0\r\n", "text/plain"))[0] == 415
    status, text = await _post(whip, b"v=0\r\n" + b"a=x\r\n" * 20_000)
    assert status == 413 and "64 KiB" in text
    status, text = await _post(whip, b"hello, jalsa")
    assert status == 400 and "v=0" in text
    status, text = await _post(
        whip,
        b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"
        b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n",
    )
    assert status == 400 and "fingerprint" in text
    token = link.rsplit("/", 1)[1]
    base = f"http://127.0.0.1:{run.http_port}"
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    status, text = await _post(f"{base}/whip/{forged}", b"v=0")
    assert status == 401 and "not valid" in text
    assert event_path(run) is not None
    expired = Links(load_event(event_path(run)), run.state_dir, env={}).issue(
        "other", int(time.time()) - 1
    )
    status, text = await _post(f"{base}/whip/{expired}", b"v=0")
    assert status == 403 and "expired" in text
    code, page = run.http(f"/join/{forged}")
    assert code == 401 and b"<html" in page and b"ask them to send it again" in page
    code, page = run.http(f"/join/{expired}")
    assert code == 403 and b"has expired" in page
    # Revoking: the old link stops working, the new one works.
    fresh = _link(run, "other", "--revoke", "other")

    async def refused() -> tuple[int, str] | None:
        answer = await _post(whip, b"v=0")  # 400 (no offer) while the link still works
        return answer if answer[0] != 400 else None

    # jalsa re-reads the revocation list every few seconds.
    status, text = await async_wait_for(refused, 10, "the revoked link refused")
    assert status == 403 and "replaced by a newer one" in text
    assert run.http(f"/join/{fresh.rsplit('/', 1)[1]}")[0] == 200
    async with aiohttp.ClientSession() as http, http.patch(f"{base}/whip/{token}/x") as response:
        assert response.status == 405
    # The token never shows up in the log.
    assert token not in run.logs and forged not in run.logs


async def _revoke(run: JalsaRun, speaker: str, token: str | None) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{run.http_port}/api/speakers/{speaker}/revoke"
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.post(url, headers=headers) as response:
        return response.status, await response.json()


async def test_an_operator_revokes_a_speaker_and_their_session_ends_at_once(
    run: JalsaRun,
) -> None:
    link = _link(run)
    client = WhipClient(_whip(link))
    try:
        assert await _publish(client) == 201, client.body
        await _until(run, "jalsa_speaker_connected", 1, speaker="guest")
        assert (await _revoke(run, "guest", None))[0] == 401
        assert (await _revoke(run, "nobody", run.token()))[0] == 404
        status, body = await _revoke(run, "guest", run.token())
        # Ended at once by the revoke (counted in its answer), not at the next check.
        assert status == 200 and body["ended_sessions"] == 1
        await _until(run, "jalsa_speaker_connected", 0, speaker="guest")
        status, text = await _post(_whip(link), b"v=0")
        assert status == 403 and "replaced by a newer one" in text
        assert "links revoked by an operator" in run.logs
    finally:
        await client.close()


async def test_revoking_with_jalsa_links_ends_a_live_session_too(run: JalsaRun) -> None:
    client = WhipClient(_whip(_link(run)))
    try:
        assert await _publish(client) == 201, client.body
        await _until(run, "jalsa_speaker_connected", 1, speaker="guest")
        await asyncio.to_thread(_link, run, "guest", "--revoke", "guest")
        # Re-read every 2 s, checked at every 2 s stats reading (and a scrape).
        await _until(run, "jalsa_speaker_connected", 0, within=8, speaker="guest")
        assert "ended (the link was revoked)" in run.logs
    finally:
        await client.close()


def _join_problems(run: JalsaRun) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(run.http("/api/state", token=run.token())[1])
    problems: dict[str, Any] = state["join_problems"]
    return problems


async def test_a_failed_join_is_reported_checked_and_cleared_by_joining(run: JalsaRun) -> None:
    link = _link(run)
    url = link + "/problem"

    async def report(body: bytes, to: str = url) -> int:
        return (await _post(to, body, "application/json"))[0]

    # Only jalsa's own codes, in a small JSON body, with a valid link.
    assert await report(b'{"problem": "whatever <b>"}') == 422
    assert await report(b"not json") == 422
    assert await report(b'{"problem": "' + b"x" * 300 + b'"}') == 422
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert await report(b'{"problem": "denied"}', forged + "/problem") == 401
    assert "guest" not in await asyncio.to_thread(_join_problems, run)

    async def reported() -> int | None:  # one report a second per speaker
        status = await report(b'{"problem": "denied"}')
        return None if status == 429 else status

    assert await async_wait_for(reported, 5, "a report not told to wait") == 204
    assert await report(b'{"problem": "busy"}') == 429
    problems = await asyncio.to_thread(_join_problems, run)
    assert problems["guest"]["text"] == "microphone permission denied"
    assert problems["guest"]["problem"] == "denied" and time.time() - problems["guest"]["at"] < 10
    assert "join failed: microphone permission denied" in run.logs
    # The speaker joins: the failure is gone.
    client = WhipClient(_whip(link))
    try:
        assert await _publish(client) == 201
        await _until(run, "jalsa_speaker_connected", 1, speaker="guest")
        assert "guest" not in await asyncio.to_thread(_join_problems, run)
    finally:
        await client.close()


def event_path(run: JalsaRun) -> Path:
    assert run.event is not None
    return run.event


def test_the_join_page_is_served_privately(run: JalsaRun) -> None:
    link = _link(run)
    token = link.rsplit("/", 1)[1]
    import urllib.request

    with urllib.request.urlopen(link, timeout=5) as response:
        page = response.read().decode()
        headers = response.headers
    assert ">Join</button>" in page and "Guest Speaker" in page
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert run.http("/join-assets/join.js")[0] == 200
    assert token not in run.logs


def test_jalsa_stops_cleanly_with_speakers_connected(run: JalsaRun) -> None:
    async def connect_and_stop() -> tuple[int, float]:
        client = WhipClient(_whip(_link(run)))
        try:
            assert await _publish(client) == 201
            await _until(run, "jalsa_speaker_connected", 1, speaker="guest")
            return await asyncio.to_thread(run.stop, signal.SIGTERM)
        finally:
            await client.close()

    code, seconds = asyncio.run(connect_and_stop())
    assert code == 0, run.logs[-3000:]
    assert seconds < 5.0
    assert "Traceback" not in run.logs, run.logs[-3000:]
