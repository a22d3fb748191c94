"""How much the studio's uplink carries, and whether it is saturated, from what the
destinations manage to send.

Every network destination (RTMP, Icecast, an edge's contribution link: not a recording or
the HLS mirror, which are written locally) shares the one uplink. jalsa cannot measure the
link itself, but it sees its effect: the bytes each destination hands to its socket, and
how far each one falls behind the program (its lag). A platform that is throttled makes
*its* destination fall behind; an uplink that is full makes *most* of them fall behind at
once. A destination that cannot keep up shows it in two ways: its lag grows (it is
:data:`LAG_SECONDS` or more behind and not catching up), or, once its queue is full, it
sheds packets (its lag then falls back, in a saw-tooth). So the uplink is **saturated**
when more than half of the live network destinations did either within the window (with
one network destination, its own state: the two causes cannot be told apart then). Its
**throughput** is what all of them sent per second over the last :data:`WINDOW_SECONDS`.

Pure: :class:`UplinkMeter` is fed destination views with the time; it keeps a bounded
window of them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Protocol


class DestinationView(Protocol):
    """What the meter reads of a destination (a relays DestinationSnapshot)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def sent_bytes(self) -> int: ...
    @property
    def lag_seconds(self) -> float: ...
    @property
    def dropped_video(self) -> int: ...
    @property
    def dropped_audio(self) -> int: ...


LOCAL_KINDS: Final = frozenset({"file", "hls"})
WINDOW_SECONDS: Final = 20.0
LAG_SECONDS: Final = 2.0
_MIN_SPACING: Final = 0.5  # observations closer than this to the last one are not kept
_MAX_SAMPLES: Final = 64


@dataclass(frozen=True, slots=True)
class UplinkEstimate:
    """The uplink as the destinations see it.

    Attributes:
        throughput_bps: Bits per second sent by all network destinations over the window
            (None until two observations span a second).
        network: Live network destinations (they share the uplink).
        lagging: Those of them that cannot keep up: behind by :data:`LAG_SECONDS` or more
            and not catching up, or shedding packets within the window.
        saturated: More than half of ``network`` are ``lagging``.
    """

    throughput_bps: float | None
    network: int
    lagging: tuple[str, ...]
    saturated: bool


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    sent: dict[str, int]  # network destination -> bytes sent so far
    lag: dict[str, float]  # live network destination -> lag
    dropped: dict[str, int]  # network destination -> packets dropped so far


class UplinkMeter:
    """Give it the destinations now and then (:meth:`observe`); it answers with the
    estimate over the last :data:`WINDOW_SECONDS`. Thread-safe (the API and /metrics
    both look)."""

    def __init__(self) -> None:
        self._samples: deque[_Sample] = deque(maxlen=_MAX_SAMPLES)
        self._lock = threading.Lock()

    def observe(self, now: float, destinations: Sequence[DestinationView]) -> UplinkEstimate:
        network = [d for d in destinations if d.kind not in LOCAL_KINDS]
        sample = _Sample(
            now,
            {d.name: d.sent_bytes for d in network},
            {d.name: d.lag_seconds for d in network if d.state == "live"},
            {d.name: d.dropped_video + d.dropped_audio for d in network},
        )
        with self._lock:
            samples = self._samples
            if not samples or now - samples[-1].at >= _MIN_SPACING:
                samples.append(sample)
            while len(samples) > 2 and now - samples[1].at >= WINDOW_SECONDS:
                samples.popleft()
            window = [*samples] if samples[-1] is sample else [*samples, sample]
        return _estimate(window)


def _sent(window: Sequence[_Sample]) -> int:
    """Bytes the network destinations sent over ``window``, each from the first sample
    that has it: one added later, or a first sample taken before the relays started (the
    show's first snapshot has no destinations yet), does not hide what the others sent."""
    return sum(
        max(0, count - a.sent[name])
        for a, b in pairwise(window)
        for name, count in b.sent.items()
        if name in a.sent
    )


def _estimate(window: Sequence[_Sample]) -> UplinkEstimate:
    old, new = window[0], window[-1]
    span = new.at - old.at
    throughput = _sent(window) * 8 / span if span >= 1.0 else None

    def behind(name: str, lag: float) -> bool:
        growing = lag >= LAG_SECONDS and lag >= old.lag.get(name, 0.0)
        return growing or new.dropped[name] > old.dropped.get(name, new.dropped[name])

    lagging = tuple(sorted(name for name, lag in new.lag.items() if behind(name, lag)))
    live = len(new.lag)
    return UplinkEstimate(throughput, live, lagging, live > 0 and 2 * len(lagging) > live)
