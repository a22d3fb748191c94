"""PyAV muxing into memory: FLV for RTMP, ADTS for Icecast, no network in PyAV.

PyAV holds the GIL while an output container opens network I/O, so an ingest that
accepts TCP and never answers would freeze the whole process. Network destinations
therefore only ever give PyAV a Python file-like object: the muxer writes its bytes
into memory (flushed after every packet) and our own publisher sends them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av
from av.container import OutputContainer
from av.stream import Stream

from relays.packet import EncodedPacket

# Bytes out per packet: flush after each one, and (PyAV muxes with interleaving) hold
# at most one packet back, however long the other stream is silent (video dropped on a
# slow link must not hold audio back for FFmpeg's default 10 s).
_PER_PACKET = {"flush_packets": "1", "max_interleave_delta": "1"}
FORMAT_OPTIONS = {
    # The header is written once; never seek back for duration/filesize.
    "flv": {"flvflags": "no_duration_filesize", **_PER_PACKET},
    "adts": _PER_PACKET,
}


class _Bytes:
    """The file-like the muxer writes into. Not seekable, on purpose."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class MemoryMuxer:
    """One connection's muxer: fresh headers, timestamps from its first packet (:class:`Rebase`).

    Args:
        fmt: ``"flv"`` or ``"adts"`` (audio only).
        templates: The encoder's (video, audio) streams, for codec parameters.
        audio_only: Carry only the audio stream (always for ADTS).
    """

    def __init__(self, fmt: str, templates: tuple[Stream, Stream], *, audio_only: bool) -> None:
        self._sink = _Bytes()
        self._container: OutputContainer = av.open(
            self._sink, "w", format=fmt, options=dict(FORMAT_OPTIONS[fmt])
        )
        video_t, audio_t = templates
        audio_only = audio_only or fmt == "adts"
        self._video = None if audio_only else self._container.add_stream_from_template(video_t)
        self._audio = self._container.add_stream_from_template(audio_t)
        self._rebase = Rebase()
        self._closed = False
        self._container.start_encoding()

    def header(self) -> bytes:
        """The bytes written before any packet (the FLV header and codec headers)."""
        return self._sink.take()

    def mux(self, packet: EncodedPacket) -> bytes:
        """Mux ``packet``; return the bytes it produced (b"" if skipped)."""
        stream = self._video if packet.kind == "video" else self._audio
        out = None if stream is None else self._rebase.packet(packet, stream)
        if out is None:
            return b""
        self._container.mux(out)
        return self._sink.take()

    def close(self) -> bytes:
        """Write the trailer; return the last bytes."""
        if self._closed:
            return b""
        self._closed = True
        self._container.close()
        return self._sink.take()


class Rebase:
    """A connection's timeline: timestamps count from its first packet.

    The first packet (a keyframe, as the queue guarantees) sets the origin, so each
    connection's stream starts at 0; packets from before the origin (audio queued just
    ahead of the keyframe) are skipped.

    Per packet this is integer math only: for each time base met, the origin's shift
    (and the first dts at or after the origin) is worked out once with ``Fraction``
    and kept for the connection.
    """

    __slots__ = ("_origin", "_shifts")

    def __init__(self, origin: Fraction | None = None) -> None:
        # The origin in seconds; None: the first packet's dts.
        self._origin: Fraction | None = origin
        # Per kind: (its time base, the origin's shift in its units, the smallest dts
        # not before the origin).
        self._shifts: dict[str, tuple[Fraction, int, int]] = {}

    def packet(self, packet: EncodedPacket, stream: Stream) -> av.Packet[Stream] | None:
        """A new av.Packet for ``stream`` (never shared: mux rewrites it), or None."""
        time_base = packet.time_base
        known = self._shifts.get(packet.kind)
        if known is None or (known[0] is not time_base and known[0] != time_base):
            known = self._shift_for(packet)
        if packet.dts < known[2]:
            return None
        return _to_av(packet, stream, known[1])

    def _shift_for(self, packet: EncodedPacket) -> tuple[Fraction, int, int]:
        time_base = packet.time_base
        if self._origin is None:
            self._origin = packet.dts * time_base
        units = self._origin / time_base
        # dts * time_base < origin  <=>  dts < ceil(origin / time_base)
        known = (time_base, round(units), math.ceil(units))
        self._shifts[packet.kind] = known
        return known


def _to_av(packet: EncodedPacket, stream: Stream, shift: int) -> av.Packet[Stream]:
    out = av.Packet(packet.data)
    out.pts = packet.pts - shift
    out.dts = packet.dts - shift
    out.time_base = packet.time_base
    out.is_keyframe = packet.keyframe
    if packet.duration:
        out.duration = packet.duration
    out.stream = stream
    return out
