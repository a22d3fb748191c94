"""How long a /metrics scrape stops jalsa's event loop, with 200 pushing agents.

One process, as ``jalsa run``: a :class:`~monitoring.watch.Watch` (no probes of its own)
with ``--agents`` agents enrolled, each with a realistic latest round (``--platforms``
platforms plus the control, four checks each: ~16,000 series at 200 agents and 8
platforms), and the registry of ``jalsa run`` (the show's collectors on a synthetic
snapshot and the Watch's) served by uvicorn on the loop, either as before
(``--render loop``: ``prometheus_client.make_asgi_app``, rendered in the handler) or as
now (``--render thread``: :func:`monitoring.metrics_endpoint.metrics_app`, snapshots on
the loop through :class:`~monitoring.metrics_endpoint.OnLoop`, the render in a worker
thread). Meanwhile the agents keep submitting (every agent every 30 s, on the loop) and
a loop-lag probe sleeps 5 ms at a time and records how late it wakes. ``curl`` scrapes
``--scrapes`` times from another thread (gzip, as Prometheus asks).

Prints, per mode: the loop's lag during scrapes (max, p99) and outside them (max), and
the scrape's wall time (median, max).

    python bench/metrics_loop_stall.py [--agents 200] [--platforms 8] [--scrapes 20]
        [--render loop,thread]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["JALSA_SECRET"] = "bench-agents-secret-0123456789abcdef"

import uvicorn  # noqa: E402
from benchlib import free_port  # noqa: E402
from metrics_scrape import show_snapshot  # noqa: E402
from prometheus_client import make_asgi_app  # noqa: E402

from monitoring.agent_link import agent_key, body_signature  # noqa: E402
from monitoring.agent_registry import enrol, load_agent_secret  # noqa: E402
from monitoring.metrics import build_registry  # noqa: E402
from monitoring.metrics_endpoint import OnLoop, metrics_app, unbound  # noqa: E402
from monitoring.probe_round import CheckResult, Download, ProbeRound, Vantage  # noqa: E402
from monitoring.round_wire import Context, body_bytes, encode_round  # noqa: E402
from monitoring.watch import Watch  # noqa: E402
from orchestrator.event import parse_event  # noqa: E402

TICK = 0.005


def a_body(name: str, city: str, platforms: list[str], seq: int, key: bytes) -> tuple[bytes, str]:
    now = time.time()
    checks = tuple(
        CheckResult(p, "web", "h", c, (seq + i) % 17 != 0, 0.05 + 0.01 * i)
        for i, p in enumerate(platforms)
        for c in ("dns", "tcp", "tls", "http")
    )
    downloads = (Download("control", "h", 400_000, 1.0), Download(platforms[1], "h", 90_000, 1.0))
    found = ProbeRound(Vantage(name, city, "isp"), now - 1.5, now, checks, (), downloads)
    stored = encode_round(found, agent=name, generation=0, seq=seq, context=Context())
    body = body_bytes(stored, sent_at=now, backlog=0)
    return body, body_signature(key, body)


async def measure(args: argparse.Namespace, render: str, state: Path) -> dict[str, Any]:
    event = parse_event(
        {
            "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
            "rundown": [{"speaker": "host", "duration": "1m"}],
            "destinations": [{"name": "mirror", "url": "hls"}],
        },
        base_dir=state,
        env={},
    )
    show = show_snapshot(8)
    watch = Watch(event, state, lambda: show)
    secret = load_agent_secret(state)
    platforms = ["control", *(f"platform{i}" for i in range(args.platforms))]
    agents = [(f"agent-{i:03d}", f"City{i % 20}") for i in range(args.agents)]
    keys = {name: agent_key(secret, name, 0) for name, _ in agents}
    await asyncio.to_thread(watch.agent_registry.refresh)
    for name, city in agents:
        verdict = watch.agent_ingest.submit(
            name, *a_body(name, city, platforms, 0, keys[name]), time.time()
        )
        assert verdict.status == 200, verdict
    if render == "thread":
        bind = OnLoop(asyncio.get_running_loop()).bind
        app: Any = metrics_app(build_registry(bind(lambda: show), watch.collectors(bind)))
    else:
        app = make_asgi_app(build_registry(lambda: show, watch.collectors(unbound)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
        await asyncio.sleep(0.05)

    scraping = threading.Event()
    lags: dict[bool, list[float]] = {True: [], False: []}
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            during = scraping.is_set()
            await asyncio.sleep(TICK)
            lags[during or scraping.is_set()].append(time.perf_counter() - before - TICK)

    async def submit() -> None:
        seq = 1
        gap = 30.0 / len(agents)
        await asyncio.sleep(1.5)  # the first rounds' min_gap
        while not stop.is_set():
            for name, city in agents:
                watch.agent_ingest.submit(
                    name, *a_body(name, city, platforms, seq, keys[name]), time.time()
                )
                await asyncio.sleep(gap)
            seq += 1

    walls: list[float] = []
    size = 0

    def scrape() -> None:
        nonlocal size
        url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(args.scrapes):
            time.sleep(0.5)  # the loop's quiet lags, between scrapes
            scraping.set()
            started = time.perf_counter()
            done = subprocess.run(
                ["curl", "-sf", "--compressed", "-o", "/dev/null", "-w", "%{size_download}", url],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            walls.append(time.perf_counter() - started)
            scraping.clear()
            assert done.returncode == 0, done.stderr
            size = int(done.stdout)

    tasks = [asyncio.create_task(probe()), asyncio.create_task(submit())]
    await asyncio.to_thread(scrape)
    stop.set()
    server.should_exit = True
    await serving
    for task in tasks:
        task.cancel()
    during, quiet = sorted(lags[True]), sorted(lags[False])
    return {
        "render": render,
        "agents": args.agents,
        "scrape_bytes_gzip": size,
        "lag_during_scrapes_ms_max": round(1000 * during[-1], 1),
        "lag_during_scrapes_ms_p99": round(1000 * during[int(0.99 * (len(during) - 1))], 1),
        "lag_quiet_ms_max": round(1000 * quiet[-1], 1),
        "scrape_ms_median": round(1000 * statistics.median(walls), 1),
        "scrape_ms_max": round(1000 * max(walls), 1),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--platforms", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--render", default="loop,thread")
    args = parser.parse_args()
    for render in args.render.split(","):
        with tempfile.TemporaryDirectory(prefix="jalsa-stall-") as folder:
            state = Path(folder)
            for i in range(args.agents):
                enrol(state, f"agent-{i:03d}", f"City{i % 20}", "isp")
            print(json.dumps(asyncio.run(measure(args, render, state))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
