"""FLV tag splitting: PyAV's real FLV output, built streams, and any split of them."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from program_replay import encode_loop, tiny_spec

from relays.memory_mux import MemoryMuxer
from relays.rtmp.flv import FlvError, FlvSplitter, FlvTag


def file_header(*, audio: bool = True, video: bool = True) -> bytes:
    """The 9-byte FLV file header and the first PreviousTagSize (0)."""
    flags = (4 if audio else 0) | (1 if video else 0)
    return b"FLV" + bytes((1, flags)) + struct.pack(">I", 9) + b"\x00\x00\x00\x00"


def tag_bytes(tag: FlvTag) -> bytes:
    """``tag`` as it appears in an FLV file, with its PreviousTagSize."""
    size = len(tag.data)
    ts = tag.timestamp & 0xFFFFFFFF
    header = (
        bytes((tag.type,))
        + size.to_bytes(3, "big")
        + (ts & 0xFFFFFF).to_bytes(3, "big")
        + bytes((ts >> 24,))
        + b"\x00\x00\x00"
    )
    return header + tag.data + struct.pack(">I", 11 + size)


def test_pyav_flv_output_splits_into_metadata_then_media_tags() -> None:
    encoder, packets = encode_loop(tiny_spec(), gops=1)
    muxer = MemoryMuxer("flv", (encoder.video_stream, encoder.audio_stream), audio_only=False)
    splitter = FlvSplitter()
    tags = splitter.feed(muxer.header())
    per_packet = [splitter.feed(muxer.mux(p)) for p in packets]
    tags += [tag for each in per_packet for tag in each]
    tags += splitter.feed(muxer.close())
    assert splitter.pending == 0
    # Bytes come out per packet (whole tags, at most one packet held back to interleave):
    # nothing waits in the muxer for a stream that is silent.
    assert all(len(each) <= 1 for each in per_packet)
    assert sum(map(len, per_packet)) >= len(packets) - 2
    assert tags[0].type == 18 and b"onMetaData" in tags[0].data
    assert {t.type for t in tags[1:]} == {8, 9}
    video = [t for t in tags if t.type == 9]
    assert video[1].data[0] >> 4 == 1  # the first frame after the AVC header is a keyframe
    assert [t.timestamp for t in video] == sorted(t.timestamp for t in video)


def test_audio_only_flv_has_no_video_tags() -> None:
    encoder, packets = encode_loop(tiny_spec(), gops=1)
    muxer = MemoryMuxer("flv", (encoder.video_stream, encoder.audio_stream), audio_only=True)
    data = muxer.header() + b"".join(muxer.mux(p) for p in packets) + muxer.close()
    tags = FlvSplitter().feed(data)
    assert data[4] == 4  # header flags: audio only
    assert {t.type for t in tags} == {18, 8}


def test_not_flv_is_refused() -> None:
    with pytest.raises(FlvError, match="signature"):
        FlvSplitter().feed(b"RIFF....")
    with pytest.raises(FlvError, match="PreviousTagSize"):
        FlvSplitter().feed(file_header() + tag_bytes(FlvTag(8, 0, b"ab"))[:-1] + b"\x07")
    with pytest.raises(FlvError, match="tag type"):
        FlvSplitter().feed(file_header() + b"\x07" + bytes(14))


tags = st.lists(
    st.builds(
        FlvTag,
        type=st.sampled_from([8, 9, 18]),
        timestamp=st.integers(0, 2**32 - 1),
        data=st.binary(max_size=300),
    ),
    max_size=10,
)


@settings(max_examples=150)
@given(items=tags, cuts=st.lists(st.integers(1, 50), max_size=40))
def test_round_trip_under_any_split(items: list[FlvTag], cuts: list[int]) -> None:
    data = file_header() + b"".join(tag_bytes(t) for t in items)
    splitter = FlvSplitter()
    out: list[FlvTag] = []
    pos = 0
    for cut in cuts:
        out += splitter.feed(data[pos : pos + cut])
        pos += cut
    out += splitter.feed(data[pos:])
    assert out == items
    assert splitter.pending == 0
