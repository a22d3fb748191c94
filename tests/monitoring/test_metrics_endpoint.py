"""/metrics rendered in a worker thread: the same exposition as prometheus_client's, the
loop free while it renders, and the collectors' snapshots taken on the loop."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterable
from typing import Any

from asgi import asgi_request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.metrics_endpoint import OnLoop, metrics_app


async def get(app: Any, headers: dict[str, str], query: str = "") -> tuple[dict[str, str], bytes]:
    status, answered, body = await asgi_request(
        app, "GET", "/metrics", headers=headers, query=query
    )
    assert status == 200
    return answered, body


def a_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("jalsa_test_rounds", "Rounds", ["vantage"], registry=registry).labels("x").inc(3)
    Counter("jalsa_test_other", "Other", registry=registry).inc()
    return registry


async def test_the_exposition_is_prometheus_clients() -> None:
    registry = a_registry()
    app = metrics_app(registry)
    headers, body = await get(app, {})
    assert body == generate_latest(registry)
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    headers, zipped = await get(app, {"Accept-Encoding": "gzip, deflate"})
    assert headers["content-encoding"] == "gzip" and gzip.decompress(zipped) == body
    headers, open_metrics = await get(app, {"Accept": "application/openmetrics-text"})
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.endswith(b"# EOF\n")
    _, only = await get(app, {}, "name[]=jalsa_test_other_total")
    assert b"jalsa_test_other_total 1.0" in only and b"jalsa_test_rounds" not in only


class Waiting(Collector):
    """A render that can finish only if the loop keeps running meanwhile: its collect()
    waits for an event that a task on the loop sets."""

    def __init__(self, released: threading.Event) -> None:
        self.released = released
        self.thread = ""

    def collect(self) -> Iterable[Metric]:
        self.thread = threading.current_thread().name
        family = GaugeMetricFamily("jalsa_test_released", "1 if the loop ran during the render")
        family.add_metric([], float(self.released.wait(10)))
        yield family


async def test_the_loop_runs_while_a_scrape_renders() -> None:
    released = threading.Event()
    registry = CollectorRegistry()
    waiting = Waiting(released)
    registry.register(waiting)
    scrape = asyncio.create_task(get(metrics_app(registry), {}))
    await asyncio.sleep(0)  # the scrape starts its render
    released.set()  # only runs if the render does not hold the loop
    _, body = await scrape
    assert b"jalsa_test_released 1.0" in body
    assert waiting.thread != threading.current_thread().name


async def test_snapshots_are_taken_on_the_loop_thread() -> None:
    on_loop = OnLoop(asyncio.get_running_loop())
    loop_thread = threading.current_thread().name
    seen: list[str] = []

    def snapshot() -> int:
        seen.append(threading.current_thread().name)
        return 7

    bound = on_loop.bind(snapshot)
    assert await asyncio.to_thread(bound) == 7  # from a worker: hops to the loop
    assert bound() == 7  # on the loop: runs directly
    assert seen == [loop_thread, loop_thread]

    def failing() -> int:
        raise KeyError("gone")

    try:
        await asyncio.to_thread(on_loop.bind(failing))
    except KeyError as error:
        assert error.args == ("gone",)
    else:
        raise AssertionError("the snapshot's error is not raised in the render thread")
