"""A speaker's link quality from successive counter readings (pure).

aiortc's ``getStats()`` gives cumulative counters: bytes received on the transport and,
per inbound RTP stream, packets received and lost. The rate and the loss ratio are
computed over the interval between two readings. aiortc only receives, so it cannot
measure the round trip itself; the speaker's browser does (from our RTCP receiver
reports) and reports it with its status polls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.ingest.webrtc import LinkQuality

MAX_RTT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Counters:
    at: float  # monotonic seconds
    bytes_received: int
    packets_received: int
    packets_lost: int


class QualityMeter:
    def __init__(self) -> None:
        self._last: Counters | None = None
        self._rtt: float | None = None
        self.quality = LinkQuality()

    def reading(self, counters: Counters) -> LinkQuality:
        """Take a reading; returns the quality over the interval since the previous one."""
        last, self._last = self._last, counters
        if last is None or counters.at <= last.at:
            return self.quality
        seconds = counters.at - last.at
        bitrate = max(0, counters.bytes_received - last.bytes_received) * 8 / seconds
        received = max(0, counters.packets_received - last.packets_received)
        lost = max(0, counters.packets_lost - last.packets_lost)
        expected = received + lost
        loss = lost / expected if expected else 0.0
        self.quality = LinkQuality(round(bitrate, 1), round(loss, 4), self._rtt)
        return self.quality

    def reported_rtt(self, seconds: object) -> LinkQuality:
        """The browser's own RTT measurement; ignored unless a plausible number."""
        if (
            isinstance(seconds, int | float)
            and not isinstance(seconds, bool)
            and math.isfinite(seconds)
            and 0 <= seconds <= MAX_RTT_SECONDS
        ):
            self._rtt = float(seconds)
            q = self.quality
            self.quality = LinkQuality(q.bitrate_bps, q.packet_loss_ratio, self._rtt)
        return self.quality
