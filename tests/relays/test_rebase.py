"""A connection's timeline (memory_mux.Rebase): integer shifts equal the exact ones."""

from __future__ import annotations

from fractions import Fraction

import av
from hypothesis import given
from hypothesis import strategies as st

from relays.memory_mux import Rebase
from relays.packet import EncodedPacket

VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)


def _packet(kind: str, dts: int, time_base: Fraction) -> EncodedPacket:
    return EncodedPacket(
        kind="video" if kind == "video" else "audio",
        data=b"\x00" * 8,
        pts=dts + 3,
        dts=dts,
        time_base=time_base,
        keyframe=True,
        duration=0,
    )


def _streams() -> tuple[av.container.OutputContainer, av.stream.Stream, av.stream.Stream]:
    container = av.open("/dev/null", "w", format="flv")
    return container, container.add_stream("h264"), container.add_stream("aac", rate=48000)


@given(
    origin=st.integers(0, 10**9),
    offsets=st.lists(
        st.tuples(st.sampled_from(["video", "audio"]), st.integers(-(10**6), 10**6)), max_size=30
    ),
)
def test_shifts_and_skips_match_exact_fraction_math(
    origin: int, offsets: list[tuple[str, int]]
) -> None:
    container, video, audio = _streams()
    try:
        rebase = Rebase()
        first = rebase.packet(_packet("video", origin, VIDEO_TB), video)
        assert first is not None and first.dts == 0 and first.pts == 3
        start = origin * VIDEO_TB
        for kind, offset in offsets:
            tb = VIDEO_TB if kind == "video" else AUDIO_TB
            dts = max(0, round(start / tb) + offset)
            out = rebase.packet(_packet(kind, dts, tb), video if kind == "video" else audio)
            if dts * tb < start:
                assert out is None
            else:
                assert out is not None
                shift = round(start / tb)
                assert (out.dts, out.pts) == (dts - shift, dts + 3 - shift)
                assert out.time_base == tb
    finally:
        container.close()


def test_a_new_time_base_for_a_kind_gets_its_own_shift() -> None:
    container, video, audio = _streams()
    try:
        rebase = Rebase()
        assert rebase.packet(_packet("video", 90000, VIDEO_TB), video) is not None
        a = rebase.packet(_packet("audio", 48000 + 1024, AUDIO_TB), audio)
        assert a is not None and a.dts == 1024
        b = rebase.packet(_packet("audio", 44100 + 1024, Fraction(1, 44100)), audio)
        assert b is not None and b.dts == 1024
    finally:
        container.close()
