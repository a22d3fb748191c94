"""AMF0: known encodings, round trips of any value, and no crash on any bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.rtmp import amf0
from relays.rtmp.amf0 import UNDEFINED, AmfDate, AmfError, EcmaArray, Value, decode_all, encode


def test_a_connect_command_encodes_as_rtmp_servers_expect() -> None:
    data = encode("connect", 1.0, {"app": "live"})
    assert data == (
        b"\x02\x00\x07connect"
        + b"\x00" + struct.pack(">d", 1.0)
        + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
    )  # fmt: skip
    assert decode_all(data) == ["connect", 1.0, {"app": "live"}]


def test_scalars() -> None:
    assert encode(True, False, None, UNDEFINED) == b"\x01\x01\x01\x00\x05\x06"
    assert decode_all(b"\x01\x01\x01\x00\x05\x06") == [True, False, None, UNDEFINED]
    assert encode(3) == encode(3.0)  # ints are Numbers


def test_long_strings_switch_marker() -> None:
    text = "x" * 70_000
    data = encode(text)
    assert data[0] == amf0.LONG_STRING
    assert decode_all(data) == [text]


def test_ecma_array_and_date_keep_their_types() -> None:
    meta = EcmaArray(width=1280.0, height=720.0, encoder="jalsa")
    values = decode_all(encode("onMetaData", meta, AmfDate(1.5e12, 0)))
    assert values == ["onMetaData", meta, AmfDate(1.5e12, 0)]
    assert isinstance(values[1], EcmaArray)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x02\x00\x05abc", "truncated"),
        (b"\x07\x00\x01", "unsupported"),
        (b"\x02\x00\x02\xff\xfe", "UTF-8"),
        (b"\x03\x00\x00\x05", "object end"),
        (b"\x0a\xff\xff\xff\xff", "strict array"),
        (b"\x0a\x00\x00\x00\x01" * 100, "nested"),
    ],
)
def test_bad_bytes_raise_amf_error(data: bytes, what: str) -> None:
    with pytest.raises(AmfError, match=what):
        decode_all(data)


def test_values_without_an_amf_type_are_refused() -> None:
    with pytest.raises(TypeError):
        encode(object())  # type: ignore[arg-type]
    with pytest.raises(AmfError):
        encode({"": 1.0})


keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=40),
    st.none(),
    st.just(UNDEFINED),
    st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-(2**15), 2**15 - 1)),
)
values: st.SearchStrategy[Value] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        st.dictionaries(keys, children, max_size=5).map(EcmaArray),
    ),
    max_leaves=10,
)


@settings(max_examples=100)
@given(st.lists(values, max_size=4))
def test_round_trip(items: list[Value]) -> None:
    decoded = decode_all(encode(*items))
    assert decoded == items
    assert [type(v) for v in decoded] == [type(v) for v in items]


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_amf_error(data: bytes) -> None:
    try:
        decoded = decode_all(data)
    except AmfError:
        return
    # Whatever decoded encodes again, stably (compared as bytes: NaN has no equality).
    again = encode(*decoded)
    assert encode(*decode_all(again)) == again
