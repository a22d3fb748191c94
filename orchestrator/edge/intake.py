"""One contribution as it arrives at the edge: body bytes in, encoded packets out.

The HTTP handler (on the event loop) puts the PUT body's bytes into a :class:`BodyPipe`;
a demux thread reads them with PyAV (FLV, no decoding: packets are copied as they are)
and hands :class:`relays.packet.EncodedPacket` batches to the fan-out. PyAV only ever
reads a Python file-like object, never a socket: a stalled studio blocks that thread
alone, and the loop times the body out (docs/edge.md).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Final

import av
from av.container import InputContainer

from relays.packet import EncodedPacket

log = logging.getLogger(__name__)

PIPE_LIMIT: Final = 4 * 1024 * 1024  # bytes held for the demuxer: seconds of program
# Little probing: the FLV header carries the codec configuration, and every byte the
# probe holds is latency before the first packet goes out (1 s of it made the studio's
# first keyframe after a blip look like backlog: the slate stayed a GOP longer).
_DEMUX_OPTIONS: Final = {"probesize": "65536", "analyzeduration": "100000"}
BATCH: Final = 8  # packets handed over at once (a few per video frame)


class BodyPipe:
    """Bytes from the event loop to the demux thread, at most :data:`PIPE_LIMIT` held.

    :meth:`read` is the file-like side PyAV reads: it blocks until bytes arrive and
    returns ``b""`` once the pipe is closed and empty (the end of the contribution).
    """

    def __init__(self, limit: int = PIPE_LIMIT) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._closed = False
        self._finished = False
        self._cond = threading.Condition()

    def offer(self, data: bytes) -> bool:
        """Take ``data`` if there is room now (never blocks); False if full or closed."""
        with self._cond:
            if self._closed or self._held + len(data) > self._limit:
                return False
            self._put(data)
            return True

    def put(self, data: bytes, timeout: float) -> bool:
        """Take ``data``, waiting up to ``timeout`` s for room; False if closed or still full."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._closed or self._held + len(data) <= self._limit or not self._held,
                timeout,
            ):
                return False
            if self._closed:
                return False
            self._put(data)
            return True

    def _put(self, data: bytes) -> None:
        self._chunks.append(data)
        self._held += len(data)
        self._cond.notify_all()

    def close(self, finished: bool = False) -> None:
        """No more bytes; ``finished``: the studio ended its body (the program's end),
        rather than the link stalling or breaking."""
        with self._cond:
            self._closed = True
            self._finished = self._finished or finished
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            self._cond.wait_for(lambda: self._chunks or self._closed)
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            if 0 <= size < len(chunk):
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._held -= len(chunk)
            self._cond.notify_all()
            return chunk


Publish = Callable[[InputContainer, list[EncodedPacket]], None]


def demux(pipe: BodyPipe, publish: Publish) -> None:
    """Read the contribution's FLV from ``pipe`` until it ends, publishing packets.

    ``publish`` gets the open container too: its streams are the templates of the
    destinations' outputs. The container is not closed here (see
    :class:`orchestrator.edge.fanout.Fanout`: outputs opened from its streams outlive
    the contribution).

    Raises:
        av.error.FFmpegError: The body is not FLV with H.264 video and AAC audio.
    """
    container = av.open(pipe, "r", format="flv", options=dict(_DEMUX_OPTIONS))
    if not container.streams.video or not container.streams.audio:
        raise ValueError("the contribution needs one video and one audio stream")
    batch: list[EncodedPacket] = []
    for packet in container.demux():
        if packet.dts is None or packet.size == 0 or packet.pts is None:
            continue
        if packet.is_corrupt:
            # A body that broke off mid-tag: libavformat hands over the bytes it got,
            # flagged. Sent on, every destination would get the same damaged frame.
            log.warning("the contribution ended inside a %s packet: dropped", packet.stream.type)
            continue
        kind = packet.stream.type
        if kind not in ("video", "audio") or packet.time_base is None:
            continue
        batch.append(
            EncodedPacket(
                kind,
                bytes(packet),
                packet.pts,
                packet.dts,
                packet.time_base,
                packet.is_keyframe,
                packet.duration or 0,
            )
        )
        if len(batch) >= BATCH or kind == "video":
            publish(container, batch)
            batch = []
    if batch:
        publish(container, batch)
