"""``jalsa probe``: a probe agent for one vantage point (a city and an ISP).

Runs a round of probes every ``interval`` seconds and serves the latest round at
``/metrics`` for Prometheus (``jalsa_probe_*`` with its vantage, city and isp labels).
Logs one line per platform whose reachability changes, so an agent on a dead link logs
once, not every round. SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Iterator

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app

from monitoring.metrics import ProbeCollector
from monitoring.probe_round import ProbeRound, Vantage, log_changes
from monitoring.probes import Prober
from monitoring.targets import DEFAULT_TARGETS, load_targets
from orchestrator.event.address import Address
from orchestrator.event.monitoring_spec import LABEL_PATTERN, parse_resolver
from orchestrator.event.problems import EventError

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProbeAgent:
    """Args:
    prober: the vantage and its targets.
    interval: seconds from the start of one round to the start of the next.
    """

    def __init__(self, prober: Prober, interval: float = 30.0) -> None:
        self.prober = prober
        self.interval = interval
        self.latest: ProbeRound | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ProbeCollector(lambda: self.latest))
        self._seen: dict[str, bool] = {}

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            started = time.monotonic()
            self.latest = await self.prober.round()
            log_changes(self.latest, self._seen)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def serve(self, host: str, port: int) -> int:
        """Probe and serve /metrics until SIGINT/SIGTERM. Returns the exit code."""
        config = uvicorn.Config(
            make_asgi_app(self.registry),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        v = self.prober.vantage
        log.info(
            "probe agent %s (%s, %s): %d targets every %gs; metrics at http://%s:%d/metrics",
            v.name,
            v.city,
            v.isp,
            len(self.prober.targets.targets),
            self.interval,
            host,
            port,
        )
        serving = asyncio.create_task(server.serve(), name="metrics")
        probing = asyncio.create_task(self.run(), name="probes")
        stopper = asyncio.create_task(stop.wait(), name="signal")
        try:
            done, _ = await asyncio.wait(
                {serving, probing, stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            code = 0 if stopper in done else 1
            if serving in done and not stop.is_set():
                log.error("the metrics server stopped (is %s:%d free?)", host, port)
        finally:
            for task in (probing, stopper):
                task.cancel()
            for task in (probing, stopper):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            server.should_exit = True
            await asyncio.wait({serving}, timeout=2.0)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if probing.done() and not probing.cancelled() and probing.exception() is not None:
            log.error("the probes failed", exc_info=probing.exception())
            code = 1
        return code


def format_round(found: ProbeRound) -> str:
    """A table of one round, for ``jalsa probe --once``."""
    lines = [f"{'platform':<10} {'role':<7} {'check':<5} {'ok':<3} {'seconds':>7}  host / error"]
    for c in found.checks:
        ok = "ok" if c.success else "NO"
        detail = c.host if c.error is None else f"{c.host}: {c.error}"
        lines.append(
            f"{c.platform:<10} {c.role:<7} {c.check:<5} {ok:<3} {c.seconds:>7.3f}  {detail}"
        )
    for r in found.resolvers:
        if r.resolver == "control" and not r.success:
            lines.append(f"{r.platform:<10} control resolver for {r.host}: {r.error}")
    for platform, speed in sorted(found.throughput().items()):
        lines.append(f"{platform:<10} throughput {speed * 8 / 1000:,.0f} kbit/s")
    for d in found.downloads:
        if d.error is not None:
            lines.append(f"{d.platform:<10} download from {d.host} failed: {d.error}")
    return "\n".join(lines)


def probe_command(args: argparse.Namespace) -> int:
    """``jalsa probe``: exit 0 when stopped by a signal, 2 for bad arguments."""

    def fail(message: str) -> int:
        print(f"jalsa probe: {message}", file=sys.stderr)
        return 2

    for name in ("vantage", "city", "isp"):
        if not LABEL_PATTERN.fullmatch(getattr(args, name)):
            return fail(f"--{name}: use 1-40 letters, digits, spaces, . _ and -")
    if not 1 <= args.interval <= 3600 or not 0.1 <= args.timeout <= 60:
        return fail("--interval must be 1..3600 seconds and --timeout 0.1..60")
    try:
        metrics = Address.parse(args.metrics)
        targets = load_targets(args.targets) if args.targets else DEFAULT_TARGETS
        if args.control_resolver is not None:
            resolver = parse_resolver(args.control_resolver)
            targets = dataclasses.replace(targets, control_resolver=resolver)
    except EventError as error:
        return fail(str(error))
    except ValueError as error:
        return fail(str(error))
    prober = Prober(Vantage(args.vantage, args.city, args.isp), targets, timeout=args.timeout)
    if args.once:
        found = asyncio.run(prober.round())
        print(format_round(found))
        return 0
    return asyncio.run(ProbeAgent(prober, args.interval).serve(metrics.host, metrics.port))
