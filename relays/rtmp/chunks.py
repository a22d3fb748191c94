"""RTMP chunk streams: messages cut into chunks for the wire, and read back.

Pure, sans-I/O: :class:`ChunkWriter` turns a :class:`Message` into bytes,
:class:`ChunkReader` takes bytes as they arrive (any split) and returns whole messages.

Framing (RTMP 1.0, section 5.3): each chunk has a basic header (format + chunk stream id,
1 to 3 bytes), a message header of 11, 7, 3 or 0 bytes (formats 0 to 3), an extended
timestamp when the 24-bit field reads 0xFFFFFF, then up to ``chunk_size`` payload bytes.
As nginx-rtmp and FFmpeg do, a format-3 chunk repeats the extended timestamp when the
chunk stream's last header carried one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

# Message type ids (RTMP 1.0, sections 5.4 and 7.1) that the publisher sends or handles;
# it ignores the others (such as 6, Set Peer Bandwidth).
SET_CHUNK_SIZE: Final = 1
ABORT: Final = 2
ACKNOWLEDGEMENT: Final = 3
USER_CONTROL: Final = 4
WINDOW_ACK_SIZE: Final = 5
AUDIO: Final = 8
VIDEO: Final = 9
DATA_AMF0: Final = 18
COMMAND_AMF0: Final = 20

DEFAULT_CHUNK_SIZE: Final = 128
MAX_CHUNK_SIZE: Final = 0x7FFFFFFF
MAX_TIMESTAMP: Final = 0xFFFFFFFF
_EXTENDED: Final = 0xFFFFFF
# Longer than this and a "message" is a broken or hostile peer, not RTMP.
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024


class _NeedMore:
    __slots__ = ()


_NEED_MORE: Final = _NeedMore()


class ChunkError(ValueError):
    """The peer sent something that is not a valid chunk stream."""


@dataclass(frozen=True, slots=True)
class Message:
    """One RTMP message.

    Attributes:
        type_id: The message type (see the constants in this module).
        stream_id: The message stream id (0 for control and connection commands).
        timestamp: Milliseconds, 32 bits (it wraps).
        payload: The message body.
    """

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


def basic_header(fmt: int, csid: int) -> bytes:
    """The 1-3 byte basic header of a chunk of chunk stream ``csid`` (2-65599).

    Raises:
        ValueError: ``csid`` is out of range or ``fmt`` is not 0-3.
    """
    if not 0 <= fmt <= 3:
        raise ValueError(f"chunk format must be 0-3, got {fmt}")
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= 65599:
        rest = csid - 64
        return bytes(((fmt << 6) | 1, rest & 0xFF, rest >> 8))
    raise ValueError(f"chunk stream id must be 2-65599, got {csid}")


class ChunkWriter:
    """Encodes messages as chunks: a format-0 chunk, then format-3 continuations.

    Args:
        chunk_size: The largest payload per chunk; change it with :attr:`chunk_size`
            right after sending a Set Chunk Size message.
    """

    __slots__ = ("_chunk_size",)

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._chunk_size = _checked_chunk_size(chunk_size)

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, size: int) -> None:
        self._chunk_size = _checked_chunk_size(size)

    def encode(self, csid: int, message: Message) -> bytes:
        """The chunks of ``message`` on chunk stream ``csid``, as one byte string.

        Raises:
            ValueError: ``csid`` is out of range, or a field does not fit its width.
        """
        return b"".join(self.chunks(csid, message))

    def chunks(self, csid: int, message: Message) -> list[bytes]:
        """The chunks of ``message`` on chunk stream ``csid``, one byte string each.

        Chunks of different chunk streams may be interleaved on the wire (that is what
        they are for: audio need not wait behind a large video frame); the chunks of
        one stream must go in order.

        Raises:
            ValueError: ``csid`` is out of range, or a field does not fit its width.
        """
        size = len(message.payload)
        if size > 0xFFFFFF:
            raise ValueError(f"a message payload is limited to 16 MiB, got {size} bytes")
        if not 0 <= message.type_id <= 0xFF:
            raise ValueError(f"message type must be 0-255, got {message.type_id}")
        if not 0 <= message.stream_id <= 0xFFFFFFFF:
            raise ValueError(f"message stream id must fit 32 bits, got {message.stream_id}")
        timestamp = message.timestamp & MAX_TIMESTAMP
        extended = timestamp >= _EXTENDED
        ext = struct.pack(">I", timestamp) if extended else b""
        header = (
            basic_header(0, csid)
            + (_EXTENDED if extended else timestamp).to_bytes(3, "big")
            + size.to_bytes(3, "big")
            + bytes((message.type_id,))
            + struct.pack("<I", message.stream_id)  # little-endian, unlike the rest
            + ext
        )
        continuation = basic_header(3, csid) + ext
        step = self._chunk_size
        payload = message.payload
        chunks = [header + payload[:step]]
        for start in range(step, size, step):
            chunks.append(continuation + payload[start : start + step])
        return chunks


@dataclass(slots=True)
class _StreamState:
    """What a chunk stream's last header said; later headers leave out what is unchanged."""

    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    seen: bool = False
    partial: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Reassembles messages from chunk stream bytes, however they were split.

    Set Chunk Size (type 1) and Abort (type 2) messages take effect as soon as they are
    read, before the next chunk is parsed; they are returned like every other message.

    Args:
        chunk_size: The peer's initial chunk size (128 unless negotiated otherwise).
        max_message_size: Messages announced longer than this raise :class:`ChunkError`.
    """

    def __init__(
        self, chunk_size: int = DEFAULT_CHUNK_SIZE, max_message_size: int = MAX_MESSAGE_SIZE
    ) -> None:
        self._chunk_size = _checked_chunk_size(chunk_size)
        self._max_message_size = max_message_size
        self._buffer = bytearray()
        self._streams: dict[int, _StreamState] = {}
        self.bytes_received = 0

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    def feed(self, data: bytes) -> list[Message]:
        """Take ``data`` and return every message it completes, in order.

        Raises:
            ChunkError: The bytes break the chunk stream format.
        """
        self.bytes_received += len(data)
        self._buffer += data
        messages: list[Message] = []
        while (message := self._next_chunk()) is not _NEED_MORE:
            if isinstance(message, Message):
                messages.append(message)
        return messages

    def _next_chunk(self) -> Message | _NeedMore | None:
        """Parse one chunk: the message it completed, None if the message goes on, or
        :data:`_NEED_MORE` if the buffer does not hold a whole chunk (nothing consumed)."""
        buf = self._buffer
        if not buf:
            return _NEED_MORE
        fmt, csid, pos = buf[0] >> 6, buf[0] & 0x3F, 1
        if csid == 0:
            if len(buf) < 2:
                return _NEED_MORE
            csid, pos = 64 + buf[1], 2
        elif csid == 1:
            if len(buf) < 3:
                return _NEED_MORE
            csid, pos = 64 + buf[1] + (buf[2] << 8), 3
        state = self._streams.get(csid)
        if state is None or not state.seen:
            if fmt != 0:
                raise ChunkError(f"chunk stream {csid} starts with a format-{fmt} header")
            state = self._streams.setdefault(csid, _StreamState())
        header_size = (11, 7, 3, 0)[fmt]
        if len(buf) < pos + header_size:
            return _NEED_MORE
        field24 = int.from_bytes(buf[pos : pos + 3], "big") if fmt < 3 else 0
        extended = field24 == _EXTENDED if fmt < 3 else state.extended
        ext_at = pos + header_size
        if extended and len(buf) < ext_at + 4:
            return _NEED_MORE
        ext_value = int.from_bytes(buf[ext_at : ext_at + 4], "big") if extended else 0
        length, type_id = state.length, state.type_id
        if fmt <= 1:
            length = int.from_bytes(buf[pos + 3 : pos + 6], "big")
            type_id = buf[pos + 6]
        starting = not state.partial
        if length > self._max_message_size:
            raise ChunkError(f"a message of {length} bytes is over the limit")
        if not starting and fmt != 3:
            raise ChunkError(
                f"chunk stream {csid}: a new format-{fmt} header in the middle of a message"
            )
        remaining = length - len(state.partial)
        take = min(self._chunk_size, remaining)
        body_at = ext_at + (4 if extended else 0)
        if len(buf) < body_at + take:
            return _NEED_MORE
        # The whole chunk is here: commit the header, then the payload.
        if fmt < 3:
            state.extended = extended
            value = ext_value if extended else field24
            if fmt == 0:
                state.timestamp, state.delta = value, 0
                state.stream_id = struct.unpack("<I", buf[pos + 7 : pos + 11])[0]
            else:
                state.delta = value
                state.timestamp = (state.timestamp + value) & MAX_TIMESTAMP
            state.length, state.type_id = length, type_id
        elif starting and state.seen:
            # A format-3 chunk that starts a message repeats the last delta.
            state.timestamp = (state.timestamp + state.delta) & MAX_TIMESTAMP
        state.seen = True
        state.partial += buf[body_at : body_at + take]
        del buf[: body_at + take]
        if len(state.partial) < length:
            return None
        message = Message(state.type_id, state.stream_id, state.timestamp, bytes(state.partial))
        state.partial.clear()
        self._control(message)
        return message

    def _control(self, message: Message) -> None:
        if message.stream_id != 0 or message.type_id not in (SET_CHUNK_SIZE, ABORT):
            return
        if len(message.payload) < 4:
            raise ChunkError(f"a control message of type {message.type_id} is too short")
        value = struct.unpack(">I", message.payload[:4])[0]
        if message.type_id == SET_CHUNK_SIZE:
            try:
                self._chunk_size = _checked_chunk_size(value & MAX_CHUNK_SIZE)
            except ValueError as exc:
                raise ChunkError(str(exc)) from None
        else:
            aborted = self._streams.get(value)
            if aborted is not None:
                aborted.partial.clear()


def _checked_chunk_size(size: int) -> int:
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be 1-{MAX_CHUNK_SIZE}, got {size}")
    return size
