"""The poll schedule's invariants, for any sequence of outcomes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitoring.platform_apis import REASONS, Count, Failure, Outcome
from monitoring.poll_schedule import PollSchedule

outcomes = st.one_of(
    st.builds(Count, st.integers(0, 10**6)),
    st.builds(
        Failure,
        st.sampled_from(REASONS),
        st.just("x"),
        st.one_of(st.none(), st.floats(0, 10**6, allow_nan=False)),
    ),
)


@given(
    every=st.floats(5, 600),
    sequence=st.lists(outcomes, max_size=40),
    jitter=st.floats(0, 0.99),
)
def test_bounds_and_honoured_waits(every: float, sequence: list[Outcome], jitter: float) -> None:
    schedule = PollSchedule(every, rng=lambda: jitter)
    for outcome in sequence:
        wait = schedule.next_delay(outcome)
        assert every <= wait <= schedule.max_wait
        if isinstance(outcome, Count):
            assert wait == every
        elif outcome.retry_after is not None:
            assert wait >= min(outcome.retry_after, schedule.max_wait)


@given(st.lists(st.sampled_from([r for r in REASONS if r != "quota"]), min_size=1, max_size=30))
def test_errors_back_off_and_never_shrink(reasons: list[str]) -> None:
    schedule = PollSchedule(15, rng=lambda: 0.0)
    waits = [schedule.next_delay(Failure(r, "x")) for r in reasons]  # type: ignore[arg-type]
    assert waits == sorted(waits)
    assert waits[0] == 15 and max(waits) <= 300


def test_quota_waits_long_and_a_success_resets() -> None:
    schedule = PollSchedule(15, rng=lambda: 0.0)
    assert [schedule.next_delay(Failure("quota", "x")) for _ in range(6)] == [
        300,
        600,
        1200,
        2400,
        3600,
        3600,
    ]
    assert schedule.next_delay(Count(3)) == 15
    assert schedule.next_delay(Failure("timeout", "x")) == 15
    assert schedule.next_delay(Failure("timeout", "x")) == 30


def test_rate_limit_wait_is_capped() -> None:
    schedule = PollSchedule(15, rng=lambda: 0.0)
    assert schedule.next_delay(Failure("rate_limited", "x", 10**9)) == 3600
    assert schedule.next_delay(Failure("rate_limited", "x", 1)) == 30  # backoff beats it
