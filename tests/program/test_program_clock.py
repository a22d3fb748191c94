"""The program's promise: a frame every tick, continuous timestamps, a keyframe at cuts."""

from __future__ import annotations

import itertools
import threading

from waiting import wait_for

from orchestrator.event import ProgramSpec
from orchestrator.ingest.test_pattern import TestPattern
from orchestrator.program.graphics import black, slate
from orchestrator.program.program import Feed, Program
from relays.packet import EncodedPacket


class Collect:
    def __init__(self) -> None:
        self.packets: list[EncodedPacket] = []
        self.lock = threading.Lock()

    def __call__(self, packets: list[EncodedPacket]) -> None:
        with self.lock:
            self.packets.extend(packets)


def test_timestamps_are_continuous_across_cuts_and_cuts_are_keyframes() -> None:
    spec = ProgramSpec(width=320, height=180, fps=25, keyframe_seconds=2, preset="ultrafast")
    sink = Collect()
    program = Program(spec, sink)
    pattern = TestPattern("A", width=320, height=180)

    def encoded(frames: int) -> None:
        """Until ``frames`` more pictures are encoded (about 0.4 s of program at 25 fps)."""
        with sink.lock:
            before = sum(p.kind == "video" for p in sink.packets)

        def more() -> bool:
            with sink.lock:
                return sum(p.kind == "video" for p in sink.packets) >= before + frames

        wait_for(more, 10, f"{frames} more frames")

    program.start()
    try:
        encoded(10)
        program.cut(Feed("a", source=pattern))
        encoded(10)
        program.cut(Feed("slate", still=slate(320, 180, "Between", ())))
        encoded(10)
        program.cut(Feed("b", still=black(320, 180)))
        encoded(8)
    finally:
        program.stop()
    video = [p for p in sink.packets if p.kind == "video"]
    audio = [p for p in sink.packets if p.kind == "audio"]
    assert [p.pts for p in video] == list(range(len(video)))
    assert len(video) >= 25  # ~1.5 s at 25 fps, flushed at stop
    keyframes = [p.pts for p in video if p.keyframe]
    assert keyframes[0] == 0 and len(keyframes) >= 4  # start + three cuts
    # Audio: 1024-sample AAC frames back to back (the first is the encoder's priming).
    steps = {b.pts - a.pts for a, b in itertools.pairwise(audio)}
    assert steps == {1024}
    audio_end = (audio[-1].pts + 1024) / 48000
    assert abs(audio_end - len(video) / 25) < 0.1
    assert program.snapshot().up is False


def test_a_keyframe_on_request_between_the_gops() -> None:
    """request_keyframe (an edge contribution that connects): the next frame is one,
    not the GOP's next (50 frames away at 25 fps and 2 s)."""
    spec = ProgramSpec(width=320, height=180, fps=25, keyframe_seconds=2, preset="ultrafast")
    sink = Collect()
    program = Program(spec, sink)

    def video() -> list[EncodedPacket]:
        with sink.lock:
            return [p for p in sink.packets if p.kind == "video"]

    program.start()
    try:
        wait_for(lambda: len(video()) >= 10, 10, "10 frames")
        asked = len(video())
        program.request_keyframe()
        wait_for(lambda: len(video()) >= asked + 5, 10, "5 more frames")
    finally:
        program.stop()
    keyframes = [p.pts for p in video() if p.keyframe]
    assert keyframes[0] == 0 and len(keyframes) >= 2, keyframes
    assert asked <= keyframes[1] <= asked + 3, (asked, keyframes)  # (the frame in hand)
