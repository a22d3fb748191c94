"""FLV as a stream of tags: the muxer's output cut back into what RTMP carries.

Pure, sans-I/O. PyAV's FLV muxer writes the file header, then tags (script data, audio,
video), each followed by its 4-byte PreviousTagSize. An RTMP publisher sends each tag's
body as one message, so :class:`FlvSplitter` takes the muxer's bytes in whatever pieces
they come and returns whole :class:`FlvTag` values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

AUDIO_TAG: Final = 8
VIDEO_TAG: Final = 9
SCRIPT_TAG: Final = 18
TAG_TYPES: Final = frozenset((AUDIO_TAG, VIDEO_TAG, SCRIPT_TAG))

_SIGNATURE: Final = b"FLV"
_TAG_HEADER: Final = 11


class FlvError(ValueError):
    """The bytes are not an FLV stream."""


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One FLV tag.

    Attributes:
        type: 8 (audio), 9 (video) or 18 (script data, e.g. ``onMetaData``).
        timestamp: Milliseconds, 32 bits (the 24-bit field plus its extension byte).
        data: The tag body: what an RTMP audio, video or data message carries.
    """

    type: int
    timestamp: int
    data: bytes


class FlvSplitter:
    """Cuts an FLV byte stream into tags, however the bytes are split.

    The file header must come first. PreviousTagSize fields are checked: a mismatch
    means the stream is not what this splitter thinks it is.
    """

    __slots__ = ("_buffer", "_header_seen")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_seen = False

    @property
    def pending(self) -> int:
        """Bytes held back: an incomplete header or tag."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FlvTag]:
        """Take ``data`` and return every tag it completes, in order.

        Raises:
            FlvError: The stream is not FLV (bad signature, unknown tag type, or a
                PreviousTagSize that does not match).
        """
        self._buffer += data
        tags: list[FlvTag] = []
        buf = self._buffer
        if not self._header_seen:
            if len(buf) < 9:
                if not _SIGNATURE.startswith(bytes(buf[:3])):
                    raise FlvError("not an FLV stream: no 'FLV' signature")
                return tags
            if bytes(buf[:3]) != _SIGNATURE:
                raise FlvError("not an FLV stream: no 'FLV' signature")
            offset = struct.unpack(">I", buf[5:9])[0]
            if offset < 9:
                raise FlvError(f"FLV header size {offset} is smaller than 9")
            if len(buf) < offset + 4:
                return tags
            del buf[: offset + 4]  # the header and PreviousTagSize0
            self._header_seen = True
        pos = 0
        while len(buf) - pos >= _TAG_HEADER:
            tag_type = buf[pos] & 0x1F  # the upper bits: reserved and the "filter" flag
            size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            end = pos + _TAG_HEADER + size + 4
            if tag_type not in TAG_TYPES:
                raise FlvError(f"unknown FLV tag type {tag_type}")
            if len(buf) < end:
                break
            previous = struct.unpack(">I", buf[end - 4 : end])[0]
            if previous != _TAG_HEADER + size:
                raise FlvError(f"PreviousTagSize {previous} does not match a {size}-byte tag")
            timestamp = int.from_bytes(buf[pos + 4 : pos + 7], "big") | (buf[pos + 7] << 24)
            tags.append(FlvTag(tag_type, timestamp, bytes(buf[pos + _TAG_HEADER : end - 4])))
            pos = end
        del buf[:pos]
        return tags
