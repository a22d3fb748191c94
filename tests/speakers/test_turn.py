"""TURN: a speaker who can only reach the relay still goes on air.

A real coturn (Debian's ``coturn``) runs on loopback with the shipped
deploy/coturn/turnserver.conf (ports, addresses, user and TLS adapted to the test); the
speaker's aiortc client may use relay candidates only (iceTransportPolicy "relay"), so
every packet goes through coturn.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from jalsa_run import JalsaRun, free_port
from whip_client import WhipClient

pytestmark = [
    pytest.mark.media,
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
]

CONFIG = Path(__file__).parents[2] / "deploy" / "coturn" / "turnserver.conf"
PASSWORD = "turn-test-password"


def _test_config(port: int, log: Path) -> str:
    text = CONFIG.read_text()
    replacements = {
        r"^listening-port=.*$": f"listening-port={port}",
        r"^tls-listening-port=.*$": "no-tls\nno-dtls",
        r"^external-ip=.*$": "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1",
        r"^min-port=.*$": "min-port=40000",
        r"^max-port=.*$": "max-port=40999",
        r"^user=.*$": f"user=jalsa:{PASSWORD}",
        r"^allowed-peer-ip=.*$": "allowed-peer-ip=127.0.0.1\nallow-loopback-peers",
        r"^(cert|pkey|no-tlsv1|no-tlsv1_1)\b.*$": "",
        r"^log-file=.*$": f"log-file={log}",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.M)
        assert count, f"the shipped config has no line matching {pattern}"
    return text


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
    try:
        time.sleep(0.5)
        assert process.poll() is None, (tmp_path / "turn.log").read_text()
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def test_a_relay_only_speaker_goes_on_air_through_coturn(turn: int, tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        textwrap.dedent(f"""
        [event]
        name = "TURN Test"
        [program]
        width = 320
        height = 180
        fps = 15
        preset = "ultrafast"
        [[speakers]]
        id = "guest"
        name = "Guest"
        [[rundown]]
        speaker = "guest"
        duration = "5m"
        [[ice_servers]]
        urls = ["turn:127.0.0.1:{turn}?transport=udp"]
        username = "jalsa"
        credential = "${{TURN_PASSWORD}}"
        """)
    )
    with JalsaRun(event, tmp_path / "state", env={"TURN_PASSWORD": PASSWORD}) as run:
        await asyncio.to_thread(run.wait_ready)
        (link,) = run.links().values()
        whip = link.replace("/join/", "/whip/")
        client = WhipClient(whip)
        server = RTCIceServer(f"turn:127.0.0.1:{turn}?transport=udp", "jalsa", PASSWORD)
        client.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
        )
        try:
            assert await client.publish() == 201, client.body
            assert client.headers.get("Link", client.headers.get("link", "")).startswith(
                f'<turn:127.0.0.1:{turn}?transport=udp>; rel="ice-server"; username="jalsa"'
            )
            offer = client.pc.localDescription.sdp
            assert "typ relay" in offer and "typ host" not in offer
            deadline = time.monotonic() + 15
            while await asyncio.to_thread(run.metric, "jalsa_on_air", speaker="guest") != 1:
                assert time.monotonic() < deadline, run.logs[-3000:]
                await asyncio.sleep(0.2)
            assert PASSWORD not in run.logs
        finally:
            await client.close()
