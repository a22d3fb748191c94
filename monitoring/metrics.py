"""The Prometheus exporter: collectors that read component snapshots at scrape time.

Nothing is counted twice: the program, the sources and the destinations keep their own
counters (for their snapshots, the API and the console) and the collector only reads
them. A registry is built per app, so tests never share global state.

:class:`ShowCollector` exports the program, on-air and relay series;
:class:`ListenerCollector` the listener counts; :class:`ProbeCollector` one vantage's
latest probe round (in ``jalsa run`` and in each ``jalsa probe`` agent);
:class:`OutageCollector` the classifier's judgement (``jalsa_outage``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.listeners import ListenersSnapshot
from monitoring.outage_watch import OutagesSnapshot, outage_series
from monitoring.probe_round import ProbeRound
from monitoring.show_view import (
    DestinationView,
    ShowView,
    SpeakerLinkView,
    SpeakerSendingView,
    speaker_levels,
)
from monitoring.uplink import UplinkEstimate
from orchestrator.event.states import RELAY_STATES

_PROBE_LABELS = ["vantage", "city", "isp"]


class ShowCollector(Collector):
    """jalsa_program_*, jalsa_on_air, jalsa_speaker_audio_level_dbfs, jalsa_relay_* from a
    ShowView."""

    def __init__(self, snapshot: Callable[[], ShowView]) -> None:
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
        late = CounterMetricFamily(
            "jalsa_program_late_resets",
            "Times the frame clock fell over a second behind real time and re-anchored "
            "(the machine could not keep up: platforms got media slower than real time)",
        )
        late.add_metric([], show.program.late_resets)
        yield late
        if show.ends_at is not None:
            yield GaugeMetricFamily(
                "jalsa_event_end_timestamp_seconds",
                "When the rundown ends (Unix time); after it, a stopped program is no outage",
                value=show.ends_at,
            )
        on_air = GaugeMetricFamily(
            "jalsa_on_air",
            "1 for the speaker whose feed is on air (speaker=slate while a slate is up)",
            labels=["speaker"],
        )
        for speaker in (*show.speakers, "slate"):
            on_air.add_metric([speaker], int(show.on_air == speaker))
        yield on_air
        yield from _audio_metrics(show)
        yield from _relay_metrics(show)
        yield from _edge_metrics(show.destinations)
        if show.uplink is not None:
            yield from _uplink_metrics(show.uplink)


def _audio_metrics(show: ShowView) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "jalsa_program_audio_level_dbfs",
        "Peak level of the program's audio over the last second, as encoded (after mute "
        "and gain), in dBFS; -100 for silence",
        value=show.program.audio_peak_dbfs,
    )
    level = GaugeMetricFamily(
        "jalsa_speaker_audio_level_dbfs",
        "Peak level of the speaker's input over the last second (before mute and gain), in "
        "dBFS, -100 for silence: the speaker on air, and live speakers while connected",
        labels=["speaker"],
    )
    for speaker, value in sorted(speaker_levels(show).items()):
        level.add_metric([speaker], value)
    yield level


def _uplink_metrics(uplink: UplinkEstimate) -> Iterable[Metric]:
    """The studio's uplink as its network destinations see it (monitoring/uplink.py)."""
    if uplink.throughput_bps is not None:
        yield GaugeMetricFamily(
            "jalsa_uplink_throughput_bps",
            "Bits per second all network destinations sent over the last 20 s (the uplink's "
            "usable rate while it is saturated)",
            value=uplink.throughput_bps,
        )
    yield GaugeMetricFamily(
        "jalsa_uplink_saturated",
        "1 while more than half of the live network destinations fall behind the program "
        "together (the uplink is full; one throttled platform is not this)",
        value=int(uplink.saturated),
    )
    yield GaugeMetricFamily(
        "jalsa_uplink_lagging_destinations",
        "Live network destinations that cannot keep up (2 s or more behind the program and "
        "not catching up, or shedding packets)",
        value=len(uplink.lagging),
    )


class RelayCollector(Collector):
    """jalsa_relay_* alone, from destination snapshots (the edge's destinations)."""

    def __init__(self, snapshots: Callable[[], Sequence[DestinationView]]) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterable[Metric]:
        yield from _destination_metrics(self._snapshots())


def _relay_metrics(show: ShowView) -> Iterable[Metric]:
    yield from _destination_metrics(show.destinations)


