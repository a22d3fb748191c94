"""Link quality from counter readings (pure)."""

from __future__ import annotations

import math

from orchestrator.speakers.quality import Counters, QualityMeter


def test_rate_and_loss_over_each_interval() -> None:
    meter = QualityMeter()
    assert meter.reading(Counters(0.0, 0, 0, 0)).bitrate_bps is None
    q = meter.reading(Counters(2.0, 250_000, 190, 10))
    assert (q.bitrate_bps, q.packet_loss_ratio, q.rtt_seconds) == (1_000_000.0, 0.05, None)
    q = meter.reading(Counters(4.0, 250_000, 190, 10))  # nothing arrived
    assert (q.bitrate_bps, q.packet_loss_ratio) == (0.0, 0.0)
    assert meter.reported_rtt(0.08).rtt_seconds == 0.08
    for junk in (math.nan, -1, 1e9, "1", True, None):
        assert meter.reported_rtt(junk).rtt_seconds == 0.08
    assert meter.reading(Counters(6.0, 250_100, 191, 10)).rtt_seconds == 0.08
