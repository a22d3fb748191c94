"""The studio's contribution to a cloud edge: the program as FLV in one endless HTTP PUT.

Sans-I/O, driven by :class:`relays.publisher.Publisher` like the RTMP and Icecast
sessions, so the contribution has a destination's queue, drop policy and backoff. The
studio dials out (NAT/CGNAT and port-443 friendly): ``PUT /contribute HTTP/1.1`` with
``Authorization: Bearer <key>``, ``Transfer-Encoding: chunked`` and ``Expect:
100-continue``; the edge checks the key before it reads any body and answers ``100
Continue`` (go) or a final status (``401``: wrong key, ``409``: another studio is on).
The body is an FLV stream (header, ``onMetaData``, the codec configuration, then one
tag per packet) with the program's own timestamps, so an edge sees one timeline across
reconnects. Each packet's tag is the one every RTMP destination shares
(:meth:`relays.packet.EncodedPacket.flv_tag`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from av.stream import Stream

from relays.errors import ProtocolError, PublishRefused
from relays.memory_mux import MemoryMuxer
from relays.outbox import Outbox
from relays.packet import EncodedPacket
from relays.rtmp.flv import FlvTag

BODY: Final = "body"
_MAX_HEAD: Final = 16 * 1024
_HINTS: Final = {
    401: "the edge refused the contribution key: check [[edges]] key against the edge's key",
    404: "check the path of the edge's url (the route is /contribute)",
    409: "another studio is contributing to this edge now",
}


@dataclass(frozen=True, slots=True)
class ContributionTarget:
    """Where the contribution goes; the key never in ``repr``."""

    host: str
    port: int
    path: str
    tls: bool
    key: str = field(repr=False)


def contribution_target(url: str, key: str) -> ContributionTarget:
    """Read ``http(s)://host[:port]/path``.

    Raises:
        ValueError: Not an http(s) URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the edge's url must be http(s)://host[:port]/path")
    tls = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ContributionTarget(parts.hostname, parts.port or (443 if tls else 80), path, tls, key)


ContributionState: TypeAlias = Literal["request", "live", "closed"]


class ContributionSession:
    """One contribution connection's protocol state: see the module docstring."""

    def __init__(self, target: ContributionTarget, *, studio: str) -> None:
        self.target = target
        self.state: ContributionState = "request"
        self.outbox = Outbox(BODY)
        self._studio = studio
        self._answer = bytearray()

    def initiate(self) -> None:
        """Queue the request head."""
        t = self.target
        host = f"[{t.host}]" if ":" in t.host else t.host
        name = "".join(c if " " <= c <= "~" else "?" for c in self._studio)[:100]
        head = (
            f"PUT {t.path} HTTP/1.1\r\nHost: {host}:{t.port}\r\n"
            f"Authorization: Bearer {t.key}\r\nUser-Agent: jalsa\r\n"
            f"Content-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n"
            f"Expect: 100-continue\r\nJalsa-Studio: {name}\r\n\r\n"
        )
        self.outbox.put(BODY, head.encode("latin-1"))

    def data_to_send(self, limit: int | None = None) -> bytes:
        return self.outbox.take(limit)

    @staticmethod
    def lane_of(kind: str) -> str:
        return BODY

    @property
    def live(self) -> bool:
        return self.state == "live"

    def receive_data(self, data: bytes) -> None:
        """The edge's answer: ``100 Continue`` makes the session live; any other status
        (before or after) ends it.

        Raises:
            PublishRefused: The edge said no, or ended the contribution.
            ProtocolError: The answer is not HTTP.
        """
        self._answer += data
        if len(self._answer) > _MAX_HEAD:
            raise ProtocolError("the edge's answer is too long")
        end = self._answer.find(b"\r\n\r\n")
        if end < 0:
            if not self._answer.startswith(b"HTTP/"[: len(self._answer)]):
                raise ProtocolError("the edge did not answer as HTTP: is the url a jalsa edge?")
            return
        status = bytes(self._answer[:end]).decode("latin-1").split("\r\n", 1)[0]
        del self._answer[: end + 4]
        words = status.split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
            raise ProtocolError(f"the edge did not answer as HTTP ({status[:60]!r})")
        code = int(words[1])
        if code == 100 and self.state == "request":
            self.state = "live"
            return
        hint = _HINTS.get(code, "")
        said = status[9:80] + (f": {hint}" if hint else "")
        raise PublishRefused(f"the edge ended the contribution: {said}")

    def send_media(self, data: bytes) -> None:
        """Queue body bytes as one chunk."""
        if not self.live:
            raise RuntimeError("the edge has not accepted the contribution yet")
        if data:
            self.outbox.put(BODY, b"%x\r\n%s\r\n" % (len(data), data))

    def finish(self) -> None:
        if self.live:
            self.outbox.put(BODY, b"0\r\n\r\n")
        self.state = "closed"


def tag_bytes(tag: FlvTag) -> bytes:
    """``tag`` as it stands in an FLV file: the 11-byte header, the body, PreviousTagSize."""
    size, ts = len(tag.data), tag.timestamp & 0xFFFFFFFF
    header = struct.pack(">I", size)[1:] + struct.pack(">I", ts)[1:] + bytes((ts >> 24, 0, 0, 0))
    return bytes((tag.type,)) + header + tag.data + struct.pack(">I", 11 + size)


class FlvBodyFraming:
    """A contribution's FLV: PyAV's header for the program's streams, then each packet's
    shared tag at the program's own timestamp."""

    def __init__(self, session: ContributionSession, templates: tuple[Stream, Stream]) -> None:
        self._session = session
        self._templates = templates

    def start(self) -> None:
        muxer = MemoryMuxer("flv", self._templates, audio_only=False)
        self._session.send_media(muxer.header())
        muxer.close()

    def write(self, packet: EncodedPacket) -> None:
        tag = packet.flv_tag()
        # FLV has no negative times: the encoder's first AAC frame (its priming, -21 ms)
        # would wrap to 49 days and wreck the edge's timeline.
        if tag.timestamp >= 0:
            self._session.send_media(tag_bytes(tag))

    def end(self) -> None:
        return None

    def abort(self) -> None:
        return None
