"""The Watch: what runs for which event, restarts, shutdown, and the probe agent."""

from __future__ import annotations

import argparse
import asyncio
import logging
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jalsa_run import jalsa
from probe_servers import ProbeServers, make_pki
from prometheus_client import CollectorRegistry
from waiting import async_wait_for

from monitoring import watch as watch_module
from monitoring.agent_link import parse_link, sign_body
from monitoring.agent_metrics import AgentCollector
from monitoring.metrics import ListenerCollector, OutageCollector, ProbeCollector
from monitoring.probe_agent import ProbeAgent, format_round, probe_command
from monitoring.probe_round import CheckResult, ProbeRound, Vantage
from monitoring.probes import Prober
from monitoring.round_wire import Context, body_bytes, encode_round
from monitoring.samples import read_records
from monitoring.targets import Target, Targets
from monitoring.watch import Watch
from orchestrator.event import Event, parse_event


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeServers]:
    with ProbeServers(make_pki(tmp_path_factory.mktemp("pki"))) as running:
        yield running


def make_event(tmp_path: Path, monitoring: dict[str, Any] | None = None) -> Event:
    data: dict[str, Any] = {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [{"name": "mirror", "url": "hls"}],
    }
    if monitoring:
        data["monitoring"] = monitoring
    return parse_event(data, base_dir=tmp_path, env={})


def fake_show() -> Any:
    return SimpleNamespace(
        event="E", speakers=("host",), on_air="host", on_air_kind="speaker",
        destinations=[SimpleNamespace(name="mirror", platform="custom", kind="hls", state="live")],
    )  # fmt: skip