def _edge_metrics(destinations: Sequence[DestinationView]) -> Iterable[Metric]:
    """jalsa_edge_*: at the studio, each contribution link to a cloud edge (a
    destination of kind ``edge``: its relay series under the edge's name, too)."""
    labels = ["edge"]
    up = GaugeMetricFamily(
        "jalsa_edge_up",
        "1 while the contribution to the edge is connected and sending",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "jalsa_edge_lag_seconds",
        "How far the contribution to the edge is behind the program",
        labels=labels,
    )
    sent = CounterMetricFamily("jalsa_edge_sent_bytes", "Contribution bytes sent", labels=labels)
    reconnects = CounterMetricFamily(
        "jalsa_edge_reconnects", "Contribution reconnect attempts", labels=labels
    )
    for d in destinations:
        if d.kind == "edge":
            up.add_metric([d.name], int(d.state == "live"))
            lag.add_metric([d.name], d.lag_seconds)
            sent.add_metric([d.name], d.sent_bytes)
            reconnects.add_metric([d.name], d.reconnects)
    yield from (up, lag, sent, reconnects)


def _destination_metrics(destinations: Sequence[DestinationView]) -> Iterable[Metric]:
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
    state = GaugeMetricFamily(
        "jalsa_relay_state",
        "1 for the destination's state (connecting/live/retrying/paused/stopped)",
        labels=[*labels, "state"],
    )
    for d in destinations:
        key = [d.name, d.platform]
        for name in RELAY_STATES:
            state.add_metric([*key, name], int(d.state == name))
        up.add_metric(key, int(d.state == "live"))
        sent.add_metric(key, d.sent_bytes)
        reconnects.add_metric(key, d.reconnects)
        dropped.add_metric([*key, "video"], d.dropped_video)
        dropped.add_metric([*key, "audio"], d.dropped_audio)
        lag.add_metric(key, d.lag_seconds)
    yield from (up, sent, reconnects, dropped, lag, state)


