"""FLV tags made straight from encoded packets: the program is framed for RTMP once.

Pure. The program is encoded once, and every RTMP destination sends the same FLV tag
bodies; only the timestamps differ (each connection's timeline starts at 0). So a
packet's tag is built once (:meth:`relays.packet.EncodedPacket.flv_tag`) and shared,
and each connection only shifts its timestamp (:class:`FlvTimeline`).

The bytes are those FFmpeg's FLV muxer writes (a test compares them with PyAV's):

- H.264: ``0x17`` (keyframe) or ``0x27``, AVC packet type 1, the composition time
  (pts - dts, milliseconds, signed 24 bits), then the NAL units with 4-byte lengths
  (the encoder's Annex B start codes replaced).
- AAC: ``0xAF`` (AAC, stereo 16-bit, as FLV always says for AAC), packet type 1, then
  the raw frame.

The start of a stream (FLV header, ``onMetaData``, the codec configuration) depends on
the stream set only: :mod:`relays.framing` takes it from PyAV once per connection.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final, Protocol

from relays.rtmp.flv import AUDIO_TAG, VIDEO_TAG, FlvTag


class MediaPacket(Protocol):
    """What a tag is made of: :class:`relays.packet.EncodedPacket` has it (and caches the
    tag, so this module needs nothing of it)."""

    @property
    def kind(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def pts(self) -> int: ...
    @property
    def dts(self) -> int: ...
    @property
    def time_base(self) -> Fraction: ...
    @property
    def keyframe(self) -> bool: ...


_AVC_KEY: Final = 0x17
_AVC_INTER: Final = 0x27
_AAC: Final = 0xAF
_RAW: Final = 1
# The H.264 end-of-sequence tag FFmpeg's FLV muxer writes in its trailer.
AVC_END_OF_SEQUENCE: Final = bytes((_AVC_KEY, 2, 0, 0, 0))


def millis(ts: int, time_base: Fraction) -> int:
    """``ts`` in milliseconds, rounded half away from zero (as FFmpeg rescales)."""
    num = ts * time_base.numerator * 1000
    den = time_base.denominator
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((-2 * num + den) // (2 * den))


def is_length_prefixed(data: bytes) -> bool:
    """Whether ``data`` reads exactly as 4-byte-length-prefixed NAL units (AVCC: what the
    edge demuxes from a contribution's FLV), every unit at least one byte, ending at the
    data's end. Encoder output in Annex B never does: its first "length" would be the
    start code's 1 and the next one taken from inside a NAL unit."""
    at, size = 0, len(data)
    while at + 4 < size:
        length = int.from_bytes(data[at : at + 4], "big")
        if length == 0:
            return False
        at += 4 + length
    return at == size and size > 0


def annexb_to_avcc(data: bytes) -> bytes:
    """H.264 NAL units with start codes (Annex B) as 4-byte-length-prefixed units.

    Data that is length-prefixed already (:func:`is_length_prefixed`) is returned as it
    is. That is checked first: an AVCC packet whose first unit is 256-511 bytes long
    starts with 00 00 01, which looks like a start code, and taking it for one damaged
    that packet for every destination of an edge (its length read as a start code and
    one byte of it as the unit's first).
    """
    if is_length_prefixed(data) or not (
        data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")
    ):
        return data
    out = bytearray()
    start = data.find(b"\x00\x00\x01") + 3
    end_of_data = len(data)
    while start < end_of_data:
        following = data.find(b"\x00\x00\x01", start)
        end = end_of_data if following < 0 else following
        if following > start and data[following - 1] == 0:
            end -= 1  # a 4-byte start code: its leading zero is not part of this unit
        if end > start:
            out += (end - start).to_bytes(4, "big")
            out += data[start:end]
        if following < 0:
            break
        start = following + 3
    return bytes(out)


def media_tag(packet: MediaPacket) -> FlvTag:
    """``packet`` as an FLV tag; its timestamp is the program's dts in milliseconds."""
    dts = millis(packet.dts, packet.time_base)
    if packet.kind == "audio":
        return FlvTag(AUDIO_TAG, dts, bytes((_AAC, _RAW)) + packet.data)
    cts = millis(packet.pts, packet.time_base) - dts
    header = bytes((_AVC_KEY if packet.keyframe else _AVC_INTER, _RAW)) + (cts & 0xFFFFFF).to_bytes(
        3, "big"
    )
    return FlvTag(VIDEO_TAG, dts, header + annexb_to_avcc(packet.data))


class FlvTimeline:
    """One connection's timeline: tag timestamps count from its first packet.

    The first packet (a keyframe, as the queue guarantees) sets the origin; tags from
    before it (audio queued just ahead of the keyframe) are skipped.
    """

    __slots__ = ("_origin", "last_video")

    def __init__(self) -> None:
        self._origin: int | None = None
        self.last_video: int | None = None  # the newest video tag's timestamp

    def shift(self, tag: FlvTag) -> FlvTag | None:
        """``tag`` on this connection's timeline, or None if it comes before the origin."""
        if self._origin is None:
            self._origin = tag.timestamp
        timestamp = tag.timestamp - self._origin
        if timestamp < 0:
            return None
        if tag.type == VIDEO_TAG:
            self.last_video = timestamp
        return FlvTag(tag.type, timestamp, tag.data)
