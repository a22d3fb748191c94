"""A speaker's voice past a lost packet at once, not after 16 more (aiortc's audio buffer).

aiortc's audio jitter buffer (16 packets, 4 prefetched) hands the decoder a packet only
when every packet from its origin on is there: one packet lost for good holds the voice
until 16 newer ones have come — 0.3 s of silence at 20 ms packets, ~1 s at the 60 ms ones
jalsa asks for — and from then on the buffer stays full, 16 packets late. Nobody resends
a lost audio packet (neither aiortc nor the browser does NACK/RTX for Opus), so waiting
for one only helps a packet that overtook another, which one path hardly ever does:
:class:`VoiceJitterBuffer` gives up on a hole as soon as ``patience`` packets after it
are there (the buffer's own prefetch), so a lost packet costs its own 60 ms and no delay.

The buffer's capacity is a count of packets, not a time, so a 1 s round trip does not
matter to it; a queue that builds on the link delays every packet alike (no reordering).
"""

from __future__ import annotations

import logging
from typing import Final

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

log = logging.getLogger(__name__)

CAPACITY: Final = 16  # aiortc's own for audio
PREFETCH: Final = 4
_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"


def holes_to_skip(held: list[bool], patience: int) -> int:
    """Slots to give up on at the buffer's origin (pure): the empty ones before the first
    packet held, once ``patience`` packets are held after them (else 0)."""
    if not held or held[0]:
        return 0
    first = held.index(True) if True in held else len(held)
    return first if sum(held[first:]) >= patience else 0


class VoiceJitterBuffer(JitterBuffer):
    """aiortc's :class:`JitterBuffer` for one-packet frames (Opus) that skips a lost packet
    once ``prefetch`` newer packets have come; a packet is handed out, like aiortc's, when
    ``prefetch`` more are held behind it."""

    def __init__(self, capacity: int = CAPACITY, prefetch: int = PREFETCH) -> None:
        super().__init__(capacity, prefetch=prefetch)
        self.skipped = 0  # packets given up on

    def _remove_frame(self, _sequence_number: int) -> JitterFrame | None:
        if self._origin is None:
            return None
        held = [
            self._packets[(self._origin + i) % self._capacity] is not None
            for i in range(self._capacity)
        ]
        if skip := holes_to_skip(held, self._prefetch):
            self.remove(skip)
            self.skipped += skip
            held = held[skip:]
        packet = self._packets[self._origin % self._capacity]
        if packet is None or sum(held) <= self._prefetch:
            return None
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def use_voice_buffer(receivers: list[RTCRtpReceiver], track: MediaStreamTrack) -> bool:
    """Give ``track``'s receiver (audio) a :class:`VoiceJitterBuffer`, before packets
    arrive; False when aiortc has no such buffer to replace (another aiortc)."""
    for receiver in receivers:
        if receiver.track is track and track.kind == "audio":
            current = getattr(receiver, _ATTRIBUTE, None)
            if not isinstance(current, JitterBuffer):
                return False
            setattr(receiver, _ATTRIBUTE, VoiceJitterBuffer(current.capacity))
            return True
    return False
