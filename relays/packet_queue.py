"""One destination's bounded packet queue, shared by the encoder and a writer thread.

A thread-safe shell around :class:`relays.gop_buffer.GopBuffer`: the encoder thread puts
packets without ever blocking (a slow destination must never hold up the program), and
the destination's single writer thread takes them with a timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from relays.gop_buffer import GopBuffer
from relays.packet import EncodedPacket, PacketKind


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A snapshot of a :class:`PacketQueue`.

    Attributes:
        queued_bytes: The payload bytes waiting to be written.
        span_seconds: Media time they cover (newest dts minus oldest dts).
        dropped_video: Video packets dropped so far.
        dropped_audio: Audio packets dropped so far.
        dropped_bytes: Payload bytes dropped so far.
        oldest_seconds: Earliest dts (seconds) still queued, None if empty.
    """

    queued_bytes: int
    span_seconds: float
    dropped_video: int
    dropped_audio: int
    dropped_bytes: int
    oldest_seconds: float | None = None


class PacketQueue:
    """A bounded, thread-safe packet queue with the :class:`GopBuffer` drop policy.

    One producer (the encoder thread) calls :meth:`put`; one consumer (the destination's
    writer thread) calls :meth:`get`. Any thread may call :meth:`close`,
    :meth:`clear_to_keyframe` and :meth:`stats`.

    Args:
        max_seconds: The largest media span the queue may hold, in seconds.
        max_bytes: The largest total payload the queue may hold.
        audio_only: The destination carries audio only (see :class:`GopBuffer`).

    Raises:
        ValueError: If a bound is not positive.
    """

    def __init__(self, max_seconds: float, max_bytes: int, *, audio_only: bool = False) -> None:
        self._buffer = GopBuffer(max_seconds, max_bytes, audio_only=audio_only)
        self._cond = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, pkt: EncodedPacket) -> None:
        """Queue ``pkt`` (dropping by policy if over bounds). Never blocks on the consumer.

        After :meth:`close` this does nothing: the destination is gone.
        """
        with self._cond:
            if self._closed:
                return
            self._buffer.push(pkt)
            self._cond.notify()

    def put_many(self, packets: list[EncodedPacket]) -> None:
        """:meth:`put` each of ``packets``, in order, waking the consumer once."""
        if not packets:
            return
        with self._cond:
            if self._closed:
                return
            for pkt in packets:
                self._buffer.push(pkt)
            self._cond.notify()

    def get(self, timeout: float, kind: PacketKind | None = None) -> EncodedPacket | None:
        """Take the oldest packet, waiting up to ``timeout`` seconds for one.

        A closed queue never waits: it hands out what is still queued (a graceful stop
        drains it; the writer bounds that in time), then None.

        Args:
            timeout: Seconds to wait at most.
            kind: Only a packet of this kind (see :meth:`GopBuffer.pop`).

        Returns:
            The packet, or None if nothing (of ``kind``) is queued: the timeout passed,
            or the queue is closed.
        """
        buffer = self._buffer
        with self._cond:
            if timeout <= 0:  # (wait_for would still wait once, for 0 s)
                pass
            elif kind is None:
                self._cond.wait_for(lambda: self._closed or len(buffer) > 0, timeout)
            else:
                self._cond.wait_for(lambda: self._closed or buffer.count(kind) > 0, timeout)
            return buffer.pop(kind)

    def close(self, *, discard: bool = False) -> None:
        """Close the queue: later puts are ignored and a waiting :meth:`get` wakes.

        Args:
            discard: Also drop what is queued (counted), so nothing is left to drain.
        """
        with self._cond:
            self._closed = True
            if discard:
                self._buffer.clear_to_keyframe()
            self._cond.notify_all()

    def has_packets(self, kind: PacketKind | None = None) -> bool:
        """Packets (of ``kind``, if given) are queued: :meth:`get` would return one."""
        with self._cond:
            return len(self._buffer) > 0 if kind is None else self._buffer.count(kind) > 0

    @property
    def drained(self) -> bool:
        """Closed with nothing left to take."""
        with self._cond:
            return self._closed and len(self._buffer) == 0

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def clear_to_keyframe(self) -> None:
        """Drop everything queued and restart at the next video keyframe.

        See :meth:`GopBuffer.clear_to_keyframe`; the writer calls this when it
        reconnects, since a new stream must start with a keyframe.
        """
        with self._cond:
            self._buffer.clear_to_keyframe()

    def stats(self) -> QueueStats:
        """A consistent snapshot of the queue's size and drop counters."""
        with self._cond:
            b = self._buffer
            return QueueStats(
                queued_bytes=b.queued_bytes,
                span_seconds=b.span_seconds,
                dropped_video=b.dropped_video,
                dropped_audio=b.dropped_audio,
                dropped_bytes=b.dropped_bytes,
                oldest_seconds=b.oldest_seconds,
            )
