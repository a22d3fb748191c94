"""The studio's contribution session and its FLV body, sans I/O."""

from __future__ import annotations

from fractions import Fraction

import pytest

from relays.contribution import (
    ContributionSession,
    FlvBodyFraming,
    contribution_target,
    tag_bytes,
)
from relays.errors import ProtocolError, PublishRefused
from relays.packet import EncodedPacket
from relays.rtmp.flv import FlvSplitter, FlvTag

KEY = "contribution-key-5a5a5a5a5a"
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"


def live_session() -> ContributionSession:
    session = ContributionSession(
        contribution_target("https://edge.example.org/contribute?x=1", KEY), studio="venue"
    )
    session.initiate()
    session.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    return session


def test_the_request_head_carries_the_key_and_asks_to_continue() -> None:
    target = contribution_target("https://edge.example.org/contribute?x=1", KEY)
    assert (target.host, target.port, target.path, target.tls) == (
        "edge.example.org",
        443,
        "/contribute?x=1",
        True,
    )
    assert KEY not in repr(target)
    session = ContributionSession(target, studio="venue\n")
    session.initiate()
    head = session.data_to_send().decode()
    assert head.startswith("PUT /contribute?x=1 HTTP/1.1\r\n")
    assert f"Authorization: Bearer {KEY}\r\n" in head
    assert "Transfer-Encoding: chunked\r\n" in head and "Expect: 100-continue\r\n" in head
    assert "Jalsa-Studio: venue?\r\n" in head
    assert not session.live
    session.receive_data(b"HTTP/1.1 100 Con")
    assert not session.live
    session.receive_data(b"tinue\r\n\r\n")
    assert session.live


def test_a_refusal_says_why_without_the_key() -> None:
    session = ContributionSession(contribution_target("http://e:8443/c", KEY), studio="v")
    session.initiate()
    with pytest.raises(PublishRefused) as info:
        session.receive_data(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
    assert "401 Unauthorized" in str(info.value) and "key" in str(info.value)
    assert KEY not in str(info.value)
    with pytest.raises(ProtocolError):
        ContributionSession(contribution_target("http://e/c", KEY), studio="v").receive_data(
            b"RTMP\x03"
        )
    with pytest.raises(ValueError):
        contribution_target("rtmp://e/c", KEY)


def test_an_answer_after_the_go_ends_the_contribution() -> None:
    session = live_session()
    with pytest.raises(PublishRefused):
        session.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")


def test_the_body_is_chunked_flv_at_the_program_times_without_negative_ones() -> None:
    session = live_session()
    session.data_to_send()
    framing = FlvBodyFraming(session, templates=None)  # type: ignore[arg-type]
    ms = Fraction(1, 1000)
    for kind, dts in (("audio", -21), ("video", 0), ("audio", 0), ("video", 67)):
        framing.write(EncodedPacket(kind, b"\x01\x02\x03", dts, dts, ms, keyframe=dts == 0))  # type: ignore[arg-type]
    session.finish()
    body = session.data_to_send()
    assert body.endswith(b"0\r\n\r\n")
    data, rest = b"", body
    while True:
        size_text, rest = rest.split(b"\r\n", 1)
        size = int(size_text, 16)
        if size == 0:
            break
        data, rest = data + rest[:size], rest[size + 2 :]
    tags = FlvSplitter().feed(FLV_HEADER + data)
    assert [(t.type, t.timestamp) for t in tags] == [(9, 0), (8, 0), (9, 67)]


def test_tag_bytes_round_trip_past_24_bits() -> None:
    tag = FlvTag(9, 0x12345678, b"abc")
    assert FlvSplitter().feed(FLV_HEADER + tag_bytes(tag)) == [tag]
