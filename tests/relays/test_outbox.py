"""The outbox: lanes in priority order, whole pieces, counters that add up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.outbox import Outbox


def test_the_first_lane_goes_first_in_whole_pieces() -> None:
    box = Outbox("urgent", "video")
    box.put("video", b"V1" * 10)
    box.put("urgent", b"a1")
    box.put("video", b"V2")
    box.put("urgent", b"a2")
    assert box.pending() == 26 and box.pending("urgent") == 4
    assert box.take(3) == b"a1a2"  # whole pieces: at least the limit, never a split
    box.put("urgent", b"a3")
    assert box.take(1) == b"a3"
    assert box.take() == b"V1" * 10 + b"V2"
    assert box.take() == b""
    assert (box.queued("video"), box.emitted("video")) == (22, 22)


def test_a_lane_is_needed() -> None:
    with pytest.raises(ValueError):
        Outbox()


@settings(max_examples=100)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["a", "b"]), st.binary(max_size=20)),
            st.integers(0, 40),
        ),
        max_size=60,
    )
)
def test_per_lane_order_and_counts(ops: list[tuple[str, bytes] | int]) -> None:
    box = Outbox("a", "b")
    put: dict[str, bytes] = {"a": b"", "b": b""}
    out = b""
    for op in ops:
        if isinstance(op, tuple):
            box.put(*op)
            put[op[0]] += op[1]
        else:
            out += box.take(op)
    out += box.take()
    assert sorted(out) == sorted(put["a"] + put["b"])
    assert box.pending() == 0
    for lane in "ab":
        assert box.queued(lane) == box.emitted(lane) == len(put[lane])
