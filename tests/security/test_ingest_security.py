"""Ingest, uploads and destinations under attack (issue 12): WHIP offers that aim jalsa's
STUN at other hosts, upload chunks to made-up ids, secrets in pulled-source URLs, stream
keys in cleartext, unauthenticated probe agents."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import aiohttp
import ifaddr
import pytest
from aiortc import RTCPeerConnection
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun, free_port
from waiting import async_wait_for, wait_for

from monitoring.agent_scrape import AgentFeed
from monitoring.probe_agent import ProbeAgent, read_token
from monitoring.probe_round import Vantage
from monitoring.probes import Prober
from monitoring.targets import Target, Targets
from orchestrator.event import parse_event
from orchestrator.event.secret import Secret, redact, sanitize_source_url, source_secrets
from orchestrator.ingest.media_source import MediaSource


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JalsaRun]:
    """A real jalsa with three live speakers (the default speaker_candidates)."""
    work = tmp_path_factory.mktemp("ingest")
    event = work / "event.toml"
    event.write_text(
        event_toml(
            "Ingest Security",
            speakers=[speaker("guest"), speaker("other"), speaker("third")],
            rundown=[slot("guest", "10m"), slot("other", "1m"), slot("third", "1m")],
        )
    )
    with JalsaRun(event, work / "state") as running:
        running.wait_ready()
        yield running


# --- item 4: a WHIP offer's candidates -----------------------------------------------


async def _offer_without_candidates() -> str:
    """A real aiortc offer (audio, sendonly) with its own candidates taken out."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    lines = [line for line in sdp.splitlines() if not line.startswith(("a=candidate:", "a=end-of"))]
    return "\r\n".join(lines) + "\r\n"


def _candidates(*targets: tuple[str, int]) -> str:
    return "".join(
        f"a=candidate:{i} 1 udp 2122260223 {host} {port} typ host\r\n"
        for i, (host, port) in enumerate(targets, 1)
    )


async def _post_offer(url: str, sdp: str) -> tuple[int, str, str | None]:
    headers = {"Content-Type": "application/sdp"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=sdp.encode(), headers=headers) as response,
    ):
        return response.status, await response.text(), response.headers.get("Location")


def _lan_address() -> str | None:
    """One of this machine's non-loopback IPv4 addresses (a "venue LAN" peer)."""
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                return ip.ip
    return None


def _udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _received(sock: socket.socket) -> list[bytes]:
    got = []
    with contextlib.suppress(BlockingIOError):
        while True:
            got.append(sock.recv(2048))
    return got


@pytest.mark.media
async def test_a_whip_offer_cannot_aim_jalsas_stun_anywhere(live: JalsaRun) -> None:
    links = await asyncio.to_thread(live.links)
    whip = {name: link.replace("/join/", "/whip/") for name, link in links.items()}
    base = await _offer_without_candidates()

    # 600 candidates (the review's attack): refused, naming the limit; nothing answered.
    many = _candidates(*(("203.0.113.7", 1024 + i) for i in range(600)))
    status, text, location = await _post_offer(whip["guest"], base + many)
    assert status == 400 and "at most 32" in text and location is None

    # Unusable ones are refused too, with the reason.
    status, text, _ = await _post_offer(whip["third"], base + _candidates(("224.0.0.251", 5353)))
    assert status == 400 and "multicast" in text

    # A LAN peer is checked (the venue LAN works by default); loopback is left out.
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with _udp(lan) as peer, _udp("127.0.0.1") as local:
        targets = (("127.0.0.1", local.getsockname()[1]), (lan, peer.getsockname()[1]))
        status, text, location = await _post_offer(whip["other"], base + _candidates(*targets))
        assert status == 201, text
        stun = await async_wait_for(lambda: _received(peer), 15, "a STUN check at the LAN peer")
        assert stun[0][:2] == b"\x00\x01"  # a STUN Binding request
        await asyncio.sleep(2.0)
        assert _received(local) == [], "jalsa sent STUN to a loopback candidate"
    assert location is not None
    async with aiohttp.ClientSession() as session:
        origin = f"http://127.0.0.1:{live.http_port}"
        async with session.delete(origin + location) as response:
            assert response.status == 200


# --- item 8: pulled-source URLs ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://cdn.example/live/SECRETPATH/index.m3u8",
            "https://cdn.example/live/***/***",
        ),
        (
            "https://cdn.example:8443/hls/stream.m3u8?apikey=APIKEY1234&session=SESSION987",
            "https://cdn.example:8443/hls/***?apikey=***&session=***",
        ),
        ("rtmp://media.example/app/STREAMKEY55", "rtmp://media.example/app/***"),
        ("rtmp://media.example:1936/app/STREAMKEY55?x", "rtmp://media.example:1936/app/***?***"),
        ("rtsp://cam:PASSWORD42@10.0.0.2/stream", "rtsp://cam:***@10.0.0.2/stream"),
        ("http://h.example/a/b#SECRETPATH", "http://h.example/a/***#***"),
        ("/srv/clips/host.mp4", "/srv/clips/host.mp4"),
    ],
)
def test_a_pulled_url_is_shown_up_to_its_app(url: str, shown: str) -> None:
    assert sanitize_source_url(url) == shown


