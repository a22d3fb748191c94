"""TURN: a speaker who can only reach the relay still goes on air, with a login of
their own that expires.

A real coturn (Debian's ``coturn``) runs on loopback with the shipped
deploy/coturn/turnserver.conf (ports, addresses, secret and TLS adapted to the test);
the speaker's aiortc client takes its ICE servers from the join page, as the browser
does, and may use relay candidates only (iceTransportPolicy "relay"), so every packet
goes through coturn.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun, free_port
from waiting import async_wait_for, wait_for
from whip_client import WhipClient

from orchestrator.event.ice_servers import IceServer
from orchestrator.event.secret import Secret

pytestmark = [
    pytest.mark.media,
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
]

CONFIG = Path(__file__).parents[2] / "deploy" / "coturn" / "turnserver.conf"
SECRET = "turn-test-shared-secret-8c1f"


def _test_config(port: int, log: Path) -> str:
    text = CONFIG.read_text()
    replacements = {
        r"^listening-port=.*$": f"listening-port={port}",
        r"^tls-listening-port=.*$": "no-tls\nno-dtls",
        r"^external-ip=.*$": "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1",
        r"^min-port=.*$": "min-port=40000",
        r"^max-port=.*$": "max-port=40999",
        r"^static-auth-secret=.*$": f"static-auth-secret={SECRET}",
        r"^allowed-peer-ip=.*$": "allowed-peer-ip=127.0.0.1\nallow-loopback-peers",
        r"^(cert|pkey|no-tlsv1|no-tlsv1_1)\b.*$": "",
        r"^log-file=.*$": f"log-file={log}",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.M)
        assert count, f"the shipped config has no line matching {pattern}"
    return text


def _answers_stun(port: int) -> bool:
    """Whether coturn answers a STUN Binding request on its UDP port (it is up)."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(request, ("127.0.0.1", port))
        try:
            answer = sock.recv(2048)
        except TimeoutError:
            return False
    return answer[:2] == b"\x01\x01" and answer[8:20] == transaction  # a success response


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "turnserver.conf"
    config.write_text(_test_config(port, tmp_path / "turn.log"))
    process = subprocess.Popen(
        [
            "turnserver",
            "-c",
            str(config),
            "--pidfile",
            str(tmp_path / "turn.pid"),
            "--userdb",
            str(tmp_path / "turndb"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp_path / "turn.log"

    def answering() -> bool:
        assert process.poll() is None, log.read_text() if log.exists() else "coturn exited"
        return _answers_stun(port)

    try:
        wait_for(
            answering,
            10,
            "coturn to answer STUN",
            ignore=(ConnectionRefusedError,),  # the port refuses until coturn binds it
            detail=lambda: log.read_text() if log.exists() else "",
        )
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _page_config(join_url: str) -> dict[str, Any]:
    """The JSON the join page embeds for its script (what the browser reads)."""
    with urllib.request.urlopen(join_url, timeout=10) as response:
        page = response.read().decode()
    found = re.search(r'<script type="application/json" id="config">(.*?)</script>', page, re.S)
    assert found, page[:2000]
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def _relay_only(server: dict[str, Any]) -> RTCPeerConnection:
    ice = RTCIceServer(server["urls"], server.get("username"), server.get("credential"))
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[ice], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    )


async def _gathered_offer(pc: RTCPeerConnection) -> str:
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


async def test_a_relay_only_speaker_goes_on_air_through_coturn(turn: int, tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "TURN Test",
            # Everything is on loopback here, coturn's relay addresses too: a bench.
            event={"speaker_candidates": "any"},
            speakers=[speaker("guest")],
            rundown=[slot("guest", "5m")],
            ice_servers=[
                {
                    "urls": [f"turn:127.0.0.1:{turn}?transport=udp"],
                    "secret": "${TURN_SECRET}",
                    "ttl": "1h",
                }
            ],
        )
    )
    with JalsaRun(event, tmp_path / "state", env={"TURN_SECRET": SECRET}) as run:
        await asyncio.to_thread(run.wait_ready)
        (link,) = run.links().values()
        config = await asyncio.to_thread(_page_config, link)
        (server,) = config["iceServers"]
        expiry, who = server["username"].split(":")
        assert who == "guest" and 3500 < int(expiry) - time.time() <= 3600
        assert config["iceRefreshSeconds"] == 1800
        # What the page fetches before a re-join once half the ttl has passed.
        status, body = await asyncio.to_thread(run.http, config["ice"])
        assert status == 200 and json.loads(body)["iceServers"][0]["username"].endswith(":guest")
        forged = config["ice"].replace("/join/", "/join/x")
        assert (await asyncio.to_thread(run.http, forged))[0] == 401
        client = WhipClient(link.replace("/join/", "/whip/"))
        client.pc = _relay_only(server)
        try:
            assert await client.publish() == 201, client.body
            link_header = client.headers.get("Link", client.headers.get("link", ""))
            assert link_header.startswith(
                f'<turn:127.0.0.1:{turn}?transport=udp>; rel="ice-server"; username="'
            )
            assert ':guest"' in link_header
            offer = client.pc.localDescription.sdp
            assert "typ relay" in offer and "typ host" not in offer
            await async_wait_for(
                lambda: asyncio.to_thread(lambda: run.metric("jalsa_on_air", speaker="guest") == 1),
                15,
                "the guest on air through coturn",
                detail=lambda: run.logs[-3000:],
            )
            assert SECRET not in run.logs and SECRET not in json.dumps(config)
        finally:
            await client.close()


async def test_coturn_refuses_an_expired_login_and_takes_a_fresh_one(turn: int) -> None:
    url = f"turn:127.0.0.1:{turn}?transport=udp"
    server = IceServer((url,), secret=Secret(SECRET), ttl=600)

    def client(made_at: float) -> RTCPeerConnection:
        login = server.login("guest", made_at)
        assert login is not None
        return _relay_only({"urls": [url], "username": login[0], "credential": login[1]})

    expired, fresh = client(time.time() - 700), client(time.time())
    try:
        assert "typ relay" not in await _gathered_offer(expired)
        assert "typ relay" in await _gathered_offer(fresh)
    finally:
        await expired.close()
        await fresh.close()
