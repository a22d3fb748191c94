"""``jalsa agents`` and ``jalsa probe --join`` over real HTTP: the enrolment link, a
signed round delivered to ``POST /agents/<id>/rounds`` (uvicorn on loopback, in a
thread), the backlog kept while jalsa is unreachable and delivered after, and a revoked
agent's rounds refused and counted."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from http_status import status_of
from jalsa_run import free_port, jalsa
from prometheus_client import CollectorRegistry, generate_latest
from waiting import wait_for

from monitoring.agent_ingest import Accepted, AgentIngest
from monitoring.agent_link import agent_key, body_signature, make_link, parse_link, sign_body
from monitoring.agent_metrics import AgentCollector
from monitoring.agent_registry import AgentRegistry, enrol, load_agent_secret
from monitoring.metrics import ProbeCollector
from monitoring.probe_round import ProbeRound, Vantage
from monitoring.round_wire import Context, body_bytes, encode_round
from orchestrator.api.agents import add_agent_routes

ENV = {"JALSA_SECRET": "agents-secret-for-tests-0123456789"}


class Jalsa:
    """The agents' side of a jalsa: the route, the ingest, and its metrics."""

    def __init__(self, state: Path) -> None:
        self.registry = AgentRegistry(state, ENV)
        self.accepted: list[Accepted] = []
        # the rounds of these tests fail at once, so two may start within a second
        self.ingest = AgentIngest(self.registry, on_round=self.accepted.append, min_gap=0.001)
        self.metrics = CollectorRegistry(auto_describe=True)
        self.metrics.register(
            ProbeCollector(lambda: None, lambda: self.ingest.latest_rounds(time.time()))
        )
        self.metrics.register(AgentCollector(self.ingest.snapshot))
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        app = FastAPI()
        add_agent_routes(app, self.ingest)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, daemon=True)
        self._thread.start()
        wait_for(lambda: server.started, 10, "uvicorn to listen")

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.get_sample_value(name, labels)