def test_an_error_quoting_parts_of_a_pulled_url_shows_none_of_them() -> None:
    url = "https://cdn.example/live/SECRETPATH/index.m3u8?apikey=APIKEY1234"
    message = (
        "HTTP error 403 for 'https://cdn.example/live/SECRETPATH/seg-1.ts?apikey=APIKEY1234' "
        "(path SECRETPATH/index.m3u8, key APIKEY1234)"
    )
    text = redact(message, source_secrets(url), sanitize=sanitize_source_url)
    assert "SECRETPATH" not in text and "APIKEY1234" not in text
    assert "https://cdn.example/live/***" in text


def test_a_source_snapshot_and_its_log_mask_the_url(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nobody listens: the pull fails at once
    url = f"http://127.0.0.1:{port}/live/SECRETPATH/index.m3u8?apikey=APIKEY1234"
    source = MediaSource("pulled", url, width=320, height=180)
    with caplog.at_level(logging.WARNING, logger="orchestrator.ingest.media_source"):
        source.start()
        try:
            wait_for(lambda: source.snapshot().last_error, 20, "the pull to fail")
        finally:
            source.stop()
            source.join(5)
    snapshot = source.snapshot()
    shown = f"{snapshot.location} {snapshot.last_error} {caplog.text}"
    assert snapshot.location == f"http://127.0.0.1:{port}/live/***/***?apikey=***"
    assert "SECRETPATH" not in shown and "APIKEY1234" not in shown


@pytest.mark.media
def test_api_state_and_the_log_of_a_run_show_no_secret_of_a_pulled_source(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/live/SECRETPATH/index.m3u8?apikey=APIKEY1234&session=SESSION987"
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            speakers=[speaker("pulled", source=url), speaker("host", source="testsrc")],
            rundown=[slot("pulled", "10m"), slot("host", "1m")],
            destinations=[{"name": "mkv", "url": "out/show.mkv"}],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()

        def state_with_error() -> str | None:
            status, body = run.http("/api/state", run.token())
            text = body.decode()
            return text if status == 200 and "Error" in text and "pulled" in text else None

        state = run.wait_for(state_with_error, 40, "the pulled source's error in /api/state")
        run.wait_for(lambda: "source pulled" in run.logs, 20, "the source's log line")
        run.stop()
    logs = run.logs
    for secret in ("SECRETPATH", "APIKEY1234", "SESSION987"):
        assert secret not in state, state
        assert secret not in logs, logs
    assert f"http://127.0.0.1:{port}/live/***" in json.dumps(json.loads(state))


# --- item 11: probe agents want a token ----------------------------------------------

AGENT_TOKEN = "agent-token-0123456789abcdef"


def _prober() -> Prober:
    targets = Targets((Target("x", "ingest", f"tcp://127.0.0.1:{free_port()}"),), None)
    return Prober(Vantage("khi-1", "Karachi", "Nayatel"), targets, timeout=1)


async def _get(url: str, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, await response.text()


async def test_a_probe_agent_with_a_token_serves_only_who_sends_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "agent-token"
    token_file.write_text(AGENT_TOKEN + "\n")
    agent = ProbeAgent(_prober(), interval=0.2, token=read_token(token_file, env={}))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    serving = asyncio.create_task(agent.serve("127.0.0.1", port))
    try:
        await async_wait_for(lambda: agent.latest, 10, "a round of probes")
        status, body = await async_wait_for(
            lambda: _get(url, None), 10, "the agent to answer", ignore=(aiohttp.ClientError,)
        )
        assert status == 401 and "Karachi" not in body
        assert (await _get(url, "not-the-token-0123456789"))[0] == 401
        status, body = await _get(url, AGENT_TOKEN)
        assert status == 200 and 'city="Karachi"' in body

        # jalsa's scrape, as the event file gives it: with the token it reads the results,
        # without it the agent is skipped with a line saying what to do.
        event = parse_event(
            {
                "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
                "rundown": [{"speaker": "host", "duration": "1m"}],
                "destinations": [{"name": "mirror", "url": "hls"}],
                "monitoring": {"agents": [{"url": url, "token": "${KHI_TOKEN}"}, url]},
            },
            base_dir=tmp_path,
            env={"KHI_TOKEN": AGENT_TOKEN},
        )
        with_token, without = event.monitoring.agents
        assert with_token.token is not None and without.token is None
        assert AGENT_TOKEN not in repr(event.monitoring.agents)
        caplog.set_level(logging.INFO, logger="monitoring.agent_scrape")
        async with aiohttp.ClientSession() as session:
            results, _ = await AgentFeed([with_token]).read(session, 1.0)
            refused, _ = await AgentFeed([without]).read(session, 1.0)
        assert {(r.vantage, r.city, r.platform, r.check) for r in results} >= {
            ("khi-1", "Karachi", "x", "tcp")
        }
        assert refused == []
        assert "HTTP 401: the agent wants a token" in caplog.text
        assert AGENT_TOKEN not in caplog.text
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def test_a_probe_agent_without_a_token_warns_when_it_binds_beyond_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for host in ("127.0.0.1", "0.0.0.0"):
        agent = ProbeAgent(_prober(), interval=0.2)
        port = free_port()
        with caplog.at_level(logging.WARNING, logger="monitoring.probe_agent"):
            serving = asyncio.create_task(agent.serve(host, port))
            try:
                status, _ = await async_wait_for(
                    lambda port=port: _get(f"http://127.0.0.1:{port}/metrics", None),
                    10,
                    "the agent to answer",
                    ignore=(aiohttp.ClientError,),
                )
                assert status == 200  # no token asked for: open, as before
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
    warnings = [r.getMessage() for r in caplog.records if "has no token" in r.getMessage()]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "--token-file" in warnings[0]


@pytest.mark.parametrize("text", ["short", "has spaces in it 0123456789", ""])
def test_an_unusable_agent_token_is_refused(tmp_path: Path, text: str) -> None:
    token_file = tmp_path / "agent-token"
    token_file.write_text(text)
    with pytest.raises(ValueError, match="at least 16 characters"):
        read_token(token_file, env={})
    assert read_token(None, env={}) is None
    assert read_token(None, env={"JALSA_AGENT_TOKEN": AGENT_TOKEN}) == Secret(AGENT_TOKEN)


# --- item 6: upload chunks are checked before they are read --------------------------

CHUNK_TYPE = "application/offset+octet-stream"


def _patch_head(path: str, port: int, offset: int, length: int) -> bytes:
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {CHUNK_TYPE}\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _answer(sock: socket.socket, timeout: float = 5.0) -> tuple[int, str]:
    """The status and headers of the answer on ``sock`` (raw HTTP/1.1)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(4096)
        if not got:
            break
        data += got
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split(" ", 2)[1]), head


def _create(link: str, length: int) -> str:
    status, headers, _ = _http(link + "/message", "POST", b"", {"Upload-Length": str(length)})
    assert status == 201
    return str(headers["Location"])


def _http(
    url: str, method: str, data: bytes | None, headers: dict[str, str]
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.media
def test_a_chunk_to_an_unknown_upload_is_refused_before_its_body_is_sent(
    live: JalsaRun,
) -> None:
    token = live.links()["third"].rsplit("/", 1)[1]
    made_up = f"/join/{token}/message/AAAAAAAAAAAAAAAA"
    port = live.http_port
    for _ in range(8):  # what 24 concurrent 8 MiB PATCHes did, one after the other here
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_patch_head(made_up, port, 0, 8 * 1024 * 1024))
            # Not one byte of the body is sent: the answer must come without it.
            status, _ = _answer(sock)
            assert status == 404

    # A real upload at a wrong offset: 409 with the real one, also before the body.
    location = _create(live.links()["third"], 1000)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_patch_head(location, port, 500, 500))
        status, head = _answer(sock)
        assert status == 409 and "upload-offset: 0" in head.lower()
    # Over the chunk limit by its declared length: 413, unread.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_patch_head(location, port, 0, 9 * 1024 * 1024))
        assert _answer(sock)[0] == 413


@pytest.mark.media
def test_one_chunk_per_speaker_at_a_time_and_a_cut_chunk_leaves_nothing(
    live: JalsaRun,
) -> None:
    link = live.links()["third"]
    port = live.http_port
    location = _create(link, 4096)
    with socket.create_connection(("127.0.0.1", port)) as first:
        first.sendall(_patch_head(location, port, 0, 2048) + b"x" * 1024)  # half of it
        time.sleep(0.5)  # the first is being received
        with socket.create_connection(("127.0.0.1", port)) as second:
            second.sendall(_patch_head(location, port, 0, 1024) + b"y" * 1024)
            assert _answer(second)[0] == 409
        # Any other request of the speaker's is turned away unread meanwhile (no body sent).
        made_up = location.rsplit("/", 1)[0] + "/AAAAAAAAAAAAAAAA"
        with socket.create_connection(("127.0.0.1", port)) as third:
            third.sendall(_patch_head(made_up, port, 0, 8 * 1024 * 1024))
            assert _answer(third)[0] == 409
        first.sendall(b"x" * 1024)
        status, head = _answer(first)
        assert status == 204 and "upload-offset: 2048" in head.lower()  # the first one won

    # A chunk cut off halfway (the client went away) is taken back out.
    with socket.create_connection(("127.0.0.1", port)) as cut:
        cut.sendall(_patch_head(location, port, 2048, 2048) + b"z" * 1000)
        time.sleep(0.5)
    base = f"http://127.0.0.1:{port}"

    def offset() -> str | None:
        status, headers, _ = _http(base + location, "HEAD", None, {})
        return headers.get("Upload-Offset") if status == 200 else None

    live.wait_for(lambda: offset() == "2048", 10, "the upload to stand at 2048 again")
