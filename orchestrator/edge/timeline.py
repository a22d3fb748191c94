"""The edge's output timeline: the studio's packets and the blip slate's, on ONE clock.

The destinations of one relay see one timeline whatever the contribution does: the
studio's packets are mapped onto it with an offset, the slate that covers a stall
starts where the studio's last packet ended, and when the studio is back its next
keyframe continues where the slate got to (the offset changes at each blip; the
studio's packets before that keyframe are dropped). Timestamps are in the
contribution's time base per kind (FLV's milliseconds), strictly increasing per kind.
Pure: no clock, no I/O; :mod:`orchestrator.edge.blip_cover` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from relays.packet import EncodedPacket, PacketKind


@dataclass(frozen=True, slots=True)
class SlatePacket:
    """One packet of the pre-encoded slate loop, timed from the loop's start.

    Attributes:
        kind: video or audio.
        data: the payload as the contribution carries it (length-prefixed H.264, raw AAC).
        at: its decoding time in seconds from the loop's start.
        cts: presentation minus decoding time, seconds.
        duration: seconds.
        keyframe: a decoder can start here.
    """

    kind: PacketKind
    data: bytes
    at: Fraction
    cts: Fraction
    duration: Fraction
    keyframe: bool


@dataclass(slots=True)
class _Track:
    last: int | None = None  # the newest dts sent, output ticks
    step: int = 0  # its duration (or the last interval): where the next one may start


class Timeline:
    """See the module docstring.

    Args:
        time_bases: the contribution's time base of each kind.
    """

    def __init__(self, time_bases: dict[PacketKind, Fraction]) -> None:
        self._time_bases = dict(time_bases)
        self._tracks: dict[PacketKind, _Track] = {kind: _Track() for kind in time_bases}
        self._offset = Fraction(0)  # output seconds minus studio seconds
        self._slate_from: Fraction | None = None  # where the slate started, while on
        self._resumed_at = Fraction(-1)  # studio seconds of the keyframe that ended it

    @property
    def on_slate(self) -> bool:
        return self._slate_from is not None

    @property
    def started(self) -> bool:
        """Some packet has been sent."""
        return any(t.last is not None for t in self._tracks.values())

    def position(self) -> Fraction:
        """Output seconds where the next packet may start: the end of the newest one."""
        return max(
            (
                Fraction(t.last + t.step) * self._time_bases[kind]
                for kind, t in self._tracks.items()
                if t.last is not None
            ),
            default=Fraction(0),
        )

    def studio(
        self, packet: EncodedPacket, resume: bool = True
    ) -> tuple[EncodedPacket | None, bool]:
        """The studio's ``packet`` on the output timeline, or None when it is dropped.

        ``resume``: while the slate is on, whether this packet (if a keyframe) may end it
        (see :func:`behind_live`).

        Returns:
            (the packet or None, True if this packet ended the slate: the studio's first
            keyframe after it).
        """
        switched = False
        seconds = Fraction(packet.dts) * packet.time_base
        if self._slate_from is not None:
            if packet.kind != "video" or not packet.keyframe or not resume:
                return None, False
            self._offset = self.position() - seconds
            self._slate_from, self._resumed_at, switched = None, seconds, True
        elif seconds < self._resumed_at:
            return None, False  # from before the keyframe that ended the slate
        tb = self._time_bases[packet.kind]
        dts = _ticks(seconds + self._offset, tb)
        duration = _ticks(Fraction(packet.duration) * packet.time_base, tb)
        cts = _ticks(Fraction(packet.pts - packet.dts) * packet.time_base, tb)
        return self._send(packet.kind, packet.data, dts, cts, duration, packet.keyframe), switched

    def start_slate(self) -> Fraction:
        """The slate goes on where the newest packet ended; returns that output time."""
        self._slate_from = self.position()
        return self._slate_from

    def slate(self, packet: SlatePacket, loop_start: Fraction) -> EncodedPacket | None:
        """A slate packet of the loop that began ``loop_start`` s after the slate went on."""
        if self._slate_from is None:
            return None
        tb = self._time_bases[packet.kind]
        dts = _ticks(self._slate_from + loop_start + packet.at, tb)
        return self._send(
            packet.kind,
            packet.data,
            dts,
            _ticks(packet.cts, tb),
            _ticks(packet.duration, tb),
            packet.keyframe,
        )

    def _send(
        self, kind: PacketKind, data: bytes, dts: int, cts: int, duration: int, keyframe: bool
    ) -> EncodedPacket | None:
        track = self._tracks[kind]
        if track.last is not None and dts <= track.last:
            return None  # would go back in time (audio from before the switch-back point)
        track.step = (
            duration if duration > 0 else (dts - track.last if track.last is not None else 0)
        )
        track.last = dts
        return EncodedPacket(kind, data, dts + cts, dts, self._time_bases[kind], keyframe, duration)


BACKLOG_SECONDS = 0.5  # a keyframe older than this (than the live program) is backlog


def behind_live(keyframe: float, live: float) -> bool:
    """A keyframe at studio time ``keyframe`` is from the studio's backlog, not live.

    After a stall the studio sends what its queue held first (the GOP it was in, up
    to a keyframe distance old). Switching back at such a keyframe would put the
    destinations that much ahead of the wall clock for the rest of the event (measured:
    1.9 s with a 3 s tolerance); the slate stays on until a keyframe of the live
    program instead, at most one keyframe distance later. ``live`` is the studio time
    now, as the edge can tell: its last packet's before the stall plus the wall time
    since (never ahead of the truth: that packet may have arrived late).
    """
    return keyframe < live - BACKLOG_SECONDS


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    return round(seconds / time_base)
