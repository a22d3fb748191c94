"""``jalsa agents`` and ``jalsa probe --join`` over real HTTP: the enrolment link, a
signed round delivered to ``POST /agents/<id>/rounds`` (uvicorn on loopback, in a
thread), the backlog kept while jalsa is unreachable and delivered after, and a revoked
agent's rounds refused and counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from jalsa_run import free_port, jalsa
from prometheus_client import CollectorRegistry, generate_latest
from waiting import wait_for

from monitoring.agent_ingest import Accepted, AgentIngest
from monitoring.agent_metrics import AgentCollector
from monitoring.agent_registry import AgentRegistry
from monitoring.metrics import ProbeCollector
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
        self.metrics.register(ProbeCollector(lambda: None, self.ingest.latest_rounds))
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
        assert server.value("jalsa_agent_rounds_total", **v, arrival="on_time") == 2
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
