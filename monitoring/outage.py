"""Tell a platform outage from a national disruption, throttling, or our own uplink.

Sans-I/O: the probe agents and the exporter feed the latest results in, together with the
time, and read judgements back. Nothing here sleeps, reads a clock or touches a socket.
The same semantics are computed straight from the ``jalsa_probe_*`` series by the rules
in ``deploy/prometheus/alerts.yml`` (the recording rule that mirrors each step is named
in brackets), so the alerts and ``jalsa_outage`` agree.

Definitions, in the order they are applied:

- A *vantage* is one probe agent, identified by ``(vantage, city, isp)``, exactly like
  the label set of its Prometheus series.
- Freshness: results older than ``stale_after`` seconds (default 120) and throughput
  samples older than ``throughput_stale_after`` (default 900: a pushing agent downloads
  only every few rounds, to stay within a volunteer's data budget, and a throttle lasts)
  are ignored. A result whose vantage said when its next round comes (``fresh_for``: a
  pushing agent measuring at its calm cadence) stays fresh until half a ``stale_after``
  after that, if that is longer (:func:`is_stale`). For each ``(vantage, platform,
  check)`` only the latest fresh result counts (a tie at the same instant counts as a
  failure).
- A vantage's probe of a platform *fails* if any of its checks failed in that latest
  round [``jalsa:probe_ok:min_by_vantage_platform``].
- Uplink: a vantage's uplink is *down* when its probe of the ``"control"`` platform fails,
  *up* when it succeeds [``jalsa:vantage_uplink_ok``]. A vantage with no fresh control
  result is neither: without a control we cannot tell its failures apart, so it is
  ignored. Only vantages whose uplink is up are *eligible*; an uplink-down vantage gives
  an ``uplink`` outage (platform ``"control"``) and takes part in no other judgement.
- Cities: a city fails a platform only if every eligible vantage in it that probed the
  platform fails it, so one bad ISP in a city of several does not count the city
  [``jalsa:city_probe_ok:max_by_city_platform``]. The cities *reporting* a platform are
  those with an eligible vantage that probed it.
- ``platform`` outage: the platform fails in more than half of its reporting cities, and
  at least ``min_cities`` (default 2) cities report it [``PlatformUnreachable``].
- ``national`` outage, platform ``"*"``: at least two platforms are each failing in at
  least half of their reporting cities and in at least ``min_cities`` cities
  [``jalsa:platform_disrupted:ratio``, ``NationalDisruption``]. The platform outages of the
  platforms it counts are then not reported.
- ``national`` outage, platform ``"all"`` (a shutdown): every vantage with a fresh control
  result is uplink-down, and they span at least ``min_cities`` cities. Their per-vantage
  ``uplink`` outages are then not reported.
- ``throttling``: per city, a platform's throughput is the best of its eligible vantages'
  latest fresh samples; over the cities that measured both the platform and the control,
  the platform's median is below ``throttle_ratio`` (0.25) times the control's median
  and below ``throttle_floor`` (32,000 bytes/s, about 256 kbit/s), with at least
  ``min_cities`` such cities [``PlatformThrottled``]. The ratio keeps a slow 3G network
  from looking throttled; the floor keeps a fast platform on a faster control from it.
  Medians of an even count are the mean of the middle two, as PromQL's ``quantile``.

``min_cities`` is at least 2, so one vantage (one city) can never raise a platform-wide or
national outage whatever it reports: more than half of two or more cities is two cities.

Debounce (:class:`Classifier`): an outage is identified by scope and platform (uplink
outages also by their vantage). It *starts* once it has been present at every evaluation
for ``for_seconds`` (default 60; its ``since`` is the first of those evaluations), and
*clears* once it has been absent for ``clear_seconds`` (default 120); reappearing in the
meantime keeps it active. These are the ``for: 1m`` and ``keep_firing_for: 2m`` of the
alert rules.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal, NamedTuple

Check = Literal["dns", "tcp", "tls", "http"]
Scope = Literal["platform", "national", "throttling", "uplink"]

CONTROL: Final = "control"
"""The platform label of control targets: hosts that stay up unless the network is down."""
ANY_PLATFORMS: Final = "*"
"""The platform of a national disruption of several platforms while controls work."""
ALL_PLATFORMS: Final = "all"
"""The platform of a national shutdown: every vantage lost its uplink."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One check of one platform from one vantage: did it succeed, and when."""

    vantage: str
    city: str
    isp: str
    platform: str
    check: Check
    success: bool
    at: float
    fresh_for: float = 0.0  # seconds to the vantage's next round, as it said (0: unsaid)


def is_stale(at: float, fresh_for: float, now: float, stale_after: float) -> bool:
    """Whether a result measured at ``at`` is too old at ``now`` (see the module)."""
    return now - at > max(stale_after, fresh_for + stale_after / 2)


