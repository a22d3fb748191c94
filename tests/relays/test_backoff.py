"""The reconnect schedule: bounds of the jittered delays and when the count resets."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relays.backoff import Backoff

bases = st.floats(0.001, 10.0)
caps_over_base = st.floats(1.0, 1000.0)


@settings(max_examples=200)
@given(base=bases, factor=caps_over_base, seed=st.integers(), n=st.integers(1, 80))
def test_delays_stay_within_the_growing_then_capped_ceiling(
    base: float, factor: float, seed: int, n: int
) -> None:
    cap = base * factor
    b = Backoff(base, cap, rng=random.Random(seed))
    ceilings = []
    for attempt in range(n):
        assert b.attempt == attempt
        ceiling = b.ceiling()
        assert ceiling == min(cap, base * 2.0**attempt)
        delay = b.next_delay()
        assert 0.0 <= delay <= ceiling
        ceilings.append(ceiling)
    # The ceiling doubles until it reaches the cap, then stays there.
    for before, after in itertools.pairwise(ceilings):
        assert after == min(cap, before * 2)
    assert ceilings[-1] <= cap


def test_delays_are_jittered_over_the_whole_range() -> None:
    b = Backoff(1.0, 8.0, rng=random.Random(7))
    for _ in range(5):
        b.next_delay()
    delays = []
    for _ in range(2000):
        delays.append(b.next_delay())
    assert b.ceiling() == 8.0
    assert min(delays) < 0.5
    assert max(delays) > 7.5
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_same_seed_same_schedule() -> None:
    one = Backoff(rng=random.Random(1))
    two = Backoff(rng=random.Random(1))
    assert [one.next_delay() for _ in range(10)] == [two.next_delay() for _ in range(10)]


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(1.0, 30.0, rng=random.Random(0))
    for _ in range(3000):
        assert 0.0 <= b.next_delay() <= 30.0
    assert b.ceiling() == 30.0


@pytest.mark.parametrize(
    ("base", "cap", "reset_after"),
    [(0, 30, 60), (-1, 30, 60), (2, 1, 60), (1, 30, -1), (float("nan"), 30, 60)],
)
def test_rejects_bad_parameters(base: float, cap: float, reset_after: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base, cap, reset_after)


def test_reset_after_a_healthy_window_only() -> None:
    b = Backoff(1.0, 30.0, reset_after=60.0, rng=random.Random(0))
    for _ in range(4):
        b.next_delay()
    b.succeeded(at=100.0)
    assert not b.healthy(159.9)
    assert b.attempt == 4
    assert b.healthy(160.0)
    assert b.attempt == 0


def test_short_connections_keep_backing_off() -> None:
    b = Backoff(1.0, 30.0, reset_after=60.0, rng=random.Random(0))
    now = 0.0
    for attempt in range(6):
        assert b.attempt == attempt
        now += b.next_delay()
        b.succeeded(now)
        now += 5.0  # accepted, then dropped after 5 s
        b.healthy(now)
        b.failed()
    # A failed connection no longer counts toward a healthy window.
    assert not b.healthy(now + 1000.0)
    assert b.attempt == 6


events = st.lists(
    st.one_of(
        st.tuples(st.just("delay"), st.just(0.0)),
        st.tuples(st.just("succeeded"), st.floats(0.0, 100.0)),
        st.tuples(st.just("healthy"), st.floats(0.0, 100.0)),
        st.tuples(st.just("failed"), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(events=events, reset_after=st.floats(0.0, 120.0))
def test_attempt_resets_exactly_after_a_healthy_window(
    events: list[tuple[str, float]], reset_after: float
) -> None:
    b = Backoff(1.0, 30.0, reset_after=reset_after, rng=random.Random(0))
    now = 0.0
    attempt = 0
    since: float | None = None
    for kind, step in events:
        now += step  # the clock never goes back
        if kind == "delay":
            b.next_delay()
            attempt += 1
        elif kind == "succeeded":
            b.succeeded(now)
            since = now
        elif kind == "healthy":
            ok = since is not None and now - since >= reset_after
            assert b.healthy(now) == ok
            if ok:
                attempt = 0
        else:
            b.failed()
            since = None
        assert b.attempt == attempt
