"""Session limits and replacement (pure)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.speakers.sessions import Limits, SessionsFull, SessionTable


def open_sessions(table: SessionTable, sessions: list[str], speakers: str) -> list[str]:
    """Those of ``sessions`` still negotiating or live, as their speakers see them."""
    return [
        s for s in sessions for who in speakers if table.phase(who, s) in ("negotiating", "live")
    ]


def test_a_rejoin_supersedes_a_negotiating_session_and_replaces_a_live_one() -> None:
    table = SessionTable(Limits(max_total=4))
    first = table.admit("guest", 0.0)
    assert first.supersedes is None
    assert table.went_live(first.session) is None
    second = table.admit("guest", 5.0)
    assert second.supersedes is None  # the first is live, not negotiating
    third = table.admit("guest", 10.0)
    assert third.supersedes == second.session
    assert table.phase("guest", second.session) == "superseded"
    assert table.went_live(third.session) == first.session
    assert table.phase("guest", first.session) == "replaced"
    assert table.phase("guest", third.session) == "live"
    assert table.phase("other", third.session) == "unknown"  # never told to others
    table.finish(third.session)
    assert table.phase("guest", third.session) == "ended"
    assert open_sessions(table, [first.session, second.session, third.session], "guest") == []


def test_limits() -> None:
    table = SessionTable(Limits(max_total=2, min_interval=1.0))
    table.admit("a", 0.0)
    with pytest.raises(SessionsFull) as fast:
        table.admit("a", 0.5)
    assert (fast.value.status, fast.value.retry_after) == (429, 1)
    table.admit("b", 0.5)
    with pytest.raises(SessionsFull) as full:
        table.admit("c", 0.5)
    assert full.value.status == 503
    # A speaker's own retry replaces their negotiating session even when full.
    assert table.admit("a", 2.0).supersedes is not None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["admit", "live", "finish"]), st.sampled_from("abc"), st.integers(0, 5)
        ),
        max_size=60,
    )
)
def test_invariants_hold_under_any_sequence(steps: list[tuple[str, str, int]]) -> None:
    table = SessionTable(Limits(max_total=4, min_interval=0.0))
    made: list[str] = []
    for now, (action, speaker, pick) in enumerate(steps):
        if action == "admit":
            with contextlib.suppress(SessionsFull):
                made.append(table.admit(speaker, float(now)).session)
        elif made:
            session = made[pick % len(made)]
            if action == "live":
                table.went_live(session)
            else:
                table.finish(session)
        open_ = open_sessions(table, made, "abc")
        assert len(open_) <= 4
        for who in "abc":
            phases = [table.phase(who, s) for s in open_]
            assert phases.count("live") <= 1
            assert phases.count("negotiating") <= 1
