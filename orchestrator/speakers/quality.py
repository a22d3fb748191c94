"""A speaker's link quality from successive counter readings (pure).

aiortc's ``getStats()`` gives cumulative counters: bytes received on the transport and,
per inbound RTP stream, packets received and lost. The rate and the loss ratio are
computed over the interval between two readings. aiortc only receives, so it cannot
measure the round trip itself; the speaker's browser does (from our RTCP receiver
reports) and reports it with its status polls, with what it sends and whether its
video is paused for the link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from orchestrator.ingest.webrtc import LinkQuality

MAX_RTT_SECONDS = 60.0
MAX_SENT_BPS = 100e6
VIDEO_PAUSED = ("paused", "trial")  # the page's video modes in which jalsa shows the card


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
        self._sent: float | None = None
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
        self.quality = LinkQuality(round(bitrate, 1), round(loss, 4), self._rtt, self._sent)
        return self.quality

    def reported_rtt(self, seconds: object) -> LinkQuality:
        """The browser's own RTT measurement; ignored unless a plausible number."""
        if _plausible(seconds, MAX_RTT_SECONDS):
            self._rtt = float(seconds)  # type: ignore[arg-type]
            self.quality = replace(self.quality, rtt_seconds=self._rtt)
        return self.quality

    def reported_sent(self, bps: object) -> LinkQuality:
        """What the browser says it sends (bits per second); ignored unless plausible."""
        if _plausible(bps, MAX_SENT_BPS):
            self._sent = round(float(bps), 1)  # type: ignore[arg-type]
            self.quality = replace(self.quality, sent_bitrate_bps=self._sent)
        return self.quality


def video_paused(mode: object) -> bool | None:
    """Whether the page's reported video ``mode`` means "show the card": True while its
    link governor has paused video or is testing the link with it; None for no report."""
    if mode in VIDEO_PAUSED:
        return True
    if mode in ("on", "none"):
        return False
    return None


def _plausible(value: object, most: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= most
    )
