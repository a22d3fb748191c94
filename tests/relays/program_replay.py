"""A cheap stand-in for the program: encoded once, replayed in real time, forever.

Encoding 720p live would take a core of the test machine; instead a few GOPs of
``testsrc2`` + a tone are encoded once with the program's own encoder and replayed by a
thread at wall-clock pace, with timestamps that keep counting, into a :class:`Relay`
(or any sink). Each GOP starts with an IDR frame, so the loop seam is decodable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import av
import numpy as np

from orchestrator.event.program_spec import ProgramSpec
from orchestrator.program.encoder import ProgramEncoder
from relays.packet import EncodedPacket


def encode_loop(spec: ProgramSpec, gops: int = 2) -> tuple[ProgramEncoder, list[EncodedPacket]]:
    """``gops`` GOPs of moving test pattern with a tone, and the encoder (its streams
    are the templates destinations copy)."""
    encoder = ProgramEncoder(spec)
    frames = spec.fps * spec.keyframe_seconds * gops
    samples_per_frame = 48000 // spec.fps
    packets: list[EncodedPacket] = []
    source = av.open(f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}", format="lavfi")
    try:
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            picture = frame.reformat(format="yuv420p")
            packets += encoder.encode_video(picture, index, index % (frames // gops) == 0)
            t = (np.arange(samples_per_frame) + index * samples_per_frame) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            packets += encoder.encode_audio(np.stack([tone, tone]))
    finally:
        source.close()
    # The encoder is not flushed: x264 with zerolatency has emitted every frame already.
    return encoder, packets


class Replay:
    """Replays ``packets`` in a loop at wall-clock pace into ``sink`` from its own thread."""

    def __init__(
        self, packets: list[EncodedPacket], sink: Callable[[list[EncodedPacket]], None]
    ) -> None:
        video = [p for p in packets if p.kind == "video"]
        audio = [p for p in packets if p.kind == "audio"]
        self._packets = sorted(packets, key=lambda p: p.seconds)
        # The loop's length per kind, in its own time base, so timestamps keep counting.
        self._period = {
            "video": (video[-1].dts - video[0].dts) + (video[1].dts - video[0].dts),
            "audio": (audio[-1].dts - audio[0].dts) + (audio[1].dts - audio[0].dts),
        }
        self._seconds = float(self._period["video"] * video[0].time_base)
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self.sent_seconds = 0.0

    def start(self) -> Replay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> Replay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        started = time.monotonic()
        loop = 0
        while not self._stop.is_set():
            for packet in self._packets:
                shift = loop * self._period[packet.kind]
                at = loop * self._seconds + packet.seconds
                wait = started + at - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                self._sink([replace(packet, pts=packet.pts + shift, dts=packet.dts + shift)])
                self.sent_seconds = at
            loop += 1


def tiny_spec(**changes: object) -> ProgramSpec:
    base = ProgramSpec(
        width=320,
        height=180,
        fps=30,
        video_bitrate_kbps=600,
        audio_bitrate_kbps=128,
        keyframe_seconds=1,
        preset="ultrafast",
    )
    return replace(base, **changes)  # type: ignore[arg-type]
