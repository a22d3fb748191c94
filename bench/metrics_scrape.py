"""How long a /metrics scrape takes with 50 destinations and 500 probe series.

The collectors of ``jalsa run`` (the show's, the listeners', a probe round's and the
outages') are built on synthetic snapshots of that size and rendered with
``generate_latest``, as the /metrics endpoint does on each scrape. Prints the median
(wall clock, and CPU time, which a busy machine does not inflate), p90 and max of several
hundred scrapes, and fails (exit 1) if the median wall time is over 50 ms.

    python bench/metrics_scrape.py [--scrapes N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest

from monitoring.listeners import DestinationListeners, ListenersSnapshot
from monitoring.metrics import (
    ListenerCollector,
    OutageCollector,
    ProbeCollector,
    build_registry,
)
from monitoring.outage import Outage
from monitoring.outage_watch import OutagesSnapshot
from monitoring.probe_round import CheckResult, Download, ProbeRound, ResolverResult, Vantage
from orchestrator.program.program import ProgramSnapshot
from orchestrator.show import ShowSnapshot
from relays.destination import DestinationSnapshot

BUDGET_SECONDS = 0.050
PLATFORMS = ("youtube", "facebook", "x", "twitch", "custom")
PROBE_PLATFORMS = ("control", "youtube", "facebook", "x", "twitch", "whatsapp")
CHECKS = ("dns", "tcp", "tls", "http")


def show_snapshot(destinations: int) -> ShowSnapshot:
    program = ProgramSnapshot(True, "host", "Host", 90_000, 3000.0, 0, 1280, 720, 30)
    return ShowSnapshot(
        event="Bench",
        state="on",
        on_air_kind="speaker",
        on_air="host",
        slate=None,
        current=None,
        next=None,
        remaining=60.0,
        program=program,
        destinations=tuple(
            DestinationSnapshot(
                f"dest-{i}",
                PLATFORMS[i % 5],
                "rtmp",
                "rtmp://h/app/***",
                "live",
                10**9,
                10**6,
                i,
                i * 3,
                i,
                0.25,
                None,
            )
            for i in range(destinations)
        ),
        sources=(),
        speakers=tuple(f"speaker-{i}" for i in range(20)),
    )


def listeners_snapshot(destinations: int) -> ListenersSnapshot:
    return ListenersSnapshot(
        tuple(
            DestinationListeners(
                f"dest-{i}", PLATFORMS[i % 4], 1000 + i, 0.0, 3.0, 100, (("timeout", 2),), None
            )
            for i in range(destinations)
        )
    )


def probe_round(series: int) -> ProbeRound:
    """A round whose aggregate has ``series`` (platform, check) success series: the
    platforms are numbered so one vantage can stand for many."""
    checks = []
    for i in range(series // len(CHECKS)):
        platform = f"{PROBE_PLATFORMS[i % len(PROBE_PLATFORMS)]}-{i}"
        for check in CHECKS:
            checks.append(CheckResult(platform, "web", "host", check, i % 7 != 0, 0.05))  # type: ignore[arg-type]
    resolvers = tuple(
        ResolverResult(c.platform, "host", "control", True, 0.01)
        for c in checks
        if c.check == "dns"
    )
    downloads = tuple(Download(c.platform, "host", 10**6, 1.0) for c in checks if c.check == "dns")
    return ProbeRound(
        Vantage("bench", "Lahore", "PTCL"), 0.0, 5.0, tuple(checks), resolvers, downloads
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--destinations", type=int, default=50)
    parser.add_argument("--probe-series", type=int, default=500)
    args = parser.parse_args()
    show = show_snapshot(args.destinations)
    listeners = listeners_snapshot(args.destinations)
    found = probe_round(args.probe_series)
    outages = OutagesSnapshot(
        (Outage("platform", "x", frozenset({"a"}), frozenset({"Lahore", "Karachi"}), 0.0),),
        (),
        PROBE_PLATFORMS,
    )
    registry = build_registry(
        lambda: show,
        [
            ListenerCollector(lambda: listeners),
            ProbeCollector(lambda: found),
            OutageCollector(lambda: outages),
        ],
    )
    text = generate_latest(registry).decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    probe_series = sum(1 for line in text.splitlines() if line.startswith("jalsa_probe_success{"))
    wall, cpu = [], []
    for _ in range(args.scrapes):
        started, started_cpu = time.perf_counter(), time.process_time()
        generate_latest(registry)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    wall.sort()
    median = statistics.median(wall)
    print(
        f"{args.destinations} destinations, {probe_series} jalsa_probe_success series, "
        f"{series} series in all, {len(text):,} bytes per scrape"
    )
    print(
        f"scrape over {args.scrapes} runs: median {median * 1000:.2f} ms wall "
        f"({statistics.median(cpu) * 1000:.2f} ms CPU), p90 {wall[int(0.9 * len(wall))] * 1000:.2f}"
        f" ms, max {wall[-1] * 1000:.2f} ms (budget {BUDGET_SECONDS * 1000:.0f} ms); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 0 if median < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
