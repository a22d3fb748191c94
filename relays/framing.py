"""What one network connection sends: the program's packets in its session's format.

A :class:`Framing` is made per connection, once the server has accepted the stream,
and turns packets into what its session queues for the wire:

- :class:`FlvFraming` (RTMP): the stream's start (FLV header, ``onMetaData``, codec
  configuration) from PyAV, then each packet's shared FLV tag
  (:meth:`~relays.packet.EncodedPacket.flv_tag`) on the connection's own timeline.
  Nothing is muxed per connection: the tags are built once for every destination.
- :class:`AdtsFraming` (Icecast): PyAV muxes ADTS into memory.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from av.stream import Stream

from relays.icecast import IcecastSourceSession
from relays.memory_mux import MemoryMuxer
from relays.packet import EncodedPacket
from relays.rtmp.flv import VIDEO_TAG, FlvSplitter, FlvTag
from relays.rtmp.flv_tags import AVC_END_OF_SEQUENCE, FlvTimeline
from relays.rtmp.session import RtmpPublishSession


class Framing(Protocol):
    """One connection's media, on the writer thread."""

    def start(self) -> None:
        """Queue the stream's start (headers)."""
        ...

    def write(self, packet: EncodedPacket) -> None:
        """Queue ``packet`` (or skip it, if it comes before the connection's start)."""
        ...

    def end(self) -> None:
        """Queue the stream's end (trailer)."""
        ...

    def abort(self) -> None:
        """Let go of what the framing holds, without a trailer."""
        ...


class FlvFraming:
    """An RTMP connection's FLV; see the module docstring."""

    def __init__(
        self, session: RtmpPublishSession, templates: tuple[Stream, Stream], *, audio_only: bool
    ) -> None:
        self._session = session
        self._templates = templates
        self._audio_only = audio_only
        self._timeline = FlvTimeline()

    def start(self) -> None:
        for tag in start_tags(self._templates, audio_only=self._audio_only):
            self._session.send_tag(tag)

    def write(self, packet: EncodedPacket) -> None:
        tag = self._timeline.shift(packet.flv_tag())
        if tag is not None:
            self._session.send_tag(tag)

    def end(self) -> None:
        last = self._timeline.last_video
        if last is not None:
            self._session.send_tag(FlvTag(VIDEO_TAG, last, AVC_END_OF_SEQUENCE))

    def abort(self) -> None:
        return None


def start_tags(templates: tuple[Stream, Stream], *, audio_only: bool) -> list[FlvTag]:
    """The tags before any media: ``onMetaData`` and the codec configuration, as
    PyAV's FLV muxer writes them for the encoder's streams."""
    muxer = MemoryMuxer("flv", templates, audio_only=audio_only)
    header = muxer.header()
    muxer.close()
    return FlvSplitter().feed(header)


class AdtsFraming:
    """An Icecast connection's ADTS; see the module docstring."""

    def __init__(self, session: IcecastSourceSession, templates: tuple[Stream, Stream]) -> None:
        self._session = session
        self._muxer = MemoryMuxer("adts", templates, audio_only=True)

    def start(self) -> None:
        self._session.send_media(self._muxer.header())

    def write(self, packet: EncodedPacket) -> None:
        data = self._muxer.mux(packet)
        if data:
            self._session.send_media(data)

    def end(self) -> None:
        self._session.send_media(self._muxer.close())

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._muxer.close()
