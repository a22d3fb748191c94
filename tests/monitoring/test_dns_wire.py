"""The DNS wire format: queries and answers round-trip; garbage never crashes the reader."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.dns_wire import (
    DnsAnswer,
    DnsWireError,
    build_query,
    build_response,
    encode_name,
    parse_response,
)

labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)


@given(names, st.integers(0, 0xFFFF), st.lists(ipv4, max_size=6), st.integers(0, 5))
def test_round_trip(name: str, qid: int, addresses: list[str], rcode: int) -> None:
    query = build_query(name, qid)
    answer = parse_response(build_response(query, tuple(addresses), rcode), qid)
    assert answer == DnsAnswer(rcode, tuple(addresses))


@given(st.binary(max_size=200), st.integers(0, 0xFFFF))
def test_garbage_is_a_wire_error_or_an_answer(data: bytes, qid: int) -> None:
    with contextlib.suppress(DnsWireError):
        parse_response(data, qid)


def test_a_known_query() -> None:
    assert build_query("www.example.org", 0x1234) == (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        b"\x03www\x07example\x03org\x00\x00\x01\x00\x01"
    )
    assert encode_name("bücher.example.") == b"\x0dxn--bcher-kva\x07example\x00"


def test_cname_then_a_records() -> None:
    query = build_query("www.youtube.com", 7)
    head = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0)
    question = query[12:]
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 10) + b"\x07youtube\xc0\x10"
    a = b"\xc0\x2d" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([142, 250, 1, 1])
    assert parse_response(head + question + cname + a, 7).addresses == ("142.250.1.1",)


@pytest.mark.parametrize("name", ["", "a..b", "x" * 64 + ".com", ("a." * 130) + "com"])
def test_names_that_cannot_be_asked(name: str) -> None:
    with pytest.raises(DnsWireError):
        build_query(name, 1)


def test_someone_elses_answer_is_refused() -> None:
    response = build_response(build_query("a.example", 1), ("10.0.0.1",))
    with pytest.raises(DnsWireError):
        parse_response(response, 2)
    with pytest.raises(DnsWireError):
        parse_response(response[:-2], 1)
