"""RTMP chunk streams: framing details, and writer → reader round trips under any split."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.rtmp.chunks import (
    ABORT,
    AUDIO,
    SET_CHUNK_SIZE,
    ChunkError,
    ChunkReader,
    ChunkWriter,
    Message,
    basic_header,
)


def test_basic_header_sizes() -> None:
    assert basic_header(0, 3) == b"\x03"
    assert basic_header(3, 63) == b"\xff"
    assert basic_header(1, 64) == b"\x40\x00"
    assert basic_header(0, 319) == b"\x00\xff"
    assert basic_header(0, 320) == b"\x01\x00\x01"
    assert basic_header(2, 65599) == b"\x81\xff\xff"
    for bad in (0, 1, 65600):
        with pytest.raises(ValueError):
            basic_header(0, bad)


def test_a_message_is_cut_into_chunks_of_the_chunk_size() -> None:
    writer = ChunkWriter(chunk_size=4)
    data = writer.encode(4, Message(AUDIO, 1, 1000, b"abcdefghij"))
    header = b"\x04" + (1000).to_bytes(3, "big") + (10).to_bytes(3, "big") + b"\x08"
    header += struct.pack("<I", 1)
    assert data == header + b"abcd" + b"\xc4" + b"efgh" + b"\xc4" + b"ij"


def test_extended_timestamps_repeat_in_continuation_chunks() -> None:
    writer = ChunkWriter(chunk_size=2)
    message = Message(AUDIO, 1, 0x01020304, b"abc")
    data = writer.encode(4, message)
    assert data[1:4] == b"\xff\xff\xff"
    assert data[12:16] == b"\x01\x02\x03\x04"
    assert data[18:23] == b"\xc4\x01\x02\x03\x04"
    assert ChunkReader(chunk_size=2).feed(data) == [message]


def test_format_1_2_3_headers_from_a_server_are_understood() -> None:
    # fmt 0 at t=100, then fmt 1 (+20, new length), fmt 2 (+5), fmt 3 (+5 again).
    data = (
        b"\x05" + (100).to_bytes(3, "big") + (2).to_bytes(3, "big") + b"\x14" + b"\0\0\0\0" + b"hi"
        + b"\x45" + (20).to_bytes(3, "big") + (3).to_bytes(3, "big") + b"\x14" + b"abc"
        + b"\x85" + (5).to_bytes(3, "big") + b"def"
        + b"\xc5" + b"ghi"
    )  # fmt: skip
    reader = ChunkReader()
    assert [(m.timestamp, m.payload) for m in reader.feed(data)] == [
        (100, b"hi"),
        (120, b"abc"),
        (125, b"def"),
        (130, b"ghi"),
    ]


def test_set_chunk_size_applies_to_the_very_next_chunk() -> None:
    writer = ChunkWriter()
    data = writer.encode(2, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 4096)))
    writer.chunk_size = 4096
    big = Message(AUDIO, 1, 0, bytes(range(256)) * 12)
    data += writer.encode(4, big)
    reader = ChunkReader()
    assert reader.feed(data)[1] == big
    assert reader.chunk_size == 4096


def test_abort_discards_a_partial_message() -> None:
    writer = ChunkWriter(chunk_size=4)
    first = writer.encode(4, Message(AUDIO, 1, 0, b"12345678"))[:-5]  # cut before the last chunk
    abort = writer.encode(2, Message(ABORT, 0, 0, struct.pack(">I", 4)))
    after = writer.encode(4, Message(AUDIO, 1, 7, b"xy"))
    assert ChunkReader(chunk_size=4).feed(first + abort + after)[-1].payload == b"xy"


@pytest.mark.parametrize(
    "data",
    [
        b"\x43" + bytes(7),  # a format-1 header on a stream never seen
        b"\x03" + (0).to_bytes(3, "big") + (2**24 - 1).to_bytes(3, "big") + b"\x08" + bytes(4),
        b"\x02" + bytes(3) + (4).to_bytes(3, "big") + b"\x01" + bytes(4) + b"\x00\x00\x00\x00",
    ],
    ids=["unknown-stream", "too-big", "chunk-size-zero"],
)
def test_broken_streams_raise_chunk_error(data: bytes) -> None:
    reader = ChunkReader(max_message_size=1 << 20)
    with pytest.raises(ChunkError):
        reader.feed(data)


messages = st.builds(
    Message,
    type_id=st.sampled_from([8, 9, 18, 20]),
    stream_id=st.integers(0, 2**32 - 1),
    timestamp=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=600),
)


@settings(max_examples=150)
@given(
    items=st.lists(st.tuples(st.integers(3, 400), messages), max_size=8),
    chunk_size=st.integers(1, 300),
    cuts=st.lists(st.integers(1, 97), max_size=30),
)
def test_round_trip_under_any_split(
    items: list[tuple[int, Message]], chunk_size: int, cuts: list[int]
) -> None:
    writer = ChunkWriter(chunk_size)
    data = b"".join(writer.encode(csid, message) for csid, message in items)
    reader = ChunkReader(chunk_size)
    received: list[Message] = []
    pos = 0
    for cut in cuts:
        received += reader.feed(data[pos : pos + cut])
        pos += cut
    received += reader.feed(data[pos:])
    assert received == [message for _, message in items]
    assert reader.bytes_received == len(data)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_chunk_error(data: bytes) -> None:
    with contextlib.suppress(ChunkError):
        ChunkReader().feed(data)
