"""The drop policy: unit tests for each rule, property tests against a reference model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.gop_buffer import GopBuffer
from relays.packet import EncodedPacket

VIDEO_TB = Fraction(1, 90_000)
AUDIO_TB = Fraction(1, 48_000)
_serial = itertools.count()


def video(dts_frames: int, *, key: bool = False, size: int = 100) -> EncodedPacket:
    """A 30 fps video packet; ``pts`` carries a unique serial to tell packets apart."""
    return EncodedPacket("video", bytes(size), next(_serial), dts_frames * 3000, VIDEO_TB, key)


def audio(dts_frames: int, *, size: int = 10) -> EncodedPacket:
    """A 1024-sample AAC packet at 48 kHz."""
    return EncodedPacket("audio", bytes(size), next(_serial), dts_frames * 1024, AUDIO_TB, True)


def awaiting_keyframe(buf: GopBuffer) -> bool:
    """Whether the buffer drops incoming non-keyframe video now (its private gate)."""
    return buf._awaiting_keyframe


def drain(buf: GopBuffer) -> list[EncodedPacket]:
    out = []
    while (pkt := buf.pop()) is not None:
        out.append(pkt)
    return out


# --- unit tests -------------------------------------------------------------------


def test_packet_seconds_and_size() -> None:
    pkt = EncodedPacket("video", b"abc", 0, 45_000, VIDEO_TB, True)
    assert pkt.seconds == 0.5
    assert pkt.size == 3


@pytest.mark.parametrize(("max_seconds", "max_bytes"), [(0, 10), (-1, 10), (1, 0), (1, -5)])
def test_rejects_non_positive_bounds(max_seconds: float, max_bytes: int) -> None:
    with pytest.raises(ValueError):
        GopBuffer(max_seconds, max_bytes)


def test_fifo_in_push_order_across_kinds() -> None:
    buf = GopBuffer(10, 10_000)
    pkts = [video(0, key=True), audio(0), video(1), audio(1), audio(2), video(2)]
    for p in pkts:
        buf.push(p)
    assert len(buf) == 6
    assert buf.queued_bytes == 330
    assert drain(buf) == pkts
    assert buf.pop() is None
    assert buf.queued_bytes == 0
    assert buf.oldest_seconds is None
    assert buf.span_seconds == 0.0


def test_fresh_buffer_starts_at_first_keyframe() -> None:
    buf = GopBuffer(10, 10_000)
    assert awaiting_keyframe(buf)
    buf.push(audio(0))
    buf.push(video(0))
    buf.push(audio(1))
    assert len(buf) == 0
    assert (buf.dropped_audio, buf.dropped_video, buf.dropped_bytes) == (2, 1, 120)
    key = video(1, key=True)
    buf.push(key)
    buf.push(audio(2))
    assert not awaiting_keyframe(buf)
    assert drain(buf)[0] is key


def test_bytes_overflow_drops_oldest_gop_and_keeps_audio() -> None:
    buf = GopBuffer(100, 1000)
    gop1 = [video(0, key=True), video(1), video(2)]
    gop2 = [video(3, key=True), video(4)]
    auds = [audio(i) for i in range(5)]
    for p in [gop1[0], auds[0], gop1[1], auds[1], gop1[2], auds[2], gop2[0], auds[3], gop2[1]]:
        buf.push(p)
    assert buf.queued_bytes == 540
    buf.push(auds[4])
    big = video(5, size=500)  # 540 + 10 + 500 > 1000: GOP 1 must go
    buf.push(big)
    assert buf.dropped_video == 3
    assert buf.dropped_audio == 0
    assert buf.queued_bytes <= 1000
    assert drain(buf) == [auds[0], auds[1], auds[2], gop2[0], auds[3], gop2[1], auds[4], big]


def test_span_overflow_drops_video_before_audio() -> None:
    # Audio queued before the oldest video keeps the span wide, so every GOP goes first.
    buf = GopBuffer(1.0, 1_000_000)
    buf.push(video(0, key=True))
    for i in range(1, 25):
        buf.push(video(i, key=i % 10 == 0))
        buf.push(audio(i))
    assert buf.span_seconds <= 1.0
    buf.push(video(40))  # 1.33 s, while the oldest audio is at 0.02 s
    assert (buf.dropped_video, buf.dropped_audio) == (26, 0)
    assert awaiting_keyframe(buf)
    assert buf.span_seconds <= 1.0
    assert [p.kind for p in drain(buf)] == ["audio"] * 24


def test_no_later_keyframe_drops_all_video_and_awaits_keyframe() -> None:
    buf = GopBuffer(100, 500)
    buf.push(video(0, key=True, size=200))
    buf.push(audio(0))
    buf.push(video(1, size=200))
    buf.push(video(2, size=200))  # 610 bytes: the only GOP (being appended) goes
    assert buf.dropped_video == 3
    assert awaiting_keyframe(buf)
    assert buf.queued_bytes == 10
    buf.push(video(3))  # rest of the dropped GOP: not decodable, dropped
    buf.push(audio(1))  # audio keeps flowing while awaiting a keyframe
    assert buf.dropped_video == 4
    assert buf.dropped_audio == 0
    key = video(4, key=True)
    buf.push(key)
    assert not awaiting_keyframe(buf)
    assert [p.kind for p in drain(buf)] == ["audio", "audio", "video"]


def test_audio_only_left_drops_oldest_audio() -> None:
    buf = GopBuffer(100, 35)
    buf.push(video(0, key=True, size=30))
    buf.push(audio(0))  # 40 > 35: the video goes, the audio stays
    assert (buf.dropped_video, buf.dropped_audio) == (1, 0)
    a1, a2, a3 = audio(1), audio(2), audio(3)
    for a in (a1, a2, a3):
        buf.push(a)
    assert buf.dropped_audio == 1
    assert drain(buf) == [a1, a2, a3]


def test_partly_popped_gop_drops_only_its_rest() -> None:
    buf = GopBuffer(100, 400)
    k1, p1, p2 = video(0, key=True), video(1), video(2)
    k2 = video(3, key=True)
    for p in (k1, p1, p2, k2):
        buf.push(p)
    assert buf.pop() is k1
    buf.push(video(4, size=250))  # 550 bytes: the rest of GOP 1 is the oldest
    assert buf.dropped_video == 2
    out = drain(buf)
    assert out[0] is k2
    assert len(out) == 2


def test_oversized_packet_is_rejected_and_queue_kept() -> None:
    buf = GopBuffer(100, 150)
    k, a = video(0, key=True), audio(0)
    buf.push(k)
    buf.push(a)
    buf.push(video(1, size=151))
    assert (buf.dropped_video, buf.dropped_bytes) == (1, 151)
    assert awaiting_keyframe(buf)  # the rest of that GOP would not decode
    buf.push(video(2))
    buf.push(audio(1, size=151))
    assert (buf.dropped_video, buf.dropped_audio) == (2, 1)
    assert drain(buf) == [k, a]


def test_oversized_keyframe_keeps_audio_gated_on_a_fresh_stream() -> None:
    buf = GopBuffer(100, 150)
    buf.push(video(0, key=True, size=200))
    buf.push(audio(0))
    assert len(buf) == 0
    assert awaiting_keyframe(buf)


def test_clear_to_keyframe_drops_all_and_gates_audio() -> None:
    buf = GopBuffer(100, 10_000)
    for p in (video(0, key=True), audio(0), video(1), audio(1)):
        buf.push(p)
    buf.clear_to_keyframe()
    assert len(buf) == 0
    assert buf.queued_bytes == 0
    assert (buf.dropped_video, buf.dropped_audio, buf.dropped_bytes) == (2, 2, 220)
    buf.push(audio(2))
    buf.push(video(2))
    assert len(buf) == 0
    key = video(3, key=True)
    buf.push(key)
    buf.push(audio(3))
    assert [p.kind for p in drain(buf)] == ["video", "audio"]


def test_audio_only_buffer_never_gates_and_drops_video() -> None:
    buf = GopBuffer(100, 10_000, audio_only=True)
    assert not awaiting_keyframe(buf)
    a = audio(0)
    buf.push(a)
    buf.push(video(0, key=True))
    assert buf.dropped_video == 1
    buf.clear_to_keyframe()
    assert buf.dropped_audio == 1
    a2 = audio(1)
    buf.push(a2)
    assert drain(buf) == [a2]


def test_span_and_oldest_seconds() -> None:
    buf = GopBuffer(100, 10_000)
    buf.push(video(30, key=True))  # 1.0 s
    buf.push(audio(45))  # 0.96 s
    buf.push(video(60))  # 2.0 s
    assert buf.oldest_seconds == pytest.approx(0.96)
    assert buf.span_seconds == pytest.approx(1.04)


# --- property tests against a reference model --------------------------------------


@dataclass
class ReferenceBuffer:
    """The policy as the spec states it, on one plain list with full scans."""

    max_seconds: float
    max_bytes: int
    queue: list[EncodedPacket] = field(default_factory=list)
    awaiting: bool = True
    gate_audio: bool = True
    dropped: list[EncodedPacket] = field(default_factory=list)

    def span(self) -> float:
        if not self.queue:
            return 0.0
        secs = [p.seconds for p in self.queue]
        return max(0.0, max(secs) - min(secs))

    def over(self) -> bool:
        return sum(p.size for p in self.queue) > self.max_bytes or self.span() > self.max_seconds

    def push(self, p: EncodedPacket) -> None:
        if p.kind == "video" and self.awaiting and not p.keyframe:
            self.dropped.append(p)
            return
        if p.kind == "audio" and self.gate_audio:
            self.dropped.append(p)
            return
        if p.size > self.max_bytes:
            self.dropped.append(p)
            self.awaiting = self.awaiting or p.kind == "video"
            return
        if p.kind == "video" and self.awaiting:
            self.awaiting = self.gate_audio = False
        self.queue.append(p)
        while self.over():
            videos = [q for q in self.queue if q.kind == "video"]
            if videos:
                gop = [videos[0]]
                gop += list(itertools.takewhile(lambda q: not q.keyframe, videos[1:]))
                self.queue = [q for q in self.queue if all(q is not g for g in gop)]
                self.dropped += gop
                if len(gop) == len(videos):
                    self.awaiting = True
            else:
                self.dropped.append(self.queue.pop(0))

    def pop(self, kind: str | None = None) -> EncodedPacket | None:
        for i, p in enumerate(self.queue):
            if kind is None or p.kind == kind:
                return self.queue.pop(i)
        return None

    def clear(self) -> None:
        self.dropped += self.queue
        self.queue = []
        self.awaiting = self.gate_audio = True


Op = (
    tuple[Literal["push"], EncodedPacket]
    | tuple[Literal["pop"], None]
    | tuple[Literal["pop"], Literal["video", "audio"]]
    | tuple[Literal["clear"], None]
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[float, int, list[Op]]:
    """Random bounds and a random interleaving of a program's packets with pops/clears.

    Video comes in GOPs of random length; per kind, dts never decreases (steps may be 0
    and video and audio drift apart); sizes sometimes exceed the byte bound.
    """
    max_seconds = draw(st.floats(0.01, 3.0))
    max_bytes = draw(st.integers(1, 6000))
    kinds = draw(
        st.lists(
            st.sampled_from(["v", "v", "v", "a", "a", "pop", "pop", "popv", "popa", "clear"]),
            max_size=250,
        )
    )
    ops: list[Op] = []
    v_dts = a_dts = 0
    gop_left = 0
    for kind in kinds:
        if kind == "v":
            key = gop_left == 0
            if key:
                gop_left = draw(st.integers(1, 12))
            gop_left -= 1
            v_dts += draw(st.integers(0, 9000))
            size = draw(st.integers(1, 3000))
            ops.append(
                ("push", EncodedPacket("video", bytes(size), len(ops), v_dts, VIDEO_TB, key))
            )
        elif kind == "a":
            a_dts += draw(st.integers(0, 3000))
            size = draw(st.integers(1, 400))
            ops.append(
                ("push", EncodedPacket("audio", bytes(size), len(ops), a_dts, AUDIO_TB, True))
            )
        elif kind == "pop":
            ops.append(("pop", None))
        elif kind == "popv":
            ops.append(("pop", "video"))
        elif kind == "popa":
            ops.append(("pop", "audio"))
        else:
            ops.append(("clear", None))
    return max_seconds, max_bytes, ops


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_matches_reference_model_and_keeps_invariants(
    scenario: tuple[float, int, list[Op]],
) -> None:
    max_seconds, max_bytes, ops = scenario
    buf = GopBuffer(max_seconds, max_bytes)
    ref = ReferenceBuffer(max_seconds, max_bytes)
    pushed: list[EncodedPacket] = []
    popped: list[EncodedPacket] = []
    video_index: dict[int, int] = {}  # serial (pts) -> index among pushed video

    for op, pkt in ops:
        dropped_audio_before = buf.dropped_audio
        if op == "push":
            assert isinstance(pkt, EncodedPacket)
            if pkt.kind == "video":
                video_index[pkt.pts] = len(video_index)
            pushed.append(pkt)
            buf.push(pkt)
            ref.push(pkt)
            # Bounds hold after every push, without exception.
            assert buf.queued_bytes <= max_bytes
            assert buf.span_seconds <= max_seconds
        elif op == "pop":
            kind = pkt if isinstance(pkt, str) else None
            got = buf.pop(kind)
            assert got is ref.pop(kind)
            if kind is not None:
                assert got is None or got.kind == kind
                assert buf.count(kind) == sum(p.kind == kind for p in ref.queue)
            if got is not None:
                popped.append(got)
        else:
            buf.clear_to_keyframe()
            ref.clear()
            assert len(buf) == 0

        # Same decisions as the literal statement of the policy.
        assert len(buf) == len(ref.queue)
        assert buf.queued_bytes == sum(p.size for p in ref.queue)
        assert buf.span_seconds == pytest.approx(ref.span())
        assert awaiting_keyframe(buf) == ref.awaiting
        assert buf.dropped_video == sum(p.kind == "video" for p in ref.dropped)
        assert buf.dropped_audio == sum(p.kind == "audio" for p in ref.dropped)

        # Counts and bytes add up.
        assert len(pushed) == len(popped) + buf.dropped_video + buf.dropped_audio + len(buf)
        assert sum(p.size for p in pushed) == (
            sum(p.size for p in popped) + buf.dropped_bytes + buf.queued_bytes
        )

        # Audio is never dropped while video is queued (bar an audio packet too big to
        # ever fit, rejected on arrival).
        queued_video = sum(p.kind == "video" for p in ref.queue)
        if op == "push" and buf.dropped_audio > dropped_audio_before:
            assert isinstance(pkt, EncodedPacket)
            oversized_audio = pkt.kind == "audio" and pkt.size > max_bytes
            assert queued_video == 0 or (
                oversized_audio and buf.dropped_audio == dropped_audio_before + 1
            )

    popped += drain(buf)
    # Popped in push order, per kind (a pop by kind may take audio ahead of older video).
    for kind in ("video", "audio"):
        serials = [p.pts for p in popped if p.kind == kind]
        assert serials == sorted(serials)
    # Popped video is decodable: runs start with a keyframe and hold consecutive video.
    previous: int | None = None
    for p in (p for p in popped if p.kind == "video"):
        index = video_index[p.pts]
        if not p.keyframe:
            assert previous == index - 1, "a popped frame follows a dropped one"
        previous = index


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_generous_bounds_lose_nothing_after_the_first_keyframe(
    scenario: tuple[float, int, list[Op]],
) -> None:
    _, _, ops = scenario
    buf = GopBuffer(1e9, 10**12)
    pushes = [pkt for op, pkt in ops if op == "push" and isinstance(pkt, EncodedPacket)]
    for pkt in pushes:
        buf.push(pkt)
    first_key = next((i for i, p in enumerate(pushes) if p.kind == "video" and p.keyframe), None)
    expected = [] if first_key is None else pushes[first_key:]
    assert drain(buf) == expected
    assert buf.dropped_video + buf.dropped_audio == len(pushes) - len(expected)
