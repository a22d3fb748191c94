"""The uplink meter: throughput from the bytes the network destinations sent, saturation
when most of them fall behind together (one throttled platform is not the uplink)."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.uplink import LAG_SECONDS, UplinkMeter
from orchestrator.event.states import RelayState


@dataclass(frozen=True)
class Dest:
    name: str
    sent_bytes: int
    lag_seconds: float = 0.1
    kind: str = "rtmp"
    state: RelayState = "live"
    platform: str = "custom"
    reconnects: int = 0
    dropped_video: int = 0
    dropped_audio: int = 0


def test_throughput_counts_network_destinations_only_over_the_window() -> None:
    meter = UplinkMeter()
    assert meter.observe(0.0, [Dest("a", 0), Dest("rec", 0, kind="file")]).throughput_bps is None
    estimate = meter.observe(
        10.0, [Dest("a", 1_000_000), Dest("b", 0), Dest("rec", 9_000_000, kind="file")]
    )
    # a: 1 MB in 10 s = 800 kbit/s; b appeared just now (no bytes counted); the file: local.
    assert estimate.throughput_bps == 800_000
    assert estimate.network == 2 and not estimate.saturated
    # 40 s on, only the last 20 s count.
    meter.observe(30.0, [Dest("a", 3_000_000), Dest("b", 0)])
    later = meter.observe(50.0, [Dest("a", 3_500_000), Dest("b", 0)])
    assert later.throughput_bps == 500_000 * 8 / 20


def test_one_throttled_platform_is_not_a_saturated_uplink_most_lagging_is() -> None:
    meter = UplinkMeter()
    meter.observe(0.0, [Dest("yt", 0), Dest("fb", 0), Dest("x", 0, lag_seconds=3.0)])
    one = meter.observe(5.0, [Dest("yt", 1), Dest("fb", 1), Dest("x", 1, lag_seconds=4.0)])
    assert one.lagging == ("x",) and not one.saturated
    two = meter.observe(
        10.0,
        [Dest("yt", 2, lag_seconds=LAG_SECONDS), Dest("fb", 2), Dest("x", 2, lag_seconds=6.0)],
    )
    assert two.lagging == ("x", "yt") and two.saturated


def test_destinations_catching_up_or_not_live_do_not_count() -> None:
    meter = UplinkMeter()
    meter.observe(0.0, [Dest("yt", 0, lag_seconds=8.0), Dest("fb", 0, lag_seconds=8.0)])
    # Both still behind but catching up (the uplink freed): not saturated.
    recovering = meter.observe(
        5.0, [Dest("yt", 9, lag_seconds=5.0), Dest("fb", 9, lag_seconds=4.0)]
    )
    assert recovering.lagging == () and not recovering.saturated
    # A destination that is retrying is not on the uplink now; no live one: not saturated.
    down = meter.observe(6.0, [Dest("yt", 9, state="retrying", lag_seconds=30.0)])
    assert down.network == 0 and not down.saturated


def test_shedding_packets_is_falling_behind_whatever_the_lag_does() -> None:
    meter = UplinkMeter()
    meter.observe(0.0, [Dest("yt", 0, lag_seconds=5.5), Dest("fb", 0, lag_seconds=5.0)])
    # Both queues full: each shed a GOP, so their lags fell back (the saw-tooth).
    shed = meter.observe(
        4.0,
        [
            Dest("yt", 9, lag_seconds=1.5, dropped_video=60),
            Dest("fb", 9, lag_seconds=1.0, dropped_video=55),
        ],
    )
    assert shed.lagging == ("fb", "yt") and shed.saturated


def test_a_single_network_destination_lagging_is_saturation() -> None:
    meter = UplinkMeter()
    meter.observe(0.0, [Dest("yt", 0, lag_seconds=1.0), Dest("mirror", 0, kind="hls")])
    estimate = meter.observe(
        3.0, [Dest("yt", 10, lag_seconds=3.0), Dest("mirror", 0, kind="hls", lag_seconds=9.0)]
    )
    assert estimate.network == 1 and estimate.saturated


def test_the_window_is_bounded_however_often_it_is_fed() -> None:
    meter = UplinkMeter()
    for i in range(10_000):
        meter.observe(i * 0.1, [Dest("yt", i)])
    assert len(meter._samples) <= 64


def test_a_destination_missing_from_the_oldest_sample_still_counts() -> None:
    # The show's first snapshot comes before the relays exist: kept as the window's oldest,
    # it hid every byte for the window's first 20 s (the 8 Mbit/s venue test read 0.0
    # while the uplink carried 7.9 Mbit/s). Each destination counts from its first sample.
    meter = UplinkMeter()
    meter.observe(0.0, [])
    meter.observe(1.0, [Dest("yt", 0), Dest("fb", 0)])
    estimate = meter.observe(11.0, [Dest("yt", 1_000_000), Dest("fb", 1_000_000)])
    assert estimate.throughput_bps == 2_000_000 * 8 / 11
    added = meter.observe(16.0, [Dest("yt", 1_500_000), Dest("fb", 1_500_000), Dest("x", 0)])
    later = meter.observe(21.0, [Dest("yt", 2_000_000), Dest("fb", 2_000_000), Dest("x", 500_000)])
    assert added.throughput_bps == 3_000_000 * 8 / 16
    assert later.throughput_bps == 4_500_000 * 8 / 20  # the window: samples from 1.0 on
