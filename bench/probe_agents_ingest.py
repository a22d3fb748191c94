"""Pushing probe agents at scale: 200 agents submitting a round every 30 s, on loopback.

The server is a separate process running jalsa's own agent path with no media: the
route (``orchestrator/api/agents.py``) behind uvicorn, the registry of ``--agents``
enrolled agents, :class:`~monitoring.agent_ingest.AgentIngest` feeding the outage
classifier (:class:`~monitoring.outage_watch.OutageWatch`, evaluated every 5 s as in
``jalsa run``) and the collectors of ``jalsa_probe_*`` and ``jalsa_agent_*`` on
``/metrics``. The load runs in this process: ``--agents`` simulated agents (asyncio,
aiohttp), each signing a realistic round (``--platforms`` platforms plus the control,
four checks each) with its own key and posting it every ``--every`` seconds, their
phases spread over the interval. Measured from outside:

- ingest CPU: the server's CPU seconds (``/proc/<pid>/stat``) over the wall time, as a
  percentage of one core, over the first half of ``--seconds`` (no scrapes), after a
  warm-up round of every agent;
- the time of a ``/metrics`` scrape of the server with every agent's series
  (``--scrapes``, median and max, and the CPU of one), taken during the second half;
- every answer's status (all must be 200) and the round trip of each POST.

    python bench/probe_agents_ingest.py [--agents 200] [--every 30] [--seconds 120]
        [--platforms 8] [--scrapes 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-agents-secret-0123456789abcdef"


def serve(state: Path, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, make_asgi_app

    from monitoring.agent_ingest import AgentIngest
    from monitoring.agent_metrics import AgentCollector
    from monitoring.agent_registry import AgentRegistry
    from monitoring.metrics import OutageCollector, ProbeCollector
    from monitoring.outage import Classifier
    from monitoring.outage_watch import OutageWatch
    from orchestrator.api.agents import add_agent_routes

    registry = AgentRegistry(state, {"JALSA_SECRET": SECRET})
    outages = OutageWatch(Classifier())
    ingest = AgentIngest(
        registry,
        on_round=lambda a: outages.add(a.round.probe_results(), a.round.throughput_samples()),
    )
    metrics = CollectorRegistry(auto_describe=True)
    metrics.register(ProbeCollector(lambda: None, ingest.latest_rounds))
    metrics.register(AgentCollector(ingest.snapshot))
    metrics.register(OutageCollector(outages.snapshot))
    app = FastAPI()
    add_agent_routes(app, ingest)
    app.mount("/metrics", make_asgi_app(metrics))

    async def main() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)

        async def evaluate() -> None:
            while True:
                await asyncio.sleep(5)
                await asyncio.to_thread(registry.refresh)
                outages.evaluate()

        task = asyncio.create_task(evaluate())
        await server.serve()
        task.cancel()

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def load(args: argparse.Namespace, state: Path, port: int, pid: int) -> dict[str, Any]:
    import aiohttp

    from monitoring.agent_link import SIGNATURE_HEADER, agent_key, body_signature
    from monitoring.probe_round import CheckResult, Download, ProbeRound, Vantage
    from monitoring.round_wire import Context, body_bytes, encode_round

    secret = SECRET.encode()
    platforms = ["control", *(f"platform{i}" for i in range(args.platforms))]
    cities = [f"City{i}" for i in range(20)]
    statuses: dict[int, int] = {}
    trips: list[float] = []
    sent = 0

    async def agent(session: aiohttp.ClientSession, i: int, stop_at: float) -> None:
        nonlocal sent
        name = f"agent-{i:03d}"
        key = agent_key(secret, name, 0)
        vantage = Vantage(name, cities[i % len(cities)], f"isp{i % 7}")
        await asyncio.sleep(random.uniform(0, args.every))
        seq = 0
        while time.time() < stop_at:
            now = time.time()
            checks = tuple(
                CheckResult(p, "web", "h", c, random.random() > 0.05, random.uniform(0.01, 0.3))
                for p in platforms
                for c in ("dns", "tcp", "tls", "http")
            )
            downloads = (
                Download("control", "h", 400_000, 1.0),
                Download(platforms[1], "h", 90_000, 1.0),
            )
            found = ProbeRound(vantage, now - 1.5, now, checks, (), downloads)
            stored = encode_round(found, agent=name, generation=0, seq=seq, context=Context())
            body = body_bytes(stored, sent_at=time.time(), backlog=0)
            started = time.perf_counter()
            async with session.post(
                f"http://127.0.0.1:{port}/agents/{name}/rounds",
                data=body,
                headers={SIGNATURE_HEADER: body_signature(key, body)},
            ) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            trips.append(time.perf_counter() - started)
            sent += 1
            seq += 1
            await asyncio.sleep(max(0.0, args.every - (time.time() - now)))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm_until = time.time() + args.every + 2
        stop_at = warm_until + args.seconds
        tasks = [asyncio.create_task(agent(session, i, stop_at)) for i in range(args.agents)]
        await asyncio.sleep(max(0.0, warm_until - time.time()))
        cpu0, wall0, sent0 = cpu_seconds(pid), time.time(), sent
        await asyncio.sleep(args.seconds / 2)
        cpu1, wall1, sent1 = cpu_seconds(pid), time.time(), sent
        scrape_times: list[float] = []
        scrape_cpu = 0.0
        scrape_bytes = 0
        gap = args.seconds / 2 / (args.scrapes + 1)
        for _ in range(args.scrapes):
            await asyncio.sleep(gap)
            before = cpu_seconds(pid)
            started = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/metrics/") as response:
                text = await response.read()
            scrape_times.append(time.perf_counter() - started)
            scrape_cpu += cpu_seconds(pid) - before
            scrape_bytes = len(text)
        await asyncio.gather(*tasks)
    return {
        "agents": args.agents,
        "every_s": args.every,
        "platforms": len(platforms),
        "submissions_measured": sent1 - sent0,
        "submissions_per_s": round((sent1 - sent0) / (wall1 - wall0), 2),
        "statuses": statuses,
        "ingest_cpu_percent_of_core": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 2),
        "cpu_ms_per_submission": round(1000 * (cpu1 - cpu0) / max(1, sent1 - sent0), 3),
        "scrape_cpu_ms_mean": round(1000 * scrape_cpu / max(1, args.scrapes), 1),
        "post_round_trip_ms_median": round(1000 * statistics.median(trips), 2),
        "post_round_trip_ms_max": round(1000 * max(trips), 2),
        "scrape_ms_median": round(1000 * statistics.median(scrape_times), 1),
        "scrape_ms_max": round(1000 * max(scrape_times), 1),
        "scrape_bytes": scrape_bytes,
        "server_rss_mb": round(rss_mb(pid), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("STATE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--platforms", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0
    from monitoring.agent_registry import enrol

    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="probes-bench-") as scratch:
            state = Path(scratch) / "state"
            for i in range(args.agents):
                enrol(state, f"agent-{i:03d}", f"City{i % 20}", f"isp{i % 7}")
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(state), str(port)], cwd=ROOT
            )
            try:
                deadline = time.time() + 30
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), 1).close()
                        break
                    except OSError:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.1)
                result = asyncio.run(load(args, state, port, server.pid))
            finally:
                server.terminate()
                server.wait(10)
        runs.append(result)
        print(json.dumps(result))
    if len(runs) > 1:
        keys = ("ingest_cpu_percent_of_core", "cpu_ms_per_submission", "scrape_ms_median")
        print("medians:", {k: statistics.median(r[k] for r in runs) for k in keys})
    out = (
        ROOT
        / "bench"
        / "results"
        / f"probe_agents_ingest-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"args": vars(args), "runs": runs, "load": os.getloadavg()}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