@dataclass(frozen=True, slots=True)
class ThroughputSample:
    """Download speed of one platform (or the control) measured from one vantage."""

    vantage: str
    city: str
    isp: str
    platform: str
    bytes_per_second: float
    at: float


@dataclass(frozen=True, slots=True)
class Outage:
    """A judgement: what is out, seen from which vantages and cities, since when."""

    scope: Scope
    platform: str
    vantages: frozenset[str]
    cities: frozenset[str]
    since: float

    @property
    def key(self) -> tuple[object, ...]:
        """What makes two judgements at different times the same outage."""
        if self.scope == "uplink":
            return (self.scope, self.platform, self.vantages, self.cities)
        return (self.scope, self.platform)


@dataclass(frozen=True, slots=True)
class Transitions:
    """Outages that started and cleared at one :meth:`Classifier.update`."""

    started: list[Outage] = field(default_factory=list)
    cleared: list[Outage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The knobs of :func:`classify`; the defaults are the ones alerts.yml hard-codes."""

    stale_after: float = 120.0
    throughput_stale_after: float = 900.0
    min_cities: int = 2
    throttle_ratio: float = 0.25
    throttle_floor: float = 32_000.0

    def __post_init__(self) -> None:
        if self.min_cities < 2:
            raise ValueError("min_cities must be at least 2: one city is not platform-wide")
        if self.stale_after < 0 or self.throughput_stale_after < 0:
            raise ValueError("stale_after and throughput_stale_after must not be negative")


class _Vantage(NamedTuple):
    name: str
    city: str
    isp: str


def classify(
    results: Iterable[ProbeResult],
    throughput: Iterable[ThroughputSample],
    now: float,
    thresholds: Thresholds | None = None,
) -> set[Outage]:
    """Judge the latest probe round, with no memory of earlier ones.

    Args:
        results: probe results; stale ones and all but the latest per check are ignored.
        throughput: throughput samples, likewise.
        now: the current time, on the same clock as the ``at`` fields.
        thresholds: the knobs; the defaults if omitted.

    Returns:
        The outages present now, each with ``since=now``.
    """
    t = thresholds or Thresholds()
    probe_ok = _probe_ok(results, now, t.stale_after)

    uplink_ok = {v: ok for (v, platform), ok in probe_ok.items() if platform == CONTROL}
    eligible = {v for v, ok in uplink_ok.items() if ok}
    outages = _uplink_outages([v for v, ok in uplink_ok.items() if not ok], eligible, now, t)

    # city -> platform -> does any eligible vantage there reach it
    city_ok: dict[str, dict[str, bool]] = defaultdict(dict)
    for (v, platform), ok in probe_ok.items():
        if platform != CONTROL and v in eligible:
            city_ok[v.city][platform] = city_ok[v.city].get(platform, False) or ok
    reporting: dict[str, set[str]] = defaultdict(set)
    failing: dict[str, set[str]] = defaultdict(set)
    for city, platforms in city_ok.items():
        for platform, ok in platforms.items():
            reporting[platform].add(city)
            if not ok:
                failing[platform].add(city)

    def failing_vantages(platform: str) -> frozenset[str]:
        return frozenset(
            v.name
            for (v, p), ok in probe_ok.items()
            if p == platform and not ok and v in eligible and v.city in failing[platform]
        )

    disrupted = {
        p
        for p, cities in failing.items()
        if len(cities) >= t.min_cities and 2 * len(cities) >= len(reporting[p])
    }
    if len(disrupted) < 2:
        disrupted = set()
    else:
        outages.add(
            Outage(
                scope="national",
                platform=ANY_PLATFORMS,
                vantages=frozenset().union(*(failing_vantages(p) for p in disrupted)),
                cities=frozenset().union(*(failing[p] for p in disrupted)),
                since=now,
            )
        )
    for platform, cities in failing.items():
        majority = 2 * len(cities) > len(reporting[platform])
        if majority and len(reporting[platform]) >= t.min_cities and platform not in disrupted:
            outages.add(
                Outage("platform", platform, failing_vantages(platform), frozenset(cities), now)
            )

    outages |= _throttling(throughput, eligible, now, t)
    return outages


def _probe_ok(
    results: Iterable[ProbeResult], now: float, stale_after: float
) -> dict[tuple[_Vantage, str], bool]:
    """(vantage, platform) -> did every check succeed in its latest fresh result."""
    latest: dict[tuple[_Vantage, str, str], tuple[float, bool]] = {}
    for r in results:
        if is_stale(r.at, r.fresh_for, now, stale_after):
            continue
        key = (_Vantage(r.vantage, r.city, r.isp), r.platform, r.check)
        seen = latest.get(key)
        # Later wins; at the same instant a failure wins, so input order never matters.
        if seen is None or (r.at, not r.success) > (seen[0], not seen[1]):
            latest[key] = (r.at, r.success)
    ok: dict[tuple[_Vantage, str], bool] = {}
    for (v, platform, _check), (_at, success) in latest.items():
        ok[v, platform] = ok.get((v, platform), True) and success
    return ok


def _uplink_outages(
    down: list[_Vantage], eligible: set[_Vantage], now: float, t: Thresholds
) -> set[Outage]:
    cities = frozenset(v.city for v in down)
    if not eligible and len(cities) >= t.min_cities:
        names = frozenset(v.name for v in down)
        return {Outage("national", ALL_PLATFORMS, names, cities, now)}
    return {Outage("uplink", CONTROL, frozenset({v.name}), frozenset({v.city}), now) for v in down}


def _throttling(
    samples: Iterable[ThroughputSample], eligible: set[_Vantage], now: float, t: Thresholds
) -> set[Outage]:
    latest: dict[tuple[_Vantage, str], ThroughputSample] = {}
    for s in samples:
        v = _Vantage(s.vantage, s.city, s.isp)
        if now - s.at > t.throughput_stale_after or v not in eligible:
            continue
        seen = latest.get((v, s.platform))
        # Later wins; at the same instant the slower one, so input order never matters.
        if seen is None or (s.at, -s.bytes_per_second) > (seen.at, -seen.bytes_per_second):
            latest[v, s.platform] = s
    best: dict[tuple[str, str], float] = {}  # (city, platform) -> best vantage's speed
    vantages: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (v, platform), s in latest.items():
        best[v.city, platform] = max(best.get((v.city, platform), 0.0), s.bytes_per_second)
        vantages[v.city, platform].add(v.name)

    outages: set[Outage] = set()
    for platform in {p for _, p in best if p != CONTROL}:
        cities = sorted(c for c, p in best if p == platform and (c, CONTROL) in best)
        if len(cities) < t.min_cities:
            continue
        speed = statistics.median(best[c, platform] for c in cities)
        control = statistics.median(best[c, CONTROL] for c in cities)
        if speed < t.throttle_ratio * control and speed < t.throttle_floor:
            names = frozenset().union(*(vantages[c, platform] for c in cities))
            outages.add(Outage("throttling", platform, names, frozenset(cities), now))
    return outages


class Classifier:
    """:func:`classify` with memory: debounced starts and clears of outages.

    Args:
        thresholds: passed to :func:`classify`.
        for_seconds: how long an outage must hold, at every evaluation, before it starts.
        clear_seconds: how long an active outage must be absent before it clears.

    Raises:
        ValueError: for a negative duration.
    """

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        for_seconds: float = 60.0,
        clear_seconds: float = 120.0,
    ) -> None:
        if for_seconds < 0 or clear_seconds < 0:
            raise ValueError("for_seconds and clear_seconds must not be negative")
        self.thresholds = thresholds or Thresholds()
        self.for_seconds = for_seconds
        self.clear_seconds = clear_seconds
        self._now: float | None = None
        # Invariant: a key is in at most one of _pending and _active.
        self._pending: dict[tuple[object, ...], float] = {}  # key -> first seen, unbroken
        self._active: dict[tuple[object, ...], Outage] = {}
        self._absent_since: dict[tuple[object, ...], float] = {}  # keys of _active only

    @property
    def active(self) -> frozenset[Outage]:
        """The outages that have started and not cleared, as last seen."""
        return frozenset(self._active.values())

    def update(
        self,
        results: Iterable[ProbeResult],
        throughput: Iterable[ThroughputSample],
        now: float,
        extra: Iterable[Outage] = (),
    ) -> Transitions:
        """Evaluate the latest results at ``now``, with ``extra`` judgements present now
        (debounced like the classifier's own).

        Raises:
            ValueError: if ``now`` is earlier than at the previous update.
        """
        if self._now is not None and now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now
        judged = classify(results, throughput, now, self.thresholds)
        present = {o.key: o for o in (*judged, *extra)}
        started: list[Outage] = []
        cleared: list[Outage] = []

        for key, outage in present.items():
            if key in self._active:
                # Keep the start; refresh which vantages and cities are involved.
                self._active[key] = replace(outage, since=self._active[key].since)
                self._absent_since.pop(key, None)
                continue
            first = self._pending.setdefault(key, now)
            if now - first >= self.for_seconds:
                del self._pending[key]
                self._active[key] = replace(outage, since=first)
                started.append(self._active[key])

        for key in [k for k in self._pending if k not in present]:
            del self._pending[key]
        for key in [k for k in self._active if k not in present]:
            absent = self._absent_since.setdefault(key, now)
            if now - absent >= self.clear_seconds:
                del self._absent_since[key]
                cleared.append(self._active.pop(key))

        return Transitions(sorted(started, key=_report_order), sorted(cleared, key=_report_order))


def _report_order(o: Outage) -> tuple[str, str, list[str], list[str]]:
    return (o.scope, o.platform, sorted(o.cities), sorted(o.vantages))
