"""What ``jalsa probe --join`` puts on the wire per round, counted on loopback in a network
namespace of its own (run it under ``unshare -n``: nothing else talks there).

Everything runs here: the stand-in platforms (:class:`probe_servers.ProbeServers`: one
TLS server for every target, the fake control resolver), a real jalsa agents route
(uvicorn, ``orchestrator/api/agents.py``, the registry and ingest), and the agent as
``jalsa probe --join`` builds it (:func:`monitoring.probe_agent.push_prober`) with the
default targets' shape: each of :data:`monitoring.targets.DEFAULT_TARGETS` (12, every
one TLS, 6 with a download) pointed at the stand-in with its scheme, path and download.
The agent has the default calm cadence (each round's ``next_in`` is printed: every
stand-in answers, so from the third round on it is calm). Each round is measured, stored
and delivered (``measure_once`` + ``flush``); the bytes are the namespace's loopback
``tx_bytes`` (every frame once, headers included), per round and per delivery. Prints
JSON.

    unshare -n python3 tests/probe_budget_run.py [--rounds N] [--throughput-every N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiohttp  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from probe_servers import ProbeServers, make_pki  # noqa: E402

from monitoring.agent_ingest import AgentIngest  # noqa: E402
from monitoring.agent_link import agent_key, make_link, parse_link  # noqa: E402
from monitoring.agent_registry import AgentRegistry, enrol, load_agent_secret  # noqa: E402
from monitoring.agents_command import CALM_INTERVAL  # noqa: E402
from monitoring.probe_agent import push_prober  # noqa: E402
from monitoring.probe_push import Backlog, PushAgent  # noqa: E402
from monitoring.probe_round import Vantage  # noqa: E402
from monitoring.round_wire import Context  # noqa: E402
from monitoring.targets import DEFAULT_TARGETS, Target, Targets  # noqa: E402
from orchestrator.api.agents import add_agent_routes  # noqa: E402

ENV = {"JALSA_SECRET": "budget-secret-for-tests-0123456789"}


def on_the_wire() -> int:
    """Bytes sent on loopback in this namespace (/proc/net is per namespace; /sys/class/net
    is the host's unless sysfs is mounted again)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, fields = line.partition(":")
        if name.strip() == "lo":
            return int(fields.split()[8])  # transmit bytes
    raise RuntimeError("no lo in /proc/net/dev")


def stand_in_targets(port: int, dns: int) -> Targets:
    """The default targets, each pointed at the stand-in (localhost:port)."""
    found = []
    for t in DEFAULT_TARGETS.targets:
        where = f"localhost:{port}"
        url = f"{t.scheme}://{where}{t.path if t.scheme in ('https', 'http') else ''}"
        download = f"https://{where}/big" if t.download else None
        found.append(Target(t.platform, t.role, url, download))
    return Targets(tuple(found), ("127.0.0.1", dns))


async def measure(
    args: argparse.Namespace, servers: ProbeServers, state: Path
) -> dict[str, object]:
    registry = AgentRegistry(state, ENV)
    app = FastAPI()
    add_agent_routes(app, AgentIngest(registry, min_gap=0.01))
    with tempfile.TemporaryDirectory() as backlog_dir:
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        a = enrol(state, "pesh-1", "Peshawar", "Jazz 4G", "PK")
        registry.refresh(force=True)
        key = agent_key(load_agent_secret(state, ENV), a.id, 0)
        link = parse_link(
            make_link(f"http://127.0.0.1:{port}", a.id, 0, key, a.city, a.isp, a.country)
        )
        prober = push_prober(
            Vantage(a.id, a.city, a.isp),
            stand_in_targets(servers.good, servers.dns),
            5.0,
            args.throughput_every,
        )
        agent = PushAgent(
            prober,
            link,
            Backlog(Path(backlog_dir)),
            calm_interval=CALM_INTERVAL,
            context=Context("127.0.0.53"),
        )
        rounds: list[int] = []
        next_in: list[float] = []
        deliveries: list[int] = []
        async with aiohttp.ClientSession() as session:
            for _ in range(args.rounds):
                before = on_the_wire()
                await agent.measure_once()
                next_in.append(agent.next_in)
                measured = on_the_wire()
                left = await agent.uploader.flush(session)
                assert left == 0, "a round was not delivered"
                rounds.append(on_the_wire() - before)
                deliveries.append(on_the_wire() - measured)
        server.should_exit = True
        thread.join(10)
    throughput = rounds[:: args.throughput_every]
    light = [b for i, b in enumerate(rounds) if i % args.throughput_every]
    return {
        "rounds": len(rounds),
        "delivered": agent.uploader.delivered,
        "throughput_every": args.throughput_every,
        "bytes_per_round": rounds,
        "next_in": next_in,
        "bytes_per_delivery": deliveries,
        "bytes_per_round_mean": sum(rounds) / len(rounds),
        "bytes_throughput_round_mean": sum(throughput) / len(throughput),
        "bytes_light_round_mean": sum(light) / len(light) if light else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--throughput-every", type=int, default=20)
    args = parser.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        pki_dir = Path(folder) / "pki"
        pki_dir.mkdir()
        pki = make_pki(pki_dir)
        os.environ["SSL_CERT_FILE"] = str(pki.ca)  # the agent's default trust store
        with ProbeServers(pki) as servers:
            found = asyncio.run(measure(args, servers, Path(folder) / "state"))
    found["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