async def test_without_monitoring_only_listeners_and_samples(tmp_path: Path) -> None:
    watch = Watch(make_event(tmp_path), tmp_path / "state", fake_show)
    # jalsa_probe_* and jalsa_agent_* are there for agents that may be enrolled later
    assert [type(c) for c in watch.collectors()] == [
        ListenerCollector,
        ProbeCollector,
        AgentCollector,
        OutageCollector,
    ]
    assert watch.prober is None and not watch.judging
    assert not any(m.name == "jalsa_outage" for m in scrape(watch).collect())  # none to judge
    task = asyncio.create_task(watch.run())
    samples = tmp_path / "state" / "samples"
    await async_wait_for(
        lambda: any(r["type"] == "start" for r in read_records(samples)), 5, "the start record"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await watch.close()
    types = [r["type"] for r in read_records(samples)]
    assert types[0] == "start" and types[-2:] == ["sample", "stop"]


def scrape(watch: Watch) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    for collector in watch.collectors():
        registry.register(collector)
    return registry


def pushed_round(link: str, at: float, seq: int) -> tuple[str, bytes, str]:
    """A signed round as ``jalsa probe --join link`` sends it: control reachable, youtube
    refused at TCP."""
    agent = parse_link(link)
    v = Vantage(agent.agent, agent.city, agent.isp)
    checks = tuple(
        CheckResult(p, "web", "h", c, p == "control", 0.01)
        for p in ("control", "youtube")
        for c in ("dns", "tcp")
    )
    stored = encode_round(
        ProbeRound(v, at - 1.0, at, checks),
        agent=agent.agent,
        generation=agent.generation,
        seq=seq,
        context=Context(),
    )
    body = body_bytes(stored, sent_at=at, backlog=0)
    return agent.agent, body, sign_body(agent, body)


async def test_agents_enrolled_after_the_start_are_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No probes and no agents at the start: once `jalsa agents add` enrols two (in two
    cities) while jalsa runs, their rounds are accepted and classified."""
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("JALSA_SECRET", "agents-secret-for-tests-0123456789")
    monkeypatch.setattr(watch_module, "EVALUATE_SECONDS", 0.2)
    state = tmp_path / "state"
    event = make_event(tmp_path, {"outage_for_seconds": 0})
    watch = Watch(event, state, fake_show)
    metrics = scrape(watch)
    assert not watch.judging
    task = asyncio.create_task(watch.run())
    try:
        links = []
        for vantage, city in (("lahore-1", "Lahore"), ("karachi-1", "Karachi")):
            added = await asyncio.to_thread(
                jalsa, "agents", "add", "--vantage", vantage, "--city", city, "--isp", "PTCL",
                "--base-url", "https://jalsa.example", "--state", str(state),
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            links.append(added.stdout.strip())
        await async_wait_for(
            lambda: len(watch.agent_registry.agents) == 2, 10, "the enrolled agents to be seen"
        )
        assert watch.judging
        now = time.time()
        for link in links:
            verdict = watch.agent_ingest.submit(*pushed_round(link, now, 0), now)
            assert verdict.status == 200, verdict.text
        youtube = {"scope": "platform", "platform": "youtube"}
        await async_wait_for(
            lambda: metrics.get_sample_value("jalsa_outage", youtube) == 1,
            10,
            "youtube judged unreachable from both cities",
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await watch.close()
    assert "outages: judging the rounds of the enrolled probe agents" in caplog.text
    records = list(read_records(state / "samples"))
    assert any(r["type"] == "outage" and r["platform"] == "youtube" for r in records)


async def test_own_probes_flag_a_lost_uplink(
    tmp_path: Path, servers: ProbeServers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    targets = tmp_path / "targets.toml"
    targets.write_text(
        textwrap.dedent(f"""
            control_resolver = ""
            [[targets]]
            platform = "control"
            url = "tcp://127.0.0.1:{servers.refused}"
            [[targets]]
            platform = "youtube"
            url = "tcp://127.0.0.1:{servers.good}"
        """)
    )
    monitoring = {
        "probes": True,
        "city": "Lahore",
        "isp": "PTCL",
        "targets": str(targets),
        "probe_seconds": 5,
        "outage_for_seconds": 0,
    }
    watch = Watch(make_event(tmp_path, monitoring), tmp_path / "state", fake_show)
    assert [type(c) for c in watch.collectors()] == [
        ListenerCollector,
        ProbeCollector,
        AgentCollector,
        OutageCollector,
    ]
    task = asyncio.create_task(watch.run())
    await async_wait_for(lambda: watch.snapshot().outages.active, 5, "an active outage")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await watch.close()
    (outage,) = watch.snapshot().outages.active
    assert (outage.scope, outage.platform, outage.vantages) == ("uplink", "control", {"jalsa"})
    assert "OUTAGE: uplink down at vantage jalsa (Lahore)" in caplog.text
    assert "probes from jalsa: control failing: tcp refused" in caplog.text
    records = list(read_records(tmp_path / "state" / "samples"))
    assert any(r["type"] == "outage" and r["scope"] == "uplink" for r in records)


async def test_a_failing_component_is_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watch_module, "RESTART_SECONDS", 0.01)
    watch = Watch(make_event(tmp_path), tmp_path / "state", fake_show)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(watch.listeners, "run", flaky)
    task = asyncio.create_task(watch.run())
    await async_wait_for(lambda: calls >= 2, 5, "the listeners restarted")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 2  # restarted once; a run that returns is not restarted
    assert "monitoring: listeners failed (RuntimeError); restarting" in caplog.text


async def test_probe_agent_rounds_and_table(servers: ProbeServers) -> None:
    targets = Targets(
        (
            Target("control", "web", f"http://127.0.0.1:{servers.plain}/"),
            Target("x", "ingest", f"tcp://127.0.0.1:{servers.refused}"),
        ),
        None,
    )
    agent = ProbeAgent(Prober(Vantage("v", "c", "i"), targets, timeout=1), interval=0.1)
    task = asyncio.create_task(agent.run())
    await async_wait_for(lambda: agent.latest, 5, "a round of probes")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert agent.latest is not None
    table = format_round(agent.latest)
    assert "x          ingest  tcp   NO" in table and "127.0.0.1: refused" in table
    text = agent.registry.get_sample_value(
        "jalsa_probe_success",
        {"vantage": "v", "city": "c", "isp": "i", "platform": "control", "check": "http"},
    )
    assert text == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vantage": "a/b"}, "--vantage"),
        ({"interval": 0.0}, "--interval"),
        ({"metrics": "nowhere"}, "HOST:PORT"),
        ({"control_resolver": "dns.google"}, "not an IP address"),
        ({"targets": Path("/nonexistent/targets.toml")}, "cannot be read"),
        ({"token_file": Path("/nonexistent/agent-token")}, "--token-file"),
    ],
)
def test_probe_command_rejects_bad_arguments(
    change: dict[str, Any], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(
        vantage="v", city="c", isp="i", metrics="127.0.0.1:9109", targets=None,
        interval=30.0, control_resolver=None, timeout=5.0, once=False, token_file=None,
    )  # fmt: skip
    for key, value in change.items():
        setattr(args, key, value)
    assert probe_command(args) == 2
    assert message in capsys.readouterr().err
