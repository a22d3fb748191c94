"""One encoded packet of the program feed, as it travels from the encoder to the relays.

The program is encoded once, and every destination takes the same packets. PyAV's ``mux``
rewrites a packet's timestamps in place, so an ``av.Packet`` must never be shared between
outputs. :class:`EncodedPacket` is the shareable form: immutable bytes plus timing, from
which a local output builds its own ``av.Packet``, and whose FLV tag every RTMP
destination shares (:meth:`EncodedPacket.flv_tag`).
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from relays.rtmp.flv import FlvTag
from relays.rtmp.flv_tags import media_tag

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
    # The decoding time in seconds (dts * time_base): every queue and writer reads it,
    # so it is worked out once.
    seconds: float = field(init=False, repr=False, compare=False)
    _flv: FlvTag | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tb = self.time_base
        object.__setattr__(self, "seconds", self.dts * tb.numerator / tb.denominator)

    @property
    def size(self) -> int:
        """The payload size in bytes."""
        return len(self.data)

    def flv_tag(self) -> FlvTag:
        """The packet as an FLV tag (:func:`relays.rtmp.flv_tags.media_tag`).

        Built once, by the first RTMP destination that asks, and shared by all of them.
        (Two asking at the same instant both build it: the same value, harmlessly.)
        """
        tag = self._flv
        if tag is None:
            tag = media_tag(self)
            object.__setattr__(self, "_flv", tag)
        return tag
