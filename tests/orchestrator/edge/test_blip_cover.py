"""The blip cover with its real thread and a real slate encode: a stall puts the slate
into the relay, the studio's next live keyframe ends it, on one increasing timeline."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import pytest
from waiting import wait_for

from orchestrator.edge.blip_cover import BlipCover
from orchestrator.edge.slate_loop import StudioFormat
from orchestrator.edge.uplink_outages import UplinkOutages
from orchestrator.event import ProgramSpec
from orchestrator.program.encoder import ProgramEncoder
from relays.packet import EncodedPacket

pytestmark = pytest.mark.media
MS = Fraction(1, 1000)


class Sink:
    """Stands for the relay's publish: what the destinations would be offered."""

    def __init__(self) -> None:
        self.packets: list[EncodedPacket] = []
        self._lock = threading.Lock()

    def publish(self, packets: list[EncodedPacket]) -> None:
        with self._lock:
            self.packets += packets

    def slate(self) -> list[EncodedPacket]:
        with self._lock:
            return [p for p in self.packets if p.data != b"studio"]

    def slate_frames(self) -> int:
        return sum(p.kind == "video" for p in self.slate())


def _video(ms: int, keyframe: bool = False) -> EncodedPacket:
    return EncodedPacket("video", b"studio", ms, ms, MS, keyframe)


def _studio_format() -> StudioFormat:
    encoder = ProgramEncoder(ProgramSpec(width=320, height=180, fps=15, preset="ultrafast"))
    extradata = bytes(encoder.video_stream.codec_context.extradata or b"")
    encoder.close()
    return StudioFormat(
        "h264", "yuv420p", 320, 180, 15, 3_000_000, extradata, "aac", 48_000, 2, 128_000
    )


def test_a_stall_is_covered_and_the_studio_comes_back() -> None:
    studio = _studio_format()
    sink, outages = Sink(), UplinkOutages("edge", (), None)
    cover = BlipCover(sink.publish, studio, {"video": MS, "audio": MS}, outages, stall_seconds=0.3)
    cover.start()
    try:
        cover.studio([_video(0, keyframe=True), _video(67)])
        wait_for(lambda: outages.snapshot().slate_on, 30, "the slate on")
        wait_for(lambda: len(sink.slate()) > 40, 10, "slate packets paced in")
        cover.studio([_video(200)])  # not a keyframe: the slate stays on
        assert outages.snapshot().slate_on
        later = round((time.monotonic() + 60) * 1000)  # surely live
        cover.studio([_video(later, keyframe=True), _video(later + 67)])
        assert not outages.snapshot().slate_on and outages.snapshot().blips == 1
    finally:
        cover.close(5.0)
    for kind in ("video", "audio"):
        dts = [p.dts for p in sink.packets if p.kind == kind]
        assert dts == sorted(set(dts)), kind  # strictly increasing
    studio_back = [p for p in sink.packets if p.data == b"studio"][-2:]
    slate_end = max(p.dts for p in sink.slate() if p.kind == "video")
    assert slate_end < studio_back[0].dts <= slate_end + 100  # continuous, no jump
    assert sink.packets[2].keyframe  # the slate starts at its keyframe


def test_a_stray_packet_in_the_stall_does_not_let_the_backlog_end_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One packet that gets through in the middle of a stall, then silence longer than
    the catch-up allowance: when the link returns, the studio's backlog (a keyframe from
    before the stall's end) still does not end the slate; its live keyframe does. (The
    edge's blip test caught this: the destinations ended up 1.5-3.7 s ahead of the wall.)"""
    monkeypatch.setattr("orchestrator.edge.blip_cover.CATCH_UP_SECONDS", 1.0)
    sink, outages = Sink(), UplinkOutages("edge", (), None)
    cover = BlipCover(
        sink.publish, _studio_format(), {"video": MS, "audio": MS}, outages, stall_seconds=0.3
    )
    cover.start()
    try:
        cover.studio([_video(0, keyframe=True), _video(67)])
        wait_for(lambda: outages.snapshot().slate_on, 30, "the slate on")
        cover.studio([_video(133)])  # a stray packet through the stalled link
        covered = sink.slate_frames()
        wait_for(lambda: sink.slate_frames() > covered + 30, 10, "the slate covering 2 s more")
        cover.studio([_video(200, keyframe=True), _video(267)])  # the backlog
        assert outages.snapshot().slate_on
        later = round((time.monotonic() + 60) * 1000)
        cover.studio([_video(later, keyframe=True)])
        assert not outages.snapshot().slate_on
    finally:
        cover.close(5.0)
