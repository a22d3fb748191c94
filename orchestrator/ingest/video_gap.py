"""Unsticking aiortc's video after a packet that never came (a lossy uplink).

aiortc's video jitter buffer hands a frame to the decoder only when every packet from its
origin on is present: one packet lost for good (dropped by a full queue on the speaker's
link, its retransmission too) holds all later pictures until 512 more packets have come —
a minute or more at the few packets a second a step-down sends. Audio flows meanwhile, so
the speaker looks like a frozen card. :func:`skip_lost_video` moves the buffer's origin
past the last hole and asks the browser for a key frame (RTCP PLI), so pictures resume at the
next one. It reaches into aiortc's receiver (there is no public way); with another
aiortc that has no such buffer it does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc import RTCRtpReceiver

log = logging.getLogger(__name__)


def stalled_packets(packets: list[Any], origin: int, capacity: int) -> int:
    """How many slots from the origin to give up on: up to and including the last hole
    before the newest packet held (0 when no hole holds anything back)."""
    held = [count for count in range(capacity) if packets[(origin + count) % capacity] is not None]
    if not held:
        return 0
    holes = [count for count in range(held[-1]) if packets[(origin + count) % capacity] is None]
    return holes[-1] + 1 if holes else 0


async def skip_lost_video(receiver: RTCRtpReceiver) -> int:
    """Skip past the holes in the video jitter buffer and request a key frame; how many
    slots were given up on."""
    buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
    packets = getattr(buffer, "_packets", None)
    origin = getattr(buffer, "_origin", None)
    if buffer is None or not isinstance(packets, list) or not isinstance(origin, int):
        return 0
    skipped = stalled_packets(packets, origin, len(packets))
    if skipped:
        buffer.remove(skipped)
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
    return skipped
