"""The classifier at work: events logged and announced, agents read back, the webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from waiting import async_wait_for

from monitoring.agent_scrape import AgentFeed, parse_agent_metrics
from monitoring.metrics import ProbeCollector
from monitoring.outage import Classifier, Outage, ProbeResult
from monitoring.outage_watch import OutageEvent, OutageWatch, outage_series
from monitoring.probe_round import CheckResult, ProbeRound, Vantage
from monitoring.webhook import Webhook, payload
from orchestrator.event.secret import Secret


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def round_of(vantage: str, city: str, youtube_ok: bool, at: float) -> list[ProbeResult]:
    return [
        ProbeResult(vantage, city, "isp", "control", "tcp", True, at),
        ProbeResult(vantage, city, "isp", "youtube", "tcp", True, at),
        ProbeResult(vantage, city, "isp", "youtube", "tls", youtube_ok, at),
    ]


def test_an_outage_starts_and_clears_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    events: list[OutageEvent] = []
    watch = OutageWatch(
        Classifier(for_seconds=60, clear_seconds=120),
        ["youtube"],
        on_event=events.append,
        clock=clock,
    )
    for _ in range(5):  # 0..60 s: failing from two cities
        watch.add(round_of("lhr", "Lahore", False, clock.now), [])
        watch.add(round_of("khi", "Karachi", False, clock.now), [])
        watch.evaluate()
        clock.now += 15
    assert [e.kind for e in events] == ["started"]
    started = events[0]
    assert started.outage.scope == "platform" and started.outage.cities == {"Lahore", "Karachi"}
    assert started.text.startswith("OUTAGE: youtube unreachable from Karachi, Lahore")
    assert outage_series(watch.snapshot())["platform", "youtube"] == 1
    assert sum("OUTAGE" in r.getMessage() for r in caplog.records) == 1
    for _ in range(10):  # recovered: clears 120 s later
        watch.add(round_of("lhr", "Lahore", True, clock.now), [])
        watch.add(round_of("khi", "Karachi", True, clock.now), [])
        watch.evaluate()
        clock.now += 15
    assert [e.kind for e in events] == ["started", "cleared"]
    assert "cleared: youtube unreachable" in events[1].text
    assert watch.snapshot().active == ()
    assert [e.kind for e in watch.snapshot().recent] == ["started", "cleared"]


def test_one_city_never_raises_a_platform_outage() -> None:
    clock = Clock()
    watch = OutageWatch(Classifier(for_seconds=0, clear_seconds=0), ["youtube"], clock=clock)
    watch.add(round_of("lhr", "Lahore", False, clock.now), [])
    watch.add(round_of("khi", "Karachi", True, clock.now), [])
    assert watch.evaluate() == []


def test_old_results_never_replace_newer_and_stale_series_are_forgotten() -> None:
    clock = Clock()
    watch = OutageWatch(Classifier(for_seconds=0, clear_seconds=0), clock=clock)
    watch.add(round_of("lhr", "Lahore", True, clock.now), [])
    watch.add(round_of("lhr", "Lahore", False, clock.now - 30), [])
    assert all(r.success for r in watch._results.values())
    clock.now += 10_000
    watch.evaluate()
    assert watch._results == {}


def agent_exposition(ok: bool, at: float) -> str:
    found = ProbeRound(
        Vantage("khi-1", "Karachi", "Nayatel"),
        at - 3,
        at,
        (
            CheckResult("control", "web", "h", "http", True, 0.1),
            CheckResult("youtube", "web", "h", "tls", ok, 0.2),
        ),
    )
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ProbeCollector(lambda: found))
    return generate_latest(registry).decode()


def test_an_agents_metrics_read_back() -> None:
    results, samples = parse_agent_metrics(agent_exposition(False, 500.0), fetched_at=900.0)
    assert sorted(results, key=lambda r: r.platform) == [
        ProbeResult("khi-1", "Karachi", "Nayatel", "control", "http", True, 500.0),
        ProbeResult("khi-1", "Karachi", "Nayatel", "youtube", "tls", False, 500.0),
    ]
    assert samples == []


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, object]], list[int]]]:
    """A webhook receiver that fails the first request with 500; and an agent /metrics."""
    got: list[dict[str, object]] = []
    statuses = [500]

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=agent_exposition(True, 700.0))

    app = web.Application()
    app.router.add_post("/hook/T000/B000/secretpart", hook)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", got, statuses
    await runner.cleanup()


async def test_webhook_retries_and_never_logs_its_url(
    receiver: tuple[str, list[dict[str, object]], list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    base, got, _ = receiver
    hook = Webhook(Secret(f"{base}/hook/T000/B000/secretpart"), retry_seconds=0.05)
    outage = Outage("national", "*", frozenset({"a", "b"}), frozenset({"Lahore", "Karachi"}), 100.0)
    hook.notify(OutageEvent("started", outage, 160.0))
    task = asyncio.create_task(hook.run())
    await async_wait_for(lambda: hook.sent, 2, "the webhook sent")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (hook.sent, hook.failed, len(got)) == (1, 0, 2)
    assert got[-1] == payload(OutageEvent("started", outage, 160.0))
    assert got[-1]["text"] == (
        "OUTAGE: national disruption of several platforms in Karachi, Lahore (since 00:01:40 UTC)"
    )
    assert json.loads(json.dumps(got[-1]))["jalsa"]["cities"] == ["Karachi", "Lahore"]  # type: ignore[index]
    assert "secretpart" not in caplog.text


async def test_webhook_queue_is_bounded() -> None:
    hook = Webhook(Secret("http://127.0.0.1:9/x"))
    outage = Outage("uplink", "control", frozenset({"a"}), frozenset({"c"}), 1.0)
    for i in range(150):
        hook.notify(OutageEvent("started", outage, float(i)))
    assert hook.dropped == 50


async def test_agent_feed_reads_and_survives_a_dead_agent(
    receiver: tuple[str, list[dict[str, object]], list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    base, _, _ = receiver
    caplog.set_level(logging.INFO)
    feed = AgentFeed([f"{base}/metrics", "http://127.0.0.1:9/metrics"], timeout=1)
    async with aiohttp.ClientSession() as session:
        results, _ = await feed.read(session, 800.0)
        await feed.read(session, 830.0)
    assert {(r.vantage, r.platform, r.success, r.at) for r in results} == {
        ("khi-1", "control", True, 700.0),
        ("khi-1", "youtube", True, 700.0),
    }
    dead = [r for r in caplog.records if "127.0.0.1:9" in r.getMessage()]
    assert len(dead) == 1  # one line, not one per read
