"""HLS mirror viewers: distinct sessions within the window, against a reference model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitoring.hls_viewers import HlsViewers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_the_window() -> None:
    clock = Clock()
    viewers = HlsViewers(window=30, clock=clock)
    viewers.seen("mirror", "10.0.0.1", "Safari")
    viewers.seen("mirror", "10.0.0.1", "Safari")  # the same session
    viewers.seen("mirror", "10.0.0.1", "Chrome")  # same NAT, another browser
    viewers.seen("mirror", "10.0.0.2", None)
    viewers.seen("other", "10.0.0.9", "x")
    assert (viewers.count("mirror"), viewers.count("other")) == (3, 1)
    clock.now = 20
    viewers.seen("mirror", "10.0.0.2", None)
    clock.now = 31
    assert viewers.count("mirror") == 1
    assert viewers.count("nobody") == 0
    clock.now = 60
    assert viewers.count("mirror") == 0


def test_memory_is_bounded() -> None:
    viewers = HlsViewers(clock=Clock(), max_sessions=100)
    for i in range(1000):
        viewers.seen("mirror", f"10.0.{i // 256}.{i % 256}", "x")
    assert viewers.count("mirror") == 100


events = st.lists(
    st.tuples(
        st.floats(0, 20),  # time step
        st.sampled_from(["a", "b"]),  # stream
        st.sampled_from(["1", "2", "3", None]),  # client
        st.sampled_from(["ua", None]),  # user agent
    ),
    max_size=60,
)


@given(events, st.floats(1, 60))
def test_matches_a_reference_model(
    steps: list[tuple[float, str, str | None, str | None]], window: float
) -> None:
    clock = Clock()
    viewers = HlsViewers(window=window, clock=clock)
    last: dict[tuple[str, str | None, str | None], float] = {}
    for step, stream, client, agent in steps:
        clock.now += step
        viewers.seen(stream, client, agent)
        last[stream, client or "", agent or ""] = clock.now
        for name in ("a", "b"):
            expected = sum(
                1 for (s, _, _), t in last.items() if s == name and clock.now - t <= window
            )
            assert viewers.count(name) == expected
