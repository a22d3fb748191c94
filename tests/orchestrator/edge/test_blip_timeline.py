"""The edge's output timeline across a blip (pure): continuous, strictly increasing
timestamps per kind; the studio's packets after the slate start at its next keyframe."""

from __future__ import annotations

from fractions import Fraction

from orchestrator.edge.timeline import SlatePacket, Timeline, behind_live
from relays.packet import EncodedPacket, PacketKind

MS = Fraction(1, 1000)


def studio(kind: PacketKind, ms: int, keyframe: bool = False) -> EncodedPacket:
    return EncodedPacket(kind, b"s", ms, ms, MS, keyframe)


def slate(kind: PacketKind, at: Fraction, keyframe: bool = False) -> SlatePacket:
    step = Fraction(1, 15) if kind == "video" else Fraction(1024, 48000)
    return SlatePacket(kind, b"slate", at, Fraction(0), step, keyframe)


def test_without_a_blip_the_studio_timestamps_pass_unchanged() -> None:
    timeline = Timeline({"video": MS, "audio": MS})
    sent = [timeline.studio(studio("video", t, t == 0))[0] for t in (0, 67, 133)]
    assert [p.dts for p in sent if p is not None] == [0, 67, 133]


def test_a_blip_is_one_continuous_timeline() -> None:
    timeline = Timeline({"video": MS, "audio": MS})
    for t in range(0, 2000, 67):
        timeline.studio(studio("video", t, t == 0))
    timeline.studio(studio("audio", 1990))
    origin = timeline.start_slate()
    assert origin == Fraction(2010, 1000) + Fraction(0)  # the video's last frame ended
    loop = [slate("video", Fraction(0), True), slate("audio", Fraction(0))]
    loop.append(slate("video", Fraction(1, 15)))
    out = [timeline.slate(p, Fraction(0)) for p in loop]
    out += [timeline.slate(p, Fraction(32, 15)) for p in loop]  # the second loop
    video = [p.dts for p in out if p is not None and p.kind == "video"]
    assert video == [2010, 2077, 4143, 4210]
    # The studio comes back 30 s later in its own time: everything before its
    # keyframe is dropped, the keyframe continues where the slate got to.
    assert timeline.studio(studio("video", 32000)) == (None, False)
    assert timeline.studio(studio("audio", 32000)) == (None, False)
    back, switched = timeline.studio(studio("video", 32067, keyframe=True))
    assert switched and back is not None and back.dts == 4277 and not timeline.on_slate
    # audio from just before the keyframe would go back in time: dropped
    assert timeline.studio(studio("audio", 32000))[0] is None
    after = timeline.studio(studio("audio", 32080))[0]
    assert after is not None and after.dts == 4290
    assert timeline.studio(studio("video", 32134))[0].dts == 4344  # type: ignore[union-attr]


def test_a_keyframe_that_may_not_resume_keeps_the_slate_on() -> None:
    timeline = Timeline({"video": MS, "audio": MS})
    timeline.studio(studio("video", 0, True))
    timeline.start_slate()
    assert timeline.studio(studio("video", 100, True), resume=False) == (None, False)
    assert timeline.on_slate


def test_the_studio_backlog_is_not_live() -> None:
    assert behind_live(10.0, live=12.0)
    assert not behind_live(11.8, live=12.0)
    assert not behind_live(12.5, live=12.0)
