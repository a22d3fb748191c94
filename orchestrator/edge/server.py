"""``jalsa edge``: the contribution route, /healthz and /metrics of a cloud edge.

- ``PUT /contribute``: one studio's program (FLV, chunked). The key is checked in
  constant time from the request head, before any body is read (no ``100 Continue``
  goes out for a wrong one: the studio sends nothing more); a refusal is logged with the
  peer's address, never the key. A new contribution with the right key replaces the one
  in progress (a studio that reconnects after a blip must not wait for its old, dead
  connection to time out).
- ``GET /healthz``: 200 and what the edge is doing (no secrets).
- ``GET``/``HEAD /hls/<mirror>/<file>`` (public): the edge's HLS mirrors, with the
  studio's cache headers (:mod:`orchestrator.api.mirror`): the origin a CDN fronts, so
  listeners never load the venue's uplink.
- ``/metrics`` on ``--metrics``: ``jalsa_edge_*``, the destinations' ``jalsa_relay_*``
  and ``jalsa_listeners`` (the mirrors' viewers, the platforms' counts where configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from monitoring.hls_viewers import HlsViewers
from monitoring.listeners import Listeners
from monitoring.metrics import ListenerCollector, RelayCollector
from orchestrator.api.mirror import mirror_routes
from orchestrator.edge.control import control_routes
from orchestrator.edge.fanout import Fanout
from orchestrator.edge.intake import BodyPipe, demux
from orchestrator.edge.uplink_outages import UplinkOutages
from orchestrator.event.address import Address
from orchestrator.event.edge_spec import EdgeFile

# jalsa run's web servers: the same guards, and no signal handling of their own.
from orchestrator.service import _server as web_server

log = logging.getLogger(__name__)

CONTRIBUTION_PATH: Final = "/contribute"
IDLE_SECONDS: Final = 10.0  # a contribution with no byte for this long has ended
STOP_SECONDS: Final = 5.0


def authorized(header: str | None, key: str) -> bool:
    """``Authorization: Bearer <key>``, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return hmac.compare_digest(
        given.strip().encode() if scheme.lower() == "bearer" else b"", key.encode()
    )


