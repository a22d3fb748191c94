"""FLV tags built from packets once, for every RTMP destination: the bytes PyAV's FLV
muxer would write for each connection, on each connection's own timeline."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from program_replay import encode_loop, tiny_spec

from relays.framing import start_tags
from relays.memory_mux import MemoryMuxer
from relays.packet import EncodedPacket
from relays.rtmp.flv import FlvSplitter, FlvTag
from relays.rtmp.flv_tags import AVC_END_OF_SEQUENCE, FlvTimeline, annexb_to_avcc, millis


def pyav_tags(
    packets: list[EncodedPacket], templates: tuple, *, audio_only: bool = False
) -> list[FlvTag]:
    """What a connection muxing ``packets`` itself with PyAV sends (after its header)."""
    muxer = MemoryMuxer("flv", templates, audio_only=audio_only)
    splitter = FlvSplitter()
    splitter.feed(muxer.header())
    tags: list[FlvTag] = []
    for packet in packets:
        tags += splitter.feed(muxer.mux(packet))
    return tags + splitter.feed(muxer.close())


def shared_tags(packets: list[EncodedPacket], *, audio_only: bool = False) -> list[FlvTag]:
    """What a connection sends with the shared tags: each shifted to its timeline."""
    timeline = FlvTimeline()
    tags: list[FlvTag] = []
    for packet in packets:
        if audio_only and packet.kind == "video":
            continue
        tag = timeline.shift(packet.flv_tag())
        if tag is not None:
            tags.append(tag)
    if timeline.last_video is not None:
        tags.append(FlvTag(9, timeline.last_video, AVC_END_OF_SEQUENCE))
    return tags


def by_kind(tags: list[FlvTag]) -> dict[int, list[FlvTag]]:
    # PyAV interleaves the two kinds by time; per kind the order is the stream's own.
    return {kind: [t for t in tags if t.type == kind] for kind in (8, 9)}


def assert_same(ours: list[FlvTag], theirs: list[FlvTag]) -> None:
    """The same tags; where the connection's origin is not a whole millisecond, each
    tag's time is rounded on its own and then shifted, so it may be 1 ms off PyAV's."""
    assert [(t.type, t.data) for t in ours] == [(t.type, t.data) for t in theirs]
    for mine, pyav in zip(ours, theirs, strict=True):
        assert abs(mine.timestamp - pyav.timestamp) <= 1


@pytest.fixture(scope="module")
def encoded() -> tuple[tuple, list[EncodedPacket]]:
    encoder, packets = encode_loop(tiny_spec(), gops=2)
    return (encoder.video_stream, encoder.audio_stream), packets


def test_shared_tags_are_the_bytes_pyavs_muxer_writes(encoded: tuple) -> None:
    templates, packets = encoded
    assert any(p.data.startswith(b"\x00\x00\x00\x01") for p in packets if p.kind == "video")
    assert by_kind(shared_tags(packets)) == by_kind(pyav_tags(packets, templates))


def test_a_connection_that_starts_later_counts_from_its_own_first_keyframe(
    encoded: tuple,
) -> None:
    templates, packets = encoded
    keyframes = [i for i, p in enumerate(packets) if p.kind == "video" and p.keyframe]
    assert len(keyframes) == 2
    # A reconnect starts at a keyframe; audio queued behind it from before it is skipped.
    late = packets[keyframes[1] :]
    assert late[1].kind == "audio" and late[1].seconds < late[0].seconds
    ours, theirs = by_kind(shared_tags(late)), by_kind(pyav_tags(late, templates))
    assert ours[9][0].timestamp == 0
    for kind in (8, 9):
        assert_same(ours[kind], theirs[kind])


def test_audio_only_connections_get_the_same_audio_tags(encoded: tuple) -> None:
    templates, packets = encoded
    audio = [p for p in packets if p.kind == "audio"]
    assert_same(shared_tags(audio, audio_only=True), pyav_tags(audio, templates, audio_only=True))


def test_start_tags_are_metadata_then_codec_configuration(encoded: tuple) -> None:
    templates, _ = encoded
    tags = start_tags(templates, audio_only=False)
    assert [t.type for t in tags] == [18, 9, 8]
    assert b"onMetaData" in tags[0].data
    assert tags[1].data[:2] == b"\x17\x00" and tags[2].data[:2] == b"\xaf\x00"
    audio_only = start_tags(templates, audio_only=True)
    assert [t.type for t in audio_only] == [18, 8]
    assert b"width" not in audio_only[0].data


def test_a_tag_is_built_once_and_shared(encoded: tuple) -> None:
    _, packets = encoded
    packet = packets[0]
    assert packet.flv_tag() is packet.flv_tag()
    # A copy with other timestamps (the replay's next loop) gets its own.
    later = replace(packet, dts=packet.dts + 90_000, pts=packet.pts + 90_000)
    assert later.flv_tag().timestamp == packet.flv_tag().timestamp + 1000 * 90_000 * Fraction(
        packet.time_base
    )


@pytest.mark.parametrize(
    ("annexb", "avcc"),
    [
        (b"\x00\x00\x00\x01\x65abc", b"\x00\x00\x00\x04\x65abc"),
        (b"\x00\x00\x01\x06ss\x00\x00\x01\x65f", b"\x00\x00\x00\x03\x06ss\x00\x00\x00\x02\x65f"),
        (
            b"\x00\x00\x00\x01\x06s\x00\x00\x00\x01\x65\x00\x00\x03\x01",
            b"\x00\x00\x00\x02\x06s\x00\x00\x00\x05\x65\x00\x00\x03\x01",
        ),
        (b"\x00\x00\x00\x02\x65f", b"\x00\x00\x00\x02\x65f"),  # length-prefixed already
    ],
)
def test_annexb_start_codes_become_lengths(annexb: bytes, avcc: bytes) -> None:
    assert annexb_to_avcc(annexb) == avcc


# The edge's contribution is AVCC. A unit of 456 bytes has the length 00 00 01 c8: once
# taken for a start code, all five platforms of the uplink test got the same damaged frame.
FIRST_UNIT_456 = b"\x00\x00\x01\xc8\x41" + bytes(range(1, 256)) + bytes(range(1, 201))
SECOND_UNIT = b"\x00\x00\x01\xaa\x41" + b"\x5a" * 425


@pytest.mark.parametrize(
    "avcc", [FIRST_UNIT_456, FIRST_UNIT_456 + SECOND_UNIT], ids=["one unit", "two units"]
)
def test_a_length_prefixed_packet_that_starts_like_a_start_code_is_left_as_it_is(
    avcc: bytes,
) -> None:
    assert annexb_to_avcc(avcc) == avcc


@given(st.lists(st.binary(min_size=1, max_size=700), min_size=1, max_size=5))
def test_length_prefixed_units_are_never_rewritten(units: list[bytes]) -> None:
    avcc = b"".join(len(unit).to_bytes(4, "big") + unit for unit in units)
    assert annexb_to_avcc(avcc) == avcc


@given(
    ts=st.integers(-(2**40), 2**40),
    num=st.integers(1, 1000),
    den=st.integers(1, 10**6),
)
def test_milliseconds_round_half_away_from_zero(ts: int, num: int, den: int) -> None:
    exact = Fraction(ts) * Fraction(num, den) * 1000
    expected = int(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
    assert millis(ts, Fraction(num, den)) == expected


def test_the_timeline_skips_what_comes_before_its_origin() -> None:
    timeline = FlvTimeline()
    assert timeline.shift(FlvTag(9, 1000, b"k")) == FlvTag(9, 0, b"k")
    assert timeline.shift(FlvTag(8, 990, b"a")) is None
    assert timeline.shift(FlvTag(8, 1010, b"a")) == FlvTag(8, 10, b"a")
    assert timeline.shift(FlvTag(9, 1033, b"p")) == FlvTag(9, 33, b"p")
    assert timeline.last_video == 33
