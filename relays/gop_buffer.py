"""The drop policy of one destination's queue: bounded, whole GOPs, audio last.

Pure logic (no threads, no I/O, no av): :class:`relays.packet_queue.PacketQueue` wraps it
for the encoder and writer threads.

The invariant the policy keeps: what leaves the buffer is always decodable video, and
audio keeps flowing as long as possible. Concretely, the video that :meth:`GopBuffer.pop`
returns, in order, is a sequence of runs, each starting with a keyframe and holding
consecutive video packets as they were pushed. A run ends early only by dropping the
*rest* of a GOP (never its head), which a decoder handles like a freeze until the next
keyframe. Nothing the buffer emits ever references a frame that was dropped.
"""

from __future__ import annotations

from collections import deque

from relays.packet import EncodedPacket, PacketKind

# (push sequence number, packet): the sequence number restores push order across the
# separate video and audio queues.
_Entry = tuple[int, EncodedPacket]


class GopBuffer:
    """A FIFO of encoded packets bounded by media span and bytes, dropping whole GOPs.

    Bounds: after every :meth:`push`, ``queued_bytes <= max_bytes`` and
    ``span_seconds <= max_seconds``, with no exception: a single packet larger than
    ``max_bytes`` can never fit, so it is dropped on arrival (counted) and the queue is
    left as it was. If that packet is video, the rest of its GOP cannot be decoded
    without it, so the buffer starts awaiting the next keyframe.

    When a push takes the buffer over a bound, the oldest GOP of video is dropped: the
    oldest queued video packets up to, not including, the next queued keyframe. If no
    later keyframe is queued, all queued video is dropped and the buffer awaits a
    keyframe, dropping incoming non-keyframe video until one arrives. Audio is kept while
    any video is queued; only when no video is left are the oldest audio packets dropped.

    The span counts audio too (``newest - oldest`` over the whole buffer). Audio queued
    before the oldest video therefore keeps the span from shrinking when a GOP goes, so
    a *span* overflow in practice sheds all queued video at once; the small audio backlog
    then drains fast and video resumes at the next keyframe, which also brings the
    destination's lag back down. A *bytes* overflow sheds one GOP at a time.

    A new buffer is a fresh stream: like after :meth:`clear_to_keyframe`, it drops audio
    and video until the first video keyframe, so that what it emits starts with one.
    With ``audio_only=True`` there is no keyframe gating at all and any video pushed is
    dropped (counted).

    Timestamps: per kind, dts must not decrease (the program guarantees continuous
    timestamps). Video and audio may interleave in any order.

    Args:
        max_seconds: The largest media span the buffer may hold, in seconds.
        max_bytes: The largest total payload the buffer may hold.
        audio_only: The destination carries audio only.

    Raises:
        ValueError: If a bound is not positive.
    """

    __slots__ = (
        "_audio",
        "_audio_only",
        "_awaiting_keyframe",
        "_dropped_audio",
        "_dropped_bytes",
        "_dropped_video",
        "_gate_audio",
        "_max_bytes",
        "_max_seconds",
        "_queued_bytes",
        "_seq",
        "_video",
    )

    def __init__(self, max_seconds: float, max_bytes: int, *, audio_only: bool = False) -> None:
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self._max_seconds = float(max_seconds)
        self._max_bytes = max_bytes
        self._audio_only = audio_only
        # Invariant: the video queue is empty, or starts with a keyframe, or starts with
        # the continuation of a GOP whose earlier packets were all popped.
        self._video: deque[_Entry] = deque()
        self._audio: deque[_Entry] = deque()
        self._seq = 0
        # While awaiting a keyframe no video is accepted: the GOP being appended (if any
        # is still queued) ends where it is, complete as far as it goes.
        self._awaiting_keyframe = not audio_only
        # Audio is gated only before the first keyframe of a fresh stream. Invariant:
        # while it is gated, the video queue is empty.
        self._gate_audio = not audio_only
        self._queued_bytes = 0
        self._dropped_video = 0
        self._dropped_audio = 0
        self._dropped_bytes = 0

    def push(self, pkt: EncodedPacket) -> None:
        """Queue ``pkt``, then drop by policy until the buffer is within its bounds.

        Never blocks and never raises for a well-formed packet.
        """
        if pkt.kind == "video":
            if self._audio_only or (self._awaiting_keyframe and not pkt.keyframe):
                self._count_drop(pkt)
                return
        elif self._gate_audio:
            self._count_drop(pkt)
            return
        if len(pkt.data) > self._max_bytes:
            self._count_drop(pkt)
            if pkt.kind == "video":
                self._awaiting_keyframe = True
            return
        if pkt.kind == "video":
            if self._awaiting_keyframe:  # and pkt is a keyframe (checked above)
                self._awaiting_keyframe = False
                self._gate_audio = False
            self._video.append((self._seq, pkt))
        else:
            self._audio.append((self._seq, pkt))
        self._seq += 1
        self._queued_bytes += len(pkt.data)
        self._enforce_bounds()

    def pop(self, kind: PacketKind | None = None) -> EncodedPacket | None:
        """Remove and return the oldest queued packet in push order, or None if empty.

        Args:
            kind: Only a packet of this kind (the oldest of it), or None if there is
                none. A writer whose link is busy with a large video frame takes audio
                ahead of older video this way; per kind the order is still push order,
                so the video that leaves is as decodable as ever.
        """
        video, audio = self._video, self._audio
        if kind == "video" or (kind is None and video and (not audio or video[0][0] < audio[0][0])):
            if not video:
                return None
            _, pkt = video.popleft()
        elif audio:
            _, pkt = audio.popleft()
        else:
            return None
        self._queued_bytes -= len(pkt.data)
        return pkt

    def count(self, kind: PacketKind) -> int:
        """Packets of ``kind`` queued."""
        return len(self._video if kind == "video" else self._audio)

    def clear_to_keyframe(self) -> None:
        """Drop everything queued and start a fresh stream at the next video keyframe.

        Until that keyframe arrives, audio is dropped too: a destination that reconnects
        opens a new FLV stream, which must start with a keyframe. For an audio-only
        buffer this just drops everything queued.
        """
        while self._video:
            self._count_drop(self._video.popleft()[1])
        while self._audio:
            self._count_drop(self._audio.popleft()[1])
        self._queued_bytes = 0
        if not self._audio_only:
            self._awaiting_keyframe = True
            self._gate_audio = True

    def __len__(self) -> int:
        return len(self._video) + len(self._audio)

    @property
    def max_seconds(self) -> float:
        return self._max_seconds

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def dropped_video(self) -> int:
        """Video packets dropped so far."""
        return self._dropped_video

    @property
    def dropped_audio(self) -> int:
        """Audio packets dropped so far."""
        return self._dropped_audio

    @property
    def dropped_bytes(self) -> int:
        """Payload bytes of all packets dropped so far."""
        return self._dropped_bytes

    @property
    def queued_bytes(self) -> int:
        """Payload bytes currently queued."""
        return self._queued_bytes

    @property
    def oldest_seconds(self) -> float | None:
        """The earliest dts (seconds) among queued packets, or None if empty."""
        heads = [q[0][1].seconds for q in (self._video, self._audio) if q]
        return min(heads) if heads else None

    @property
    def span_seconds(self) -> float:
        """Media time covered by the queue: newest dts minus oldest dts, in seconds."""
        heads = [q[0][1].seconds for q in (self._video, self._audio) if q]
        if not heads:
            return 0.0
        tails = [q[-1][1].seconds for q in (self._video, self._audio) if q]
        # Per kind dts never decreases, so the heads and tails hold the extremes.
        return max(0.0, max(tails) - min(heads))

    def _over_bounds(self) -> bool:
        return self._queued_bytes > self._max_bytes or self.span_seconds > self._max_seconds

    def _enforce_bounds(self) -> None:
        # Terminates: each pass drops at least one packet, and a lone packet is within
        # both bounds (its size was checked on push, and its span is 0).
        while self._over_bounds():
            if self._video:
                self._drop_oldest_gop()
            else:
                _, pkt = self._audio.popleft()
                self._queued_bytes -= len(pkt.data)
                self._count_drop(pkt)

    def _drop_oldest_gop(self) -> None:
        # Drop the head (a keyframe, or the rest of a partly popped GOP) and everything
        # after it up to the next keyframe: never the head of a GOP without its tail.
        first = True
        while self._video and (first or not self._video[0][1].keyframe):
            _, pkt = self._video.popleft()
            self._queued_bytes -= len(pkt.data)
            self._count_drop(pkt)
            first = False
        if not self._video:
            # The GOP being appended went too: its next packets would not decode.
            self._awaiting_keyframe = True

    def _count_drop(self, pkt: EncodedPacket) -> None:
        if pkt.kind == "video":
            self._dropped_video += 1
        else:
            self._dropped_audio += 1
        self._dropped_bytes += len(pkt.data)