class Contributions:
    """The contribution route: one studio at a time, the newest wins."""

    def __init__(self, fanout: Fanout, key: str, idle_seconds: float = IDLE_SECONDS) -> None:
        self._fanout = fanout
        self._key = key
        self._idle = idle_seconds
        self._current: BodyPipe | None = None

    async def put(self, request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        if not authorized(request.headers.get("authorization"), self._key):
            self._fanout.refused()
            log.warning("contribution from %s refused: wrong or missing key", peer)
            return PlainTextResponse("wrong or missing contribution key\n", 401)
        studio = "".join(c for c in request.headers.get("jalsa-studio", "") if c.isprintable())
        pipe = BodyPipe()
        if self._current is not None:
            log.info("a new contribution from %s replaces the one in progress", peer)
            self._current.close()
        self._current = pipe
        self._fanout.began(studio[:100])
        log.info("contribution from %s (%s) accepted", peer, studio[:100] or "unnamed studio")
        thread = asyncio.create_task(asyncio.to_thread(self._demux, pipe), name="demux")
        try:
            await self._receive(request, pipe)
        finally:
            pipe.close()
            self._fanout.ended()
            if self._current is pipe:
                self._current = None
        with contextlib.suppress(Exception):
            await thread
        log.info("contribution from %s ended", peer)
        return PlainTextResponse("contribution ended\n")

    async def _receive(self, request: Request, pipe: BodyPipe) -> None:
        body = request.stream().__aiter__()
        while not pipe.closed:
            try:
                chunk = await asyncio.wait_for(anext(body), self._idle)
            except StopAsyncIteration:
                pipe.close(finished=True)  # the studio ended its program: no blip
                return
            except TimeoutError:
                log.warning("contribution stalled: nothing for %g s", self._idle)
                return
            self._fanout.received(len(chunk))
            if not pipe.offer(chunk) and not await asyncio.to_thread(pipe.put, chunk, self._idle):
                log.warning("the edge could not keep up with the contribution: ended")
                return

    def _demux(self, pipe: BodyPipe) -> None:
        try:
            demux(pipe, self._fanout.publish)
            if pipe.finished:
                self._fanout.finished()
        except Exception as exc:  # a broken body ends this contribution, not the edge
            log.warning("contribution unreadable: %s", exc)
            pipe.close()


class EdgeCollector(Collector):
    """``jalsa_edge_*``: the contribution link as the edge sees it."""

    def __init__(self, fanout: Fanout, name: str) -> None:
        self._fanout = fanout
        self._name = name

    def collect(self) -> Iterable[Metric]:
        c = self._fanout.snapshot()
        labels = ["edge"]
        families: list[GaugeMetricFamily | CounterMetricFamily] = [
            GaugeMetricFamily(
                "jalsa_edge_contribution_up", "1 while a studio is contributing", labels=labels
            ),
            CounterMetricFamily(
                "jalsa_edge_contribution_received_bytes",
                "Contribution bytes received",
                labels=labels,
            ),
            CounterMetricFamily(
                "jalsa_edge_contributions", "Contributions accepted (reconnects)", labels=labels
            ),
            CounterMetricFamily(
                "jalsa_edge_contributions_refused",
                "Contributions refused: a wrong or missing key",
                labels=labels,
            ),
        ]
        families += [
            GaugeMetricFamily(
                "jalsa_edge_slate_on",
                "1 while the blip slate covers a stalled contribution",
                labels=labels,
            ),
            CounterMetricFamily(
                "jalsa_edge_slate_seconds", "Seconds the blip slate was on", labels=labels
            ),
            CounterMetricFamily(
                "jalsa_edge_blips", "Contribution stalls the blip slate covered", labels=labels
            ),
        ]
        values: tuple[float, ...] = (int(c.up), c.received_bytes, c.contributions, c.refused)
        values += (int(c.slate_on), c.slate_seconds, c.blips)
        for family, value in zip(families, values, strict=True):
            family.add_metric([self._name], value)
        yield from families


def edge_app(
    fanout: Fanout, edge: EdgeFile, state_dir: Path, viewers: HlsViewers | None = None
) -> Starlette:
    contributions = Contributions(fanout, edge.key.reveal())

    def is_mirror(name: str) -> bool:
        return any(spec.name == name and spec.kind == "hls" for spec in fanout.roster.specs())

    def studio_key(request: Request) -> bool:
        return authorized(request.headers.get("authorization"), edge.key.reveal())

    async def healthz(request: Request) -> Response:
        c = fanout.snapshot()
        return JSONResponse(
            {
                "edge": edge.name,
                "contribution": asdict(c),
                "destinations": [
                    {"name": d.name, "platform": d.platform, "state": d.state, "lag": d.lag_seconds}
                    for d in fanout.destinations()
                ],
                "ladders": {
                    name: [asdict(r) for r in renditions]
                    for name, renditions in fanout.ladders().items()
                },
            }
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(CONTRIBUTION_PATH, contributions.put, methods=["PUT", "POST"]),
            *control_routes(fanout.roster, studio_key, state_dir),
            *mirror_routes(is_mirror, state_dir, viewers),
        ]
    )


async def serve_edge(edge: EdgeFile, *, listen: Address, metrics: Address, state_dir: Path) -> int:
    """Run the edge until SIGINT/SIGTERM. Returns the exit code."""
    outages = UplinkOutages(
        edge.name, [(d.name, d.platform) for d in edge.destinations], state_dir / "samples"
    )
    fanout = Fanout(edge.destinations, state_dir, outages)
    listeners = Listeners(edge.destinations, HlsViewers())
    contribution = web_server(edge_app(fanout, edge, state_dir, listeners.hls), listen)
    contribution.config.ssl_certfile = edge.tls_cert
    contribution.config.ssl_keyfile = edge.tls_key
    registry = CollectorRegistry(auto_describe=True)
    registry.register(EdgeCollector(fanout, edge.name))
    registry.register(RelayCollector(fanout.destinations))
    registry.register(ListenerCollector(listeners.snapshot))
    servers = [contribution, web_server(make_asgi_app(registry), metrics)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(s.serve(), name="http") for s in servers]
    counting = asyncio.create_task(listeners.run(), name="listeners")
    scheme = "https" if edge.tls_cert else "http"
    print(
        f"jalsa edge {edge.name}: contribution at "
        f"{scheme}{listen.url(CONTRIBUTION_PATH).removeprefix('http')}, "
        f"{len(edge.destinations)} destinations, metrics at {metrics.url('/metrics')}",
        flush=True,
    )
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    failed = stopper not in done
    stopper.cancel()
    counting.cancel()
    for server in servers:
        server.should_exit = True
    await asyncio.to_thread(fanout.close, STOP_SECONDS)
    await asyncio.wait([*tasks, counting], timeout=1.0)
    if failed:
        log.error("a server of the edge stopped (could it bind?); shut down")
        return 1
    return 0
