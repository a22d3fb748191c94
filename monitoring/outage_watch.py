"""The classifier in a running jalsa: latest probe results in, outage events out.

:class:`OutageWatch` remembers the latest result of every probe series it is given (its
own vantage's rounds and the remote agents' scrapes), runs the debounced
:class:`~monitoring.outage.Classifier` over them, and reports each start and clear as
an :class:`OutageEvent`: a log line, the sample log, the webhook. Sans-I/O apart from
logging; the clock is injected. Memory is bounded by the number of series and
``keep`` recent events.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from monitoring.outage import (
    ALL_PLATFORMS,
    ANY_PLATFORMS,
    CONTROL,
    Classifier,
    Outage,
    ProbeResult,
    ThroughputSample,
    is_stale,
)
from monitoring.probe_round import Vantage
from monitoring.silence import SILENT

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutageEvent:
    kind: Literal["started", "cleared"]
    outage: Outage
    at: float

    @property
    def text(self) -> str:
        """One line for people: the console, the log and the webhook's ``text``."""
        what = describe(self.outage)
        since = _clock_time(self.outage.since)
        if self.kind == "started":
            return f"OUTAGE: {what} (since {since})"
        minutes = max(0.0, self.at - self.outage.since) / 60
        return f"cleared: {what} (from {since}, {minutes:.0f} min)"


@dataclass(frozen=True, slots=True)
class OutagesSnapshot:
    """Active outages, recent events and the platforms that are watched (for zeros)."""

    active: tuple[Outage, ...] = ()
    recent: tuple[OutageEvent, ...] = ()
    platforms: tuple[str, ...] = ()


def describe(o: Outage) -> str:
    cities = ", ".join(sorted(o.cities)) or "no city"
    vantages = ", ".join(sorted(o.vantages))
    if o.scope == "national" and o.platform == SILENT:
        return f"national disruption: probe agents fell silent at once ({cities})"
    if o.scope == "national" and o.platform == ALL_PLATFORMS:
        return f"internet shutdown: every probe vantage lost its uplink ({cities})"
    if o.scope == "national":
        return f"national disruption of several platforms in {cities}"
    if o.scope == "throttling":
        return f"{o.platform} throttled in {cities}"
    if o.scope == "uplink":
        return f"uplink down at vantage {vantages} ({cities})"
    return f"{o.platform} unreachable from {cities} while controls work"


def _clock_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


class OutageWatch:
    """Args:
    classifier: the debounced classifier (its thresholds and for/clear times).
    platforms: the platforms watched, so jalsa_outage can show zeros for them.
    on_event: called for every start and clear (after it is logged).
    clock: wall-clock time, the clock of the results' ``at``.
    keep: recent events remembered for the snapshot.
    """

    def __init__(
        self,
        classifier: Classifier,
        platforms: Iterable[str] = (),
        *,
        on_event: Callable[[OutageEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
        keep: int = 20,
    ) -> None:
        self.classifier = classifier
        self.platforms = tuple(p for p in dict.fromkeys(platforms) if p != CONTROL)
        self._on_event = on_event
        self._clock = clock
        self._results: dict[tuple[str, str, str, str, str], ProbeResult] = {}
        self._throughput: dict[tuple[str, str, str, str], ThroughputSample] = {}
        self._recent: deque[OutageEvent] = deque(maxlen=keep)

    def add(self, results: Iterable[ProbeResult], throughput: Iterable[ThroughputSample]) -> None:
        """Remember the latest result of each series (an older one never replaces it)."""
        for r in results:
            key = (r.vantage, r.city, r.isp, r.platform, r.check)
            seen = self._results.get(key)
            if seen is None or r.at >= seen.at:
                self._results[key] = r
        for s in throughput:
            tkey = (s.vantage, s.city, s.isp, s.platform)
            seen_sample = self._throughput.get(tkey)
            if seen_sample is None or s.at >= seen_sample.at:
                self._throughput[tkey] = s

    def now(self) -> float:
        return self._clock()

    def uplink_ok(self, vantage: Vantage) -> bool | None:
        """Whether ``vantage``'s latest fresh control probes all succeeded (None: none)."""
        now = self._clock()
        stale = self.classifier.thresholds.stale_after
        fresh = [
            r.success
            for (name, city, isp, platform, _), r in self._results.items()
            if (name, city, isp) == (vantage.name, vantage.city, vantage.isp)
            and platform == CONTROL
            and not is_stale(r.at, r.fresh_for, now, stale)
        ]
        return all(fresh) if fresh else None

    def evaluate(self, extra: Iterable[Outage] = ()) -> list[OutageEvent]:
        """Run the classifier now, with ``extra`` judgements made elsewhere (the silence of
        pushing agents); log and report what started and cleared."""
        now = self._clock()
        stale = self.classifier.thresholds.stale_after
        # Forget series long gone (an agent removed): memory stays bounded.
        for key in [k for k, r in self._results.items() if now - r.at > 10 * stale]:
            del self._results[key]
        for tkey in [k for k, s in self._throughput.items() if now - s.at > 10 * stale]:
            del self._throughput[tkey]
        transitions = self.classifier.update(
            self._results.values(), self._throughput.values(), now, extra
        )
        events = [OutageEvent("started", o, now) for o in transitions.started]
        events += [OutageEvent("cleared", o, now) for o in transitions.cleared]
        for event in events:
            if event.kind == "started":
                log.warning("%s", event.text)
            else:
                log.info("outage %s", event.text)
            self._recent.append(event)
            if self._on_event is not None:
                self._on_event(event)
        return events

    def snapshot(self) -> OutagesSnapshot:
        active = sorted(self.classifier.active, key=lambda o: (o.scope, o.platform, o.since))
        return OutagesSnapshot(tuple(active), tuple(self._recent), self.platforms)


def outage_series(snapshot: OutagesSnapshot) -> dict[tuple[str, str], int]:
    """(scope, platform) -> 1 while flagged, 0 otherwise, for every series worth showing."""
    series = {(scope, p): 0 for p in snapshot.platforms for scope in ("platform", "throttling")}
    series["national", ANY_PLATFORMS] = 0
    series["national", ALL_PLATFORMS] = 0
    series["uplink", CONTROL] = 0
    for o in snapshot.active:
        series[o.scope, o.platform] = 1
    return series