@pytest.fixture
def targets(tmp_path: Path) -> Path:
    closed = free_port()  # every probe fails at once: the round is quick
    path = tmp_path / "targets.toml"
    path.write_text(
        'control_resolver = ""\n'
        f'[[targets]]\nplatform = "control"\nurl = "http://127.0.0.1:{closed}/"\n'
        f'[[targets]]\nplatform = "youtube"\nurl = "http://127.0.0.1:{closed}/"\n'
    )
    return path


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def probe_once(link: str, targets: Path, backlog: Path) -> str:
    done = jalsa(
        "probe", "--join", link, "--once", "--targets", str(targets), "--timeout", "0.5",
        "--backlog", str(backlog), "--network", "mobile", "--asn", "17557", env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_enrol_push_keep_while_unreachable_deliver_after_and_revoke(
    state: Path, targets: Path, tmp_path: Path
) -> None:
    server = Jalsa(state)
    base = f"http://127.0.0.1:{server.port}"
    added = jalsa(
        "agents", "add", "--vantage", "pesh-1", "--city", "Peshawar", "--isp", "Jazz 4G",
        "--country", "PK", "--base-url", base, "--state", str(state), env=ENV,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    (link,) = added.stdout.split()
    assert link.startswith(f"{base}/agents/pesh-1#")
    listed = jalsa("agents", "list", "--state", str(state), env=ENV)
    assert "pesh-1\tPeshawar\tJazz 4G\tPK\tactive" in listed.stdout
    assert link.split("k=")[1].split("&")[0] not in listed.stdout  # no key in the listing
    server.registry.refresh()
    backlog = tmp_path / "backlog"

    # jalsa is not up: the round is kept
    assert probe_once(link, targets, backlog).startswith("0 delivered, 1 kept")
    server.start()
    try:
        # up again: this round and the one kept are delivered, newest first
        assert probe_once(link, targets, backlog).startswith("2 delivered, 0 kept")
        assert len(server.accepted) == 2
        v = {"vantage": "pesh-1", "city": "Peshawar", "isp": "Jazz 4G"}
        assert server.value("jalsa_probe_success", **v, platform="control", check="tcp") == 0
        # the kept round came after the newer one: late
        assert server.value("jalsa_agent_rounds_total", **v, arrival="on_time") == 1
        assert server.value("jalsa_agent_rounds_total", **v, arrival="late") == 1
        info = {**v, "country": "PK", "network": "mobile", "asn": "17557"}
        assert any(
            s.labels.items() >= info.items()
            for m in server.metrics.collect()
            if m.name == "jalsa_agent_info"
            for s in m.samples
        )

        revoked = jalsa("agents", "revoke", "pesh-1", "--state", str(state), env=ENV)
        assert revoked.returncode == 0, revoked.stderr
        server.registry.refresh()
        assert probe_once(link, targets, backlog).startswith("0 delivered, 1 kept")
        assert server.value("jalsa_agent_rejected_total", reason="revoked") == 1
        assert len(server.accepted) == 2
        text = generate_latest(server.metrics).decode()
        assert link.split("k=")[1].split("&")[0] not in text
    finally:
        server.stop()


def test_a_bad_link_is_refused_before_probing(targets: Path, tmp_path: Path) -> None:
    done = jalsa("probe", "--join", "https://jalsa.example/agents/pesh-1#g=0", "--once")
    assert done.returncode == 2 and "cut short" in done.stderr
    done = jalsa("probe", "--join", "https://jalsa.example/agents/x#g=0&k=", "--vantage", "v")
    assert done.returncode == 2 and "leave out --vantage" in done.stderr


def post(port: int, agent: str, body: bytes, signature: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/agents/{agent}/rounds",
        data=body,
        headers={"X-Jalsa-Signature": signature, "Content-Type": "application/json"},
    )
    return status_of(request)


def test_forged_replayed_tampered_and_unknown_submissions_over_http(state: Path) -> None:
    server = Jalsa(state)
    secret = load_agent_secret(state, ENV)
    made = enrol(state, "pesh-1", "Peshawar", "Jazz")
    link = parse_link(
        make_link("http://x", made.id, 0, agent_key(secret, made.id, 0), "Peshawar", "Jazz")
    )
    server.registry.refresh()

    def body(seq: int, city: str = "Peshawar") -> bytes:
        now = time.time()
        found = ProbeRound(Vantage("pesh-1", city, "Jazz"), now - 1, now)
        stored = encode_round(found, agent="pesh-1", generation=0, seq=seq, context=Context())
        return body_bytes(stored, sent_at=now, backlog=0)

    server.start()
    try:
        good = body(1)
        assert post(server.port, "pesh-1", good, sign_body(link, good)) == 200
        forged = body(2, city="Evilcity")
        wrong_key = body_signature(b"k" * 32, forged)
        assert post(server.port, "pesh-1", forged, wrong_key) == 401
        assert post(server.port, "pesh-1", good, sign_body(link, good)) == 409  # replayed
        tampered = body(3)
        signature = sign_body(link, tampered)
        assert (
            post(server.port, "pesh-1", tampered.replace(b'"seq": 3', b'"seq": 4'), signature)
            == 401
        )
        assert post(server.port, "nobody", good, sign_body(link, good)) == 401
        assert post(server.port, "pesh-1", b"x" * 70_000, "v1=x") == 413
        labelled = body(5, city="Evilcity")  # signed, but not the enrolled labels
        assert post(server.port, "pesh-1", labelled, sign_body(link, labelled)) == 422
        counts = {
            r: server.value("jalsa_agent_rejected_total", reason=r)
            for r in ("bad_signature", "replay", "unknown_agent", "malformed", "labels")
        }
        assert counts == {
            "bad_signature": 2, "replay": 1, "unknown_agent": 1, "malformed": 1, "labels": 1
        }  # fmt: skip
        text = generate_latest(server.metrics).decode()
        assert "Evilcity" not in text and "nobody" not in text
        assert len(server.accepted) == 1
    finally:
        server.stop()


def test_an_agent_enrolled_a_moment_ago_is_accepted_at_its_first_round(state: Path) -> None:
    """jalsa re-reads its registry for an agent it does not know (before: refused as
    unknown until the next periodic re-read, so the first rounds went to the backlog)."""
    server = Jalsa(state)
    server.registry.refresh()  # no agents yet: what jalsa read at its start
    secret = load_agent_secret(state, ENV)
    made = enrol(state, "new-1", "Multan", "Zong")
    link = parse_link(
        make_link("http://x", made.id, 0, agent_key(secret, made.id, 0), "Multan", "Zong")
    )
    now = time.time()
    found = ProbeRound(Vantage("new-1", "Multan", "Zong"), now - 1, now)
    stored = encode_round(found, agent="new-1", generation=0, seq=1, context=Context())
    good = body_bytes(stored, sent_at=now, backlog=0)
    server.start()
    try:
        assert post(server.port, "new-1", good, sign_body(link, good)) == 200
        assert server.value("jalsa_agent_rejected_total", reason="unknown_agent") in (None, 0)
    finally:
        server.stop()


class _Answers(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_an_agent_measures_at_its_calm_cadence_while_all_answers_and_fast_at_a_failure(
    state: Path, tmp_path: Path
) -> None:
    """``jalsa probe --join`` (a real process): every round says when the next comes; after
    three clear rounds that is ``--calm-interval``, and the first round that finds a
    platform down is back at ``--interval``."""
    platform = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=platform.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{platform.server_address[1]}/"
    targets = tmp_path / "targets.toml"
    targets.write_text(
        'control_resolver = ""\n'
        f'[[targets]]\nplatform = "control"\nurl = "{url}"\n'
        f'[[targets]]\nplatform = "youtube"\nurl = "{url}"\n'
    )
    server = Jalsa(state)
    made = enrol(state, "pesh-1", "Peshawar", "Jazz")
    key = agent_key(load_agent_secret(state, ENV), made.id, 0)
    link = make_link(f"http://127.0.0.1:{server.port}", made.id, 0, key, "Peshawar", "Jazz")
    server.registry.refresh()
    server.start()
    agent = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "probe", "--join", link,
         "--targets", str(targets), "--interval", "1", "--calm-interval", "2",
         "--timeout", "0.5", "--backlog", str(tmp_path / "backlog")],
        env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: len(server.accepted) >= 4, 30, "four rounds at jalsa")
        said = [a.round.next_in for a in server.accepted[:4]]
        assert said == [1.0, 1.0, 2.0, 2.0]
        platform.shutdown()
        platform.server_close()

        def failed() -> Accepted | None:
            return next((a for a in server.accepted if not all(
                ok for ok, _ in a.round.outcomes().values())), None)  # fmt: skip

        first = wait_for(failed, 30, "a round that finds the platform gone")
        assert first.round.next_in == 1.0
    finally:
        agent.terminate()
        _, errors = agent.communicate(timeout=10)
        server.stop()
    assert agent.returncode == 0, errors
    assert b"every 2s from now (all clear)" in errors and b"every 1s from now" in errors