class ListenerCollector(Collector):
    """jalsa_listeners{platform} and the pollers' health, from a ListenersSnapshot."""

    def __init__(self, snapshot: Callable[[], ListenersSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        listeners = self._snapshot()
        now = GaugeMetricFamily(
            "jalsa_listeners",
            "Concurrent viewers/listeners now (the sum of the platform's destinations)",
            labels=["platform"],
        )
        for platform, value in sorted(listeners.by_platform().items()):
            now.add_metric([platform], value)
        yield now
        age = GaugeMetricFamily(
            "jalsa_listeners_age_seconds",
            "Age of the destination's last good listener count",
            labels=["destination", "platform"],
        )
        errors = CounterMetricFamily(
            "jalsa_listener_poll_errors",
            "Failed listener-count polls, by reason",
            labels=["platform", "reason"],
        )
        for d in listeners.destinations:
            if d.age_seconds is not None:
                age.add_metric([d.destination, d.platform], d.age_seconds)
        for (platform, reason), count in sorted(listeners.errors_by_platform().items()):
            errors.add_metric([platform, reason], count)
        yield age
        yield errors


class ProbeCollector(Collector):
    """jalsa_probe_* of the latest round of one vantage (nothing before the first), and of
    ``more`` vantages' latest rounds (the agents that push to jalsa)."""

    def __init__(
        self,
        snapshot: Callable[[], ProbeRound | None],
        more: Callable[[], Iterable[ProbeRound]] = tuple,
    ) -> None:
        self._snapshot = snapshot
        self._more = more

    def collect(self) -> Iterable[Metric]:
        own = self._snapshot()
        labels = [*_PROBE_LABELS, "platform", "check"]
        success = GaugeMetricFamily(
            "jalsa_probe_success", "1 if the check succeeded in the latest round", labels=labels
        )
        duration = GaugeMetricFamily(
            "jalsa_probe_duration_seconds", "Time the check took in the latest round", labels=labels
        )
        throughput = GaugeMetricFamily(
            "jalsa_probe_throughput_bytes_per_second",
            "Download speed in the latest round",
            labels=[*_PROBE_LABELS, "platform"],
        )
        resolver = GaugeMetricFamily(
            "jalsa_probe_dns_resolver_success",
            "1 if the resolver (system or control) answered for the platform's hosts",
            labels=[*_PROBE_LABELS, "platform", "resolver"],
        )
        round_at = GaugeMetricFamily(
            "jalsa_probe_round_timestamp_seconds",
            "When the latest round finished (Unix time)",
            labels=_PROBE_LABELS,
        )
        round_took = GaugeMetricFamily(
            "jalsa_probe_round_duration_seconds",
            "How long the latest round took",
            labels=_PROBE_LABELS,
        )
        for found in (*(() if own is None else (own,)), *self._more()):
            v = [found.vantage.name, found.vantage.city, found.vantage.isp]
            for (platform, check), (ok, seconds) in sorted(found.outcomes().items()):
                success.add_metric([*v, platform, check], int(ok))
                duration.add_metric([*v, platform, check], seconds)
            for platform, speed in sorted(found.throughput().items()):
                throughput.add_metric([*v, platform], speed)
            answered: dict[tuple[str, str], bool] = {}
            for r in found.resolvers:
                key = (r.platform, r.resolver)
                answered[key] = answered.get(key, True) and r.success
            for (platform, name), ok in sorted(answered.items()):
                resolver.add_metric([*v, platform, name], int(ok))
            round_at.add_metric(v, found.finished_at)
            round_took.add_metric(v, max(0.0, found.finished_at - found.started_at))
        yield from (success, duration, throughput, resolver, round_at, round_took)


class OutageCollector(Collector):
    """jalsa_outage{scope,platform}: 1 while flagged, 0 for the other watched series;
    nothing while ``snapshot`` gives None (nothing to judge)."""

    def __init__(self, snapshot: Callable[[], OutagesSnapshot | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        judged = self._snapshot()
        if judged is None:
            return
        outage = GaugeMetricFamily(
            "jalsa_outage",
            "1 while an outage is flagged; scope = platform / national / throttling / uplink",
            labels=["scope", "platform"],
        )
        for (scope, platform), value in sorted(outage_series(judged).items()):
            outage.add_metric([scope, platform], value)
        yield outage


class SpeakerCollector(Collector):
    """jalsa_speaker_connected and the live link quality of each browser speaker.

    Every live speaker (no ``source`` in the event) has jalsa_speaker_connected, 0 when
    absent; the quality gauges exist while their session reports them.
    """

    def __init__(self, snapshot: Callable[[], ShowView]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        show = self._snapshot()
        feeds = {s.speaker: s for s in show.sources if isinstance(s, SpeakerLinkView)}
        connected = GaugeMetricFamily(
            "jalsa_speaker_connected", "1 while the speaker's live feed is up", labels=["speaker"]
        )
        bitrate = GaugeMetricFamily(
            "jalsa_speaker_bitrate_bps", "Media bits per second arriving", labels=["speaker"]
        )
        loss = GaugeMetricFamily(
            "jalsa_speaker_packet_loss_ratio",
            "RTP packets lost / expected over the last interval",
            labels=["speaker"],
        )
        rtt = GaugeMetricFamily(
            "jalsa_speaker_rtt_seconds",
            "Round-trip time as the speaker's browser measures it",
            labels=["speaker"],
        )
        sent = GaugeMetricFamily(
            "jalsa_speaker_sent_bitrate_bps",
            "Bits per second the speaker's browser says it sends",
            labels=["speaker"],
        )
        paused = GaugeMetricFamily(
            "jalsa_speaker_video_paused",
            "1 while the speaker's page has paused its video for the link (the card is on)",
            labels=["speaker"],
        )
        concealed = CounterMetricFamily(
            "jalsa_speaker_audio_concealed_seconds",
            "Seconds of the speaker's voice rebuilt for lost packets (Opus FEC or concealment)",
            labels=["speaker"],
        )
        for speaker in show.live_speakers:
            feed = feeds.get(speaker)
            connected.add_metric([speaker], int(feed is not None and feed.connected))
            if feed is None:
                continue
            concealed.add_metric([speaker], feed.concealed_seconds)
            sending = feed if isinstance(feed, SpeakerSendingView) else None
            if sending is not None and feed.connected:
                paused.add_metric([speaker], int(sending.video_paused))
            for family, value in (
                (bitrate, feed.bitrate_bps),
                (loss, feed.packet_loss_ratio),
                (rtt, feed.rtt_seconds),
                (sent, sending.sent_bitrate_bps if sending is not None else None),
            ):
                if value is not None:
                    family.add_metric([speaker], value)
        yield from (connected, bitrate, loss, rtt, sent, paused, concealed)


def build_registry(
    snapshot: Callable[[], ShowView], extra: Sequence[Collector] = ()
) -> CollectorRegistry:
    """The registry of ``jalsa run``: the show's collector and ``extra`` (the Watch's)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ShowCollector(snapshot))
    registry.register(SpeakerCollector(snapshot))
    for collector in extra:
        registry.register(collector)
    return registry
