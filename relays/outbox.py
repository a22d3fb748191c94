"""Bytes waiting for the link, in priority lanes.

A session (RTMP, Icecast) puts whole pieces (RTMP chunks, body bytes) into named lanes;
the publisher takes them when the socket can take more, the first lane first. For RTMP
the lanes are ``urgent`` (control, commands, metadata, audio) and ``video``: chunks of
different chunk streams may interleave, so audio never waits behind the rest of a large
video frame, and a slow link carries the audio first.

Counters per lane (bytes ever queued, bytes ever taken) let the publisher tell when a
given packet's bytes have left.
"""

from __future__ import annotations

from collections import deque


class Outbox:
    """FIFO lanes of byte pieces; :meth:`take` empties them in lane order.

    Args:
        lanes: Lane names, most urgent first.
    """

    __slots__ = ("_emitted", "_lanes", "_order", "_queued")

    def __init__(self, *lanes: str) -> None:
        if not lanes:
            raise ValueError("an outbox needs at least one lane")
        self._order = lanes
        self._lanes: dict[str, deque[bytes]] = {lane: deque() for lane in lanes}
        self._queued = dict.fromkeys(lanes, 0)
        self._emitted = dict.fromkeys(lanes, 0)

    def put(self, lane: str, piece: bytes) -> None:
        """Queue ``piece`` at the end of ``lane``."""
        if piece:
            self._lanes[lane].append(piece)
            self._queued[lane] += len(piece)

    def take(self, limit: int | None = None) -> bytes:
        """Whole pieces, most urgent lane first, until ``limit`` bytes are reached (at
        least one piece if any is waiting; everything if ``limit`` is None)."""
        out: list[bytes] = []
        size = 0
        for lane in self._order:
            pieces = self._lanes[lane]
            while pieces and (limit is None or size < limit):
                piece = pieces.popleft()
                self._emitted[lane] += len(piece)
                out.append(piece)
                size += len(piece)
        return b"".join(out)

    def pending(self, lane: str | None = None) -> int:
        """Bytes waiting in ``lane`` (all lanes if None)."""
        if lane is not None:
            return self._queued[lane] - self._emitted[lane]
        return sum(self._queued.values()) - sum(self._emitted.values())

    def queued(self, lane: str) -> int:
        """Bytes ever put in ``lane``."""
        return self._queued[lane]

    def emitted(self, lane: str) -> int:
        """Bytes ever taken from ``lane``."""
        return self._emitted[lane]
