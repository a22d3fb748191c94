"""One destination: its own bounded queue, writer thread and reconnect loop.

Isolation is the point: the program thread only ever calls :meth:`Destination.offer`,
which never blocks. Whatever the destination's link does (refuse, reset, stall), only
its own queue fills, and the queue's drop policy keeps what is left decodable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.stream import Stream

from orchestrator.destination_spec import DestinationSpec
from orchestrator.secret import redact
from relays.backoff import Backoff
from relays.output import Output, output_for
from relays.packet import EncodedPacket
from relays.packet_queue import PacketQueue

log = logging.getLogger(__name__)

QUEUE_SECONDS = 6.0
QUEUE_BYTES = 8 * 1024 * 1024
# The longest a blocked write may hang before the connection is declared dead.
IO_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class DestinationSnapshot:
    name: str
    platform: str
    kind: str
    target: str  # sanitised
    state: str  # connecting | live | retrying | stopped
    sent_bytes: int
    sent_packets: int
    reconnects: int
    dropped_video: int
    dropped_audio: int
    lag_seconds: float
    last_error: str | None


class Destination:
    def __init__(
        self,
        spec: DestinationSpec,
        templates: tuple[Stream, Stream],
        state_dir: Path,
    ) -> None:
        self.spec = spec
        self._templates = templates
        self._state_dir = state_dir
        self._queue = PacketQueue(QUEUE_SECONDS, QUEUE_BYTES, audio_only=spec.audio_only)
        self._thread = threading.Thread(target=self._run, name=f"dest-{spec.name}", daemon=True)
        self._state = "connecting"
        self._sent_bytes = 0
        self._sent_packets = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._newest = 0.0  # program time of the newest packet offered
        self._sent_at = 0.0  # program time of the newest packet written
        self._safe_target = spec.safe_url()

    # -- the program thread's side ------------------------------------------------------
    def offer(self, packets: list[EncodedPacket]) -> None:
        """Queue packets for this destination. Never blocks."""
        for packet in packets:
            if packet.kind == "video" and self.spec.audio_only:
                continue
            self._queue.put(packet)
            self._newest = packet.seconds

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop taking packets; the writer drains what is queued, then writes the trailer."""
        self._queue.close()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> DestinationSnapshot:
        stats = self._queue.stats()
        lag = max(0.0, self._newest - self._sent_at) if self._sent_packets else 0.0
        return DestinationSnapshot(
            name=self.spec.name,
            platform=self.spec.platform,
            kind=self.spec.kind,
            target=self._safe_target,
            state=self._state,
            sent_bytes=self._sent_bytes,
            sent_packets=self._sent_packets,
            reconnects=self._reconnects,
            dropped_video=stats.dropped_video,
            dropped_audio=stats.dropped_audio,
            lag_seconds=lag,
            last_error=self._last_error,
        )

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(base=1.0, cap=30.0, reset_after=60.0)
        attempt = 0
        while not self._queue.closed:
            self._state = "connecting"
            output = output_for(self.spec, self._state_dir, attempt)
            try:
                self._write(output, backoff)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                self._last_error = redact(f"{type(exc).__name__}: {exc}", _secrets(self.spec))
                log.warning("destination %s (%s): %s", self.spec.name, output, self._last_error)
            if self._queue.closed:
                break
            backoff.failed()
            self._state = "retrying"
            self._reconnects += 1
            attempt += 1
            delay = backoff.next_delay()
            deadline = time.monotonic() + delay
            while not self._queue.closed and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self._state = "stopped"

    def _write(self, output: Output, backoff: Backoff) -> None:
        # A fresh connection starts at a keyframe with fresh headers and timestamps
        # from zero: what was queued for the old connection is stale.
        self._queue.clear_to_keyframe()
        container = av.open(
            output.target,
            "w",
            format=output.format,
            options=output.options,
            timeout=IO_TIMEOUT,
        )
        try:
            video_t, audio_t = self._templates
            video = None if output.audio_only else container.add_stream_from_template(video_t)
            audio = container.add_stream_from_template(audio_t)
            origin: Fraction | None = None
            while True:
                packet = self._queue.get(timeout=0.5)
                if packet is None:
                    if self._queue.closed:
                        return
                    continue
                if origin is None:
                    origin = packet.dts * packet.time_base
                elif packet.dts * packet.time_base < origin:
                    continue  # audio from before this connection's first keyframe
                stream = video if packet.kind == "video" else audio
                if stream is None:
                    continue
                container.mux(_to_av(packet, stream, origin))
                if self._state != "live":
                    self._state = "live"
                    self._last_error = None
                    backoff.succeeded(time.monotonic())
                self._sent_bytes += packet.size
                self._sent_packets += 1
                self._sent_at = packet.seconds
                backoff.healthy(time.monotonic())
        finally:
            container.close()


def _to_av(packet: EncodedPacket, stream: Stream, origin: Fraction) -> av.Packet[Stream]:
    """A new av.Packet (never shared: mux rewrites it) with this connection's timestamps."""
    shift = round(origin / packet.time_base)
    out = av.Packet(packet.data)
    out.pts = packet.pts - shift
    out.dts = packet.dts - shift
    out.time_base = packet.time_base
    out.is_keyframe = packet.keyframe
    if packet.duration:
        out.duration = packet.duration
    out.stream = stream
    return out


def _secrets(spec: DestinationSpec) -> tuple[str, ...]:
    return (spec.key.reveal(),) if spec.key is not None else ()
