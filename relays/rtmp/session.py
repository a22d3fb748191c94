"""An RTMP publisher as a sans-I/O state machine: bytes in, bytes out, no sockets.

:class:`RtmpPublishSession` does what an encoder does to go live on an RTMP ingest:

1. the simple handshake: C0+C1 out; S0, S1, S2 in; C2 (an echo of S1) out;
2. Set Chunk Size 4096, then ``connect`` (app, tcUrl, type "nonprivate", flashVer);
3. ``releaseStream``, ``FCPublish`` and ``createStream`` (pipelined, as FFmpeg and OBS
   do), then ``publish(stream, "live")`` on the new stream;
4. once the server says ``NetStream.Publish.Start`` it is live: FLV tags go out as
   ``@setDataFrame`` (the script tag), audio (type 8, chunk stream 4) and video
   (type 9, chunk stream 6) messages.

Outgoing chunks wait in two lanes of an :class:`~relays.outbox.Outbox`: ``urgent``
(control, commands, codec headers, metadata and, once the stream has started, audio)
before ``video``. Chunk streams may interleave on the wire, so audio never waits behind
the rest of a large video frame. Until the first video frame has gone out, audio stays
in order with the video: servers (nginx-rtmp's recorder, for one) take the stream's time
origin from the first frame they see.

Throughout it reads what the server sends: chunk size changes, window acknowledgement
size (and acknowledges what it received), pings (answered with a pong), and ``_error``
or ``onStatus`` errors, which raise :class:`~relays.errors.PublishRefused` with the
server's own description.

The I/O shell is :class:`relays.publisher.Publisher` over a :class:`relays.link.Link` (the
TCP or TLS socket). While the session connects, the shell runs on the destination's own
thread. Once the session is live, the relay's :mod:`relays.pump` thread drives it, and
the goodbye (:meth:`~RtmpPublishSession.finish`) runs back on the destination's thread. The
shell calls :meth:`~RtmpPublishSession.receive_data` with whatever the socket read and
sends :meth:`~RtmpPublishSession.data_to_send`. The media comes from the connection's
:class:`relays.framing.FlvFraming`, which calls :meth:`~RtmpPublishSession.send_tag`.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from relays.errors import ProtocolError, PublishRefused
from relays.outbox import Outbox
from relays.rtmp import amf0
from relays.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AUDIO,
    COMMAND_AMF0,
    DATA_AMF0,
    SET_CHUNK_SIZE,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkError,
    ChunkReader,
    ChunkWriter,
    Message,
)
from relays.rtmp.flv import AUDIO_TAG, SCRIPT_TAG, VIDEO_TAG, FlvTag

HANDSHAKE_SIZE: Final = 1536
RTMP_VERSION: Final = 3
FLASH_VER: Final = "FMLE/3.0 (compatible; jalsa)"
CHUNK_SIZE: Final = 4096

# Chunk stream ids: 2 is reserved for protocol control; the rest are our choice.
CONTROL_CSID: Final = 2
COMMAND_CSID: Final = 3
AUDIO_CSID: Final = 4
DATA_CSID: Final = 5
VIDEO_CSID: Final = 6

# User control events (RTMP 1.0, section 7.1.7).
PING_REQUEST: Final = 6
PING_RESPONSE: Final = 7

_TX_CONNECT: Final = 1
_TX_RELEASE: Final = 2
_TX_FCPUBLISH: Final = 3
_TX_CREATE_STREAM: Final = 4
_TX_PUBLISH: Final = 5
_TAG_MESSAGE: Final = {AUDIO_TAG: (AUDIO, AUDIO_CSID), VIDEO_TAG: (VIDEO, VIDEO_CSID)}
URGENT: Final = "urgent"
VIDEO_LANE: Final = "video"


@dataclass(frozen=True, slots=True)
class RtmpTarget:
    """Where to publish: host, port, TLS, the application and the stream name.

    ``stream`` is usually the stream key: it never appears in ``repr``.
    """

    host: str
    port: int
    tls: bool
    app: str
    tc_url: str
    stream: str = field(repr=False)


def rtmp_target(url: str, key: str | None) -> RtmpTarget:
    """Split an ingest URL into what ``connect`` and ``publish`` need.

    With a key, the whole path (and query, as in YouTube's ``live2?backup=1``) is the
    application and the key is the stream name. Without one, the last path segment is
    the stream name (``rtmp://host/app/stream``).

    Raises:
        ValueError: Not an rtmp:// or rtmps:// URL with a host, an application and a
            stream name.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("rtmp", "rtmps"):
        raise ValueError("not an rtmp:// or rtmps:// URL")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    tls = scheme == "rtmps"
    port = parts.port or (443 if tls else 1935)
    path = parts.path.strip("/")
    if key:
        app, stream = path, key
        if parts.query:
            app = f"{app}?{parts.query}"
    else:
        app, _, stream = path.rpartition("/")
        if parts.query:
            stream = f"{stream}?{parts.query}"
    if not app or not stream:
        raise ValueError("the URL needs an application and a stream name (rtmp://host/app/key)")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return RtmpTarget(host, port, tls, app, f"{scheme}://{netloc}/{app}", stream)


RtmpState: TypeAlias = Literal["handshake", "connect", "publish", "live", "closed"]


class RtmpPublishSession:
    """One publishing connection's protocol state; see the module docstring.

    Attributes:
        state: ``handshake``, ``connect``, ``publish``, ``live`` or ``closed``.

    Args:
        target: Where to publish.
        random_bytes: The source of C1's random part (``os.urandom``).
        clock: Milliseconds for C1's time field.
    """

    def __init__(
        self,
        target: RtmpTarget,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.state: RtmpState = "handshake"
        self._random_bytes = random_bytes
        self._clock = clock
        self.outbox = Outbox(URGENT, VIDEO_LANE)
        self._handshake = bytearray()
        self._reader = ChunkReader()
        self._writer = ChunkWriter()
        self._first_frame_end: int | None = None  # the video lane's total after frame 1
        self._audio_in_video_end = 0  # ... after the last audio kept in order with video
        self._audio_ahead = False
        self._stream_id = 0
        self._ack_window = 0
        self._acked = 0
        self._initiated = False

    # -- what the I/O shell calls ---------------------------------------------------------
    def initiate(self) -> None:
        """Queue C0 and C1: the first bytes on a fresh connection."""
        if self._initiated:
            raise RuntimeError("the session was already initiated")
        self._initiated = True
        millis = int(self._clock() * 1000) & 0xFFFFFFFF
        # Zero in the version field: the simple (unsigned) handshake.
        c1 = struct.pack(">II", millis, 0) + self._random_bytes(HANDSHAKE_SIZE - 8)
        self.outbox.put(URGENT, bytes((RTMP_VERSION,)) + c1)

    def data_to_send(self, limit: int | None = None) -> bytes:
        """What to send next: urgent chunks, then video chunks, up to about ``limit``
        bytes (whole chunks; all of it if None)."""
        return self.outbox.take(limit)

    def lane_of(self, kind: str) -> str:
        """The outbox lane a packet of ``kind`` travels in now."""
        if kind == "video":
            return VIDEO_LANE
        if not self._audio_ahead and self._first_frame_end is not None:
            # Once the first frame and any audio queued behind it have left, audio
            # may go ahead of video for good (per lane, order is kept).
            sent = self.outbox.emitted(VIDEO_LANE)
            self._audio_ahead = sent >= max(self._first_frame_end, self._audio_in_video_end)
        return URGENT if self._audio_ahead else VIDEO_LANE

    @property
    def live(self) -> bool:
        return self.state == "live"

    def receive_data(self, data: bytes) -> None:
        """Handle bytes from the server.

        Raises:
            ProtocolError: The server does not speak RTMP, or broke the chunk stream.
            PublishRefused: The server rejected the connect or the publish, or ended
                the stream, with its description.
        """
        if self.state == "handshake":
            data = self._read_handshake(data)
            if not data:
                return
        try:
            messages = self._reader.feed(data)
        except ChunkError as exc:
            raise ProtocolError(f"broken RTMP chunk stream from the server: {exc}") from None
        for message in messages:
            self._handle(message)
        self._acknowledge()

    def send_tag(self, tag: FlvTag) -> None:
        """Queue an FLV tag as an RTMP message.

        Raises:
            RuntimeError: Not live yet.
        """
        if not self.live:
            raise RuntimeError("publish has not started")
        if tag.type == SCRIPT_TAG:
            payload = amf0.encode("@setDataFrame") + tag.data
            self._send(DATA_CSID, Message(DATA_AMF0, self._stream_id, 0, payload))
            return
        type_id, csid = _TAG_MESSAGE[tag.type]
        message = Message(type_id, self._stream_id, tag.timestamp, tag.data)
        if _is_sequence_header(tag):  # codec configuration: ahead of all media
            self._send(csid, message, URGENT)
        elif tag.type == VIDEO_TAG:
            self._send(csid, message, VIDEO_LANE)
            if self._first_frame_end is None:
                self._first_frame_end = self.outbox.queued(VIDEO_LANE)
        else:
            lane = self.lane_of("audio")
            self._send(csid, message, lane)
            if lane == VIDEO_LANE:
                self._audio_in_video_end = self.outbox.queued(VIDEO_LANE)

    def finish(self) -> None:
        """Queue the goodbye (FCUnpublish, deleteStream); the shell then closes.

        It goes in the last lane, after every byte of media: a server ends the stream
        (closes its recording) when it reads it.
        """
        if self.state == "live":
            self._command("FCUnpublish", 0, None, self.target.stream, lane=VIDEO_LANE)
            self._command("deleteStream", 0, None, float(self._stream_id), lane=VIDEO_LANE)
        self.state = "closed"

    # -- inside ---------------------------------------------------------------------------
    def _read_handshake(self, data: bytes) -> bytes:
        """Collect S0+S1+S2; answer with C2 and the connect. Returns the bytes after."""
        need = 1 + 2 * HANDSHAKE_SIZE
        self._handshake += data
        if self._handshake[:1] and self._handshake[0] != RTMP_VERSION:
            got = self._handshake[0]
            raise ProtocolError(
                f"the server did not answer as RTMP (first byte 0x{got:02x}, expected 0x03): "
                "is this an RTMP ingest, and is the scheme (rtmp:// or rtmps://) right?"
            )
        if len(self._handshake) < need:
            return b""
        s1 = bytes(self._handshake[1 : 1 + HANDSHAKE_SIZE])
        rest = bytes(self._handshake[need:])
        self._handshake.clear()
        self.outbox.put(URGENT, s1)  # C2 echoes S1
        self.state = "connect"
        self._send(CONTROL_CSID, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", CHUNK_SIZE)))
        self._writer.chunk_size = CHUNK_SIZE
        self._command(
            "connect",
            _TX_CONNECT,
            {
                "app": self.target.app,
                "type": "nonprivate",
                "flashVer": FLASH_VER,
                "tcUrl": self.target.tc_url,
            },
        )
        return rest

    def _handle(self, message: Message) -> None:
        if message.type_id == WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._ack_window = struct.unpack(">I", message.payload[:4])[0]
        elif message.type_id == USER_CONTROL and len(message.payload) >= 6:
            event = struct.unpack(">H", message.payload[:2])[0]
            if event == PING_REQUEST:
                pong = struct.pack(">H", PING_RESPONSE) + message.payload[2:6]
                self._send(CONTROL_CSID, Message(USER_CONTROL, 0, 0, pong))
        elif message.type_id == COMMAND_AMF0:
            try:
                values = amf0.decode_all(message.payload)
            except amf0.AmfError as exc:
                raise ProtocolError(f"an unreadable command from the server: {exc}") from None
            if values and isinstance(values[0], str):
                self._command_from_server(values[0], values[1:])

    def _command_from_server(self, name: str, args: list[amf0.Value]) -> None:
        tx = args[0] if args and isinstance(args[0], float) else 0.0
        info = _info(args)
        if name == "_error":
            what = {
                _TX_CONNECT: "connect",
                _TX_CREATE_STREAM: "createStream",
                _TX_PUBLISH: "publish",
            }.get(int(tx))
            if what is None:
                return  # e.g. releaseStream on a server that does not know it: harmless
            raise PublishRefused(f"the server rejected {what}: {_describe(info)}")
        if name == "_result":
            if tx == _TX_CONNECT and self.state == "connect":
                self.state = "publish"
                self._command("releaseStream", _TX_RELEASE, None, self.target.stream)
                self._command("FCPublish", _TX_FCPUBLISH, None, self.target.stream)
                self._command("createStream", _TX_CREATE_STREAM, None)
            elif tx == _TX_CREATE_STREAM and self.state == "publish":
                stream_id = next((a for a in args[1:] if isinstance(a, float)), None)
                if stream_id is None:
                    raise ProtocolError("createStream's answer has no stream id")
                self._stream_id = int(stream_id)
                self._command("publish", _TX_PUBLISH, None, self.target.stream, "live", stream=True)
        elif name == "onStatus":
            code = str(info.get("code", ""))
            if str(info.get("level", "")) == "error" or code.endswith(
                ("Failed", "BadName", "Rejected", "Unpublish.Success", "Closed")
            ):
                raise PublishRefused(f"the server ended the stream: {_describe(info)}")
            if code == "NetStream.Publish.Start" and self.state == "publish":
                self.state = "live"
        elif name == "close":
            raise PublishRefused("the server closed the connection (command 'close')")

    def _command(
        self, name: str, tx: int, *args: amf0.Value, stream: bool = False, lane: str = URGENT
    ) -> None:
        payload = amf0.encode(name, float(tx), *args)
        stream_id = self._stream_id if stream else 0
        self._send(COMMAND_CSID, Message(COMMAND_AMF0, stream_id, 0, payload), lane)

    def _send(self, csid: int, message: Message, lane: str = URGENT) -> None:
        for chunk in self._writer.chunks(csid, message):
            self.outbox.put(lane, chunk)

    def _acknowledge(self) -> None:
        received = self._reader.bytes_received
        if self._ack_window and received - self._acked >= self._ack_window:
            self._acked = received
            sequence = struct.pack(">I", received & 0xFFFFFFFF)
            self._send(CONTROL_CSID, Message(ACKNOWLEDGEMENT, 0, 0, sequence))


def _is_sequence_header(tag: FlvTag) -> bool:
    """An AVC/HEVC or AAC "sequence header" tag: codec configuration, not a frame."""
    data = tag.data
    if len(data) < 2 or data[1] != 0:
        return False
    if tag.type == VIDEO_TAG:
        return data[0] & 0x0F in (7, 12)
    return data[0] >> 4 == 10


def _info(args: list[amf0.Value]) -> dict[str, amf0.Value]:
    """The information object of a command (the last table among its arguments)."""
    for value in reversed(args):
        if isinstance(value, dict):
            return value
    return {}


def _describe(info: dict[str, amf0.Value]) -> str:
    code = str(info.get("code", "")) or "no status code"
    description = str(info.get("description", "")).strip()
    return f"{code} ({description})" if description else code
