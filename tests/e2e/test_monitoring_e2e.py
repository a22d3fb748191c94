"""Listeners and outages end to end: a real jalsa, a real probe agent, a real Prometheus.

Everything the monitoring talks to is a local stand-in: the platform APIs (documented
response shapes, errors, 429s), the probe targets (a good TLS server, a refusing port),
a fake control resolver and a webhook receiver. jalsa (vantage "jalsa", Lahore) and a
``jalsa probe`` agent (Karachi) both fail to reach "x" while their controls work: two
cities out of two, so jalsa's classifier flags a platform outage, logs it, posts the
webhook and exports jalsa_outage; Prometheus scrapes jalsa and the agent and a PromQL
query returns the series. Then ``jalsa report`` reads the samples jalsa kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun, free_port, jalsa
from platform_standin import SECRETS, TWITCH_CLIENT, TWITCH_TOKEN, YT_KEY, PlatformStandIn
from probe_servers import ProbeServers, make_pki
from prometheus_server import PrometheusServer
from waiting import wait_for

pytestmark = pytest.mark.media

HOOK_SECRET = "T0/B0/hook-SECRET-path"
WATCH_URL = "https://mirror.example.org/watch/mirror"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{HOOK_SECRET}", _Hook.received
    server.shutdown()
    server.server_close()


def get(url: str, agent: str = "test", token: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
        return body


def test_listeners_probes_outage_prometheus_and_report(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    hook_url, received = webhook
    pki = make_pki(tmp_path)
    with PlatformStandIn() as apis, ProbeServers(pki) as servers:
        apis.script("youtube", ("count", 1500), ("429", 1), ("count", 1600))
        apis.script("twitch", ("count", 20))
        apis.script("icecast", ("error", 500))
        targets = tmp_path / "targets.toml"
        targets.write_text(
            textwrap.dedent(f"""
                control_resolver = "127.0.0.1:{servers.dns}"
                [[targets]]
                platform = "control"
                url = "https://localhost:{servers.good}/"
                download = "https://localhost:{servers.good}/big"
                [[targets]]
                platform = "youtube"
                url = "https://localhost:{servers.good}/generate_204"
                [[targets]]
                platform = "x"
                url = "tls://localhost:{servers.refused}"
            """)
        )
        agent_port = free_port()
        event = tmp_path / "event.toml"
        refused = f"127.0.0.1:{servers.refused}"
        event.write_text(
            event_toml(
                "Monitored Jalsa",
                event={"on_end": "slate"},
                program=program(fps=10, video_bitrate_kbps=300),
                speakers=[speaker("host", source="testsrc")],
                rundown=[slot("host", "10m")],
                destinations=[
                    {
                        "name": "yt",
                        "platform": "youtube",
                        "key": "stream-key-1234",
                        "url": f"rtmp://{refused}/live2",
                        "listeners": {
                            "video_id": "dQw4w9WgXcQ",
                            "api_key": "${YT_API_KEY}",
                            "api_base": apis.base,
                            "poll_seconds": 5,
                        },
                    },
                    {
                        "name": "tw",
                        "platform": "twitch",
                        "key": "stream-key-5678",
                        "url": f"rtmp://{refused}/app",
                        "listeners": {
                            "user_login": "jalsa_tv",
                            "client_id": TWITCH_CLIENT,
                            "access_token": "${TWITCH_TOKEN}",
                            "api_base": apis.base,
                            "poll_seconds": 5,
                        },
                    },
                    {
                        "name": "radio",
                        "url": f"icecast://source:radio-pw-99@{refused}/jalsa.mp3",
                        "listeners": {
                            "status_url": f"{apis.base}/status-json.xsl",
                            "poll_seconds": 5,
                        },
                    },
                    {"name": "mirror", "url": "hls", "watch_url": WATCH_URL},
                ],
                monitoring={
                    "probes": True,
                    "city": "Lahore",
                    "isp": "PTCL",
                    "targets": targets,
                    "probe_seconds": 5,
                    "agents": [f"http://127.0.0.1:{agent_port}/metrics"],
                    "webhook": "${HOOK_URL}",
                    "sample_seconds": 1,
                    "outage_for_seconds": 0,
                    "outage_clear_seconds": 0,
                },
            )
        )
        env = {
            "YT_API_KEY": YT_KEY,
            "TWITCH_TOKEN": TWITCH_TOKEN,
            "HOOK_URL": hook_url,
            "SSL_CERT_FILE": str(pki.ca),  # the probes trust the test CA
        }
        agent_log = (tmp_path / "agent.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "probe", "--vantage", "karachi-1",
             "--city", "Karachi", "--isp", "Nayatel", "--metrics", f"127.0.0.1:{agent_port}",
             "--targets", str(targets), "--interval", "2", "--timeout", "2"],
            stdout=agent_log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip
        try:
            with JalsaRun(event, tmp_path / "state", env=env) as run:
                run.wait_ready()
                token = run.token()
                mirror = f"http://127.0.0.1:{run.http_port}/hls/mirror/index.m3u8"
                run.wait_for(lambda: _ok(mirror), 30, "the HLS playlist")
                get(mirror, "phone-browser")
                get(mirror, "desktop-browser")
                with PrometheusServer(
                    tmp_path,
                    {
                        "jalsa": [f"127.0.0.1:{run.metrics_port}"],
                        "jalsa-probe": [f"127.0.0.1:{agent_port}"],
                    },
                ) as prometheus:
                    run.wait_for(
                        lambda: run.metric("jalsa_outage", scope="platform", platform="x") == 1,
                        30,
                        "the x outage",
                    )
                    run.wait_for(
                        lambda: run.metric("jalsa_listeners", platform="youtube") == 1600,
                        30,
                        "youtube listeners",
                    )
                    metrics = run.metrics_text()
                    state = json.loads(
                        get(f"http://127.0.0.1:{run.http_port}/api/monitoring", token=token)
                    )
                    lint = subprocess.run(
                        ["promtool", "check", "metrics"], input=metrics,
                        capture_output=True, text=True, timeout=30,
                    )  # fmt: skip
                    found = prometheus.wait_for(
                        'jalsa_probe_success{platform="x", check="tcp"} == 1'
                        ' or jalsa_probe_success{platform="x", check="tls"} == 0'
                    )
                    vantages = prometheus.wait_for(
                        'count by (vantage, city) (jalsa_probe_success{platform="x", check="tls"}'
                        " == 0)",
                    )
                    controls = 'jalsa_probe_success{platform="control", check="tls"} == 1'
                    wait_for(lambda: len(prometheus.query(controls)) == 2, 30, "both vantages")
                    listeners = prometheus.wait_for('jalsa_listeners{platform="youtube"}')
                    outage = prometheus.wait_for(
                        'jalsa_outage{scope="platform", platform="x"} == 1'
                    )
                code, _ = run.stop(signal.SIGTERM)
                logs = run.logs
        finally:
            agent.send_signal(signal.SIGTERM)
            agent_code = agent.wait(10)
            agent_log.close()

    assert code == 0, logs
    assert agent_code == 0, (tmp_path / "agent.log").read_text()
    # the exporter, as Prometheus sees it
    assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout + lint.stderr
    assert found
    assert {(v["metric"]["vantage"], v["metric"]["city"]) for v in vantages} >= {
        ("jalsa", "Lahore"),
        ("karachi-1", "Karachi"),
    }
    assert float(listeners[0]["value"][1]) in (1500.0, 1600.0)
    assert outage[0]["metric"]["scope"] == "platform"
    # listener counts, errors and the HLS mirror
    assert 'jalsa_listeners{platform="twitch"} 20.0' in metrics
    assert 'jalsa_listeners{platform="hls"} 2.0' in metrics
    assert (
        'jalsa_listener_poll_errors_total{platform="youtube",reason="rate_limited"} 1.0' in metrics
    )
    assert 'jalsa_listener_poll_errors_total{platform="icecast",reason="server"}' in metrics
    own = 'check="http",city="Lahore",isp="PTCL",platform="youtube",vantage="jalsa"'
    assert f"jalsa_probe_success{{{own}}} 1.0" in metrics
    # the outage: a log line, the console's snapshot, the webhook
    assert "OUTAGE: x unreachable from Karachi, Lahore while controls work" in logs
    assert [(o["scope"], o["platform"]) for o in state["outages"]["active"]] == [("platform", "x")]
    assert received and received[0]["text"].startswith("OUTAGE: x unreachable from Karachi, Lahore")
    assert received[0]["jalsa"]["cities"] == ["Karachi", "Lahore"]
    # ... and where to send listeners (docs/mirror.md: telling listeners where to go)
    notice = (
        "X is not reachable in Karachi and Lahore. "
        f"Watch Monitored Jalsa live on our own stream: {WATCH_URL}"
    )
    assert received[0]["mirror"]["links"] == [WATCH_URL]
    assert received[0]["mirror"]["text"].startswith(notice)
    assert state["redirect"]["links"] == [WATCH_URL]
    assert state["redirect"]["text"] == received[0]["mirror"]["text"]
    # no secret anywhere
    everything = logs + metrics + json.dumps(state) + (tmp_path / "agent.log").read_text()
    for secret in (*SECRETS, HOOK_SECRET, "radio-pw-99", "stream-key-1234"):
        assert secret not in everything, secret

    # the report, from the samples this run kept
    done = jalsa("report", "--state", str(tmp_path / "state"), "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    peaks = {p["platform"]: p["peak"] for p in report["peaks"]}
    assert peaks["youtube"] == 1600 and peaks["twitch"] == 20 and peaks["hls"] == 2
    assert any(w["platform"] == "x" and w["scope"] == "platform" for w in report["outages"])
    assert {u["destination"] for u in report["uptime"]} == {"yt", "tw", "radio", "mirror"}
    assert report["on_air"][0]["speaker"] == "host" and report["on_air"][0]["live_seconds"] > 1
    assert "x unreachable from Karachi, Lahore" in (tmp_path / "report" / "report.md").read_text()


def _ok(url: str) -> bool:
    try:
        get(url, "phone-browser")
    except OSError:
        return False
    return True
