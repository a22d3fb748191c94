"""The Prometheus exporter: collectors that read component snapshots at scrape time.

Nothing is counted twice: the program, the sources and the destinations keep their own
counters (for their snapshots, the API and the console) and the collector only reads
them. A registry is built per app, so tests never share global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.show import ShowSnapshot


class ShowCollector(Collector):
    """jalsa_program_*, jalsa_on_air, jalsa_speaker_*, jalsa_relay_* from a ShowSnapshot."""

    def __init__(self, snapshot: Callable[[], ShowSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        show = self._snapshot()
        yield GaugeMetricFamily(
            "jalsa_program_up", "1 while the program is being produced", value=int(show.program.up)
        )
        seconds = CounterMetricFamily(
            "jalsa_program_media_seconds", "Seconds of program media produced"
        )
        seconds.add_metric([], show.program.seconds)
        yield seconds
        on_air = GaugeMetricFamily(
            "jalsa_on_air",
            "1 for the speaker whose feed is on air (speaker=slate while a slate is up)",
            labels=["speaker"],
        )
        for speaker in (*show.speakers, "slate"):
            on_air.add_metric([speaker], int(show.on_air == speaker))
        yield on_air
        yield from _relay_metrics(show)


def _relay_metrics(show: ShowSnapshot) -> Iterable[Metric]:
    labels = ["destination", "platform"]
    up = GaugeMetricFamily(
        "jalsa_relay_up", "1 while the destination is connected and sending", labels=labels
    )
    sent = CounterMetricFamily("jalsa_relay_sent_bytes", "Bytes written", labels=labels)
    reconnects = CounterMetricFamily("jalsa_relay_reconnects", "Reconnect attempts", labels=labels)
    dropped = CounterMetricFamily(
        "jalsa_relay_dropped_packets", "Packets dropped", labels=[*labels, "kind"]
    )
    lag = GaugeMetricFamily(
        "jalsa_relay_lag_seconds", "How far the destination is behind the program", labels=labels
    )
    for d in show.destinations:
        key = [d.name, d.platform]
        up.add_metric(key, int(d.state == "live"))
        sent.add_metric(key, d.sent_bytes)
        reconnects.add_metric(key, d.reconnects)
        dropped.add_metric([*key, "video"], d.dropped_video)
        dropped.add_metric([*key, "audio"], d.dropped_audio)
        lag.add_metric(key, d.lag_seconds)
    yield from (up, sent, reconnects, dropped, lag)


def build_registry(snapshot: Callable[[], ShowSnapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ShowCollector(snapshot))
    return registry
