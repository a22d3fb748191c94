"""A local destination's writer: a recording file or the HLS mirror, muxed by PyAV.

Local files never block on a network, so PyAV writes them directly, packet by packet,
on the destination's writer thread (muxing releases the GIL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import av
from av.container import OutputContainer
from av.stream import Stream

from relays.memory_mux import Rebase
from relays.packet import EncodedPacket, PacketKind

if TYPE_CHECKING:
    from relays.output import Output


class LocalWriter:
    """One open local output; see :class:`relays.writer.Writer`."""

    def __init__(self, output: Output, templates: tuple[Stream, Stream]) -> None:
        self._container: OutputContainer = av.open(
            output.target, "w", format=output.format, options=dict(output.options)
        )
        video_t, audio_t = templates
        container = self._container
        self._video = None if output.audio_only else container.add_stream_from_template(video_t)
        self._audio = self._container.add_stream_from_template(audio_t)
        self._rebase = Rebase()
        self._sent_bytes = 0
        self._sent_seconds: float | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return 0

    @property
    def sent_bytes(self) -> int:
        return self._sent_bytes

    @property
    def sent_seconds(self) -> float | None:
        return self._sent_seconds

    def accepts(self) -> tuple[PacketKind, ...]:
        return ("video", "audio")

    def write(self, packet: EncodedPacket) -> None:
        stream = self._video if packet.kind == "video" else self._audio
        out = None if stream is None else self._rebase.packet(packet, stream)
        if out is None:
            return
        self._container.mux(out)
        self._sent_bytes += packet.size
        self._sent_seconds = packet.seconds

    def service(self, timeout: float) -> None:
        return None

    def finish(self, deadline: float) -> None:
        self.abort()

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()
