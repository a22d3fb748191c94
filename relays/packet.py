"""One encoded packet of the program feed, as it travels from the encoder to the relays.

The program is encoded once; each destination then muxes the same packets into its own
container. PyAV's ``mux`` rewrites a packet's timestamps in place, so an ``av.Packet`` must
never be shared between outputs. :class:`EncodedPacket` is the shareable form: immutable
bytes plus timing, from which every destination builds its own ``av.Packet``.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Literal, TypeAlias

PacketKind: TypeAlias = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """An encoded audio or video packet with its timing.

    Attributes:
        kind: ``"video"`` or ``"audio"``.
        data: The encoded payload (for H.264, as the encoder emitted it).
        pts: Presentation timestamp in ``time_base`` units.
        dts: Decoding timestamp in ``time_base`` units. Per kind, dts never decreases
            across the packets the program emits.
        time_base: Seconds per timestamp unit.
        keyframe: For video, True for a packet a decoder can start from (an IDR
            frame). The relays ignore it for audio.
        duration: Duration in ``time_base`` units, 0 if unknown.
    """

    kind: PacketKind
    data: bytes
    pts: int
    dts: int
    time_base: fractions.Fraction
    keyframe: bool
    duration: int = 0

    @property
    def seconds(self) -> float:
        """The decoding time in seconds (``dts * time_base``)."""
        return float(self.dts * self.time_base)

    @property
    def size(self) -> int:
        """The payload size in bytes."""
        return len(self.data)
