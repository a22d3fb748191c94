"""After the fact: when each vantage was measuring, and the outages its rounds show.

Pure: ``probe_round`` records (:mod:`monitoring.samples`) in, figures out. Pushing agents
upload what they measured while jalsa could not hear them, so the samples hold rounds the
live classifier never saw in time. The report therefore judges again:

- :func:`coverage`: per vantage, its rounds, how many arrived late, and the spans it was
  measuring: consecutive rounds at most ``gap_factor`` times its usual interval (the
  median) apart belong to one span, or no further apart than the earlier one said its
  next would come (``next_in``, plus half of that: an agent at its calm cadence). A
  silent agent has no span there, so an "all clear" from it is never taken for evidence.
- :func:`reclassify`: the debounced :class:`~monitoring.outage.Classifier`, run again
  over every round by its measurement time (late ones included), evaluated at each
  round's time (no two evaluations closer than ``step`` seconds) and once more
  ``clear_seconds`` after the last, on the last rounds as they were (so what went away
  before the end finishes clearing); each start-to-clear is a window. One still present
  at the end is open.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import cast

from monitoring.outage import Check, Classifier, Outage, ProbeResult, ThroughputSample

Record = dict[str, object]


@dataclass(frozen=True, slots=True)
class VantageCoverage:
    vantage: str
    city: str
    isp: str
    rounds: int
    late: int
    measuring: tuple[tuple[float, float], ...]  # (from, to) spans


@dataclass(frozen=True, slots=True)
class JudgedWindow:
    scope: str
    platform: str
    start: float
    end: float
    open: bool
    cities: tuple[str, ...]
    vantages: tuple[str, ...]


def _rounds(records: Iterable[Record]) -> list[Record]:
    found = [
        r
        for r in records
        if r.get("type") == "probe_round" and isinstance(r.get("measured"), int | float)
    ]
    return sorted(found, key=lambda r: cast(float, r["measured"]))


def _next_in(record: Record) -> float:
    """When the round's agent said its next round comes (0: it did not say)."""
    value = record.get("next_in", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def coverage(records: Iterable[Record], gap_factor: float = 3.0) -> tuple[VantageCoverage, ...]:
    by_vantage: dict[tuple[str, str, str], list[Record]] = {}
    for r in _rounds(records):
        key = (str(r.get("vantage")), str(r.get("city")), str(r.get("isp")))
        by_vantage.setdefault(key, []).append(r)
    found = []
    for (name, city, isp), rounds in sorted(by_vantage.items()):
        times = [cast(float, r["measured"]) for r in rounds]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        usual = statistics.median(gaps) if gaps else 0.0
        spans: list[tuple[float, float]] = [(times[0], times[0])]
        for before, at, gap in zip(rounds, times[1:], gaps, strict=False):
            if gap > max(gap_factor * usual, 1.5 * _next_in(before)):
                spans.append((at, at))
            else:
                spans[-1] = (spans[-1][0], at)
        late = sum(1 for r in rounds if r.get("late") is True)
        found.append(VantageCoverage(name, city, isp, len(rounds), late, tuple(spans)))
    return tuple(found)


def _window(o: Outage, start: float, end: float, still_open: bool) -> JudgedWindow:
    cities, vantages = tuple(sorted(o.cities)), tuple(sorted(o.vantages))
    return JudgedWindow(o.scope, o.platform, start, end, still_open, cities, vantages)


def reclassify(
    records: Iterable[Record],
    *,
    for_seconds: float = 60.0,
    clear_seconds: float = 120.0,
    step: float = 2.0,
) -> tuple[JudgedWindow, ...]:
    rounds = _rounds(records)
    if not rounds:
        return ()
    classifier = Classifier(for_seconds=for_seconds, clear_seconds=clear_seconds)
    results: dict[tuple[str, str, str, str, str], ProbeResult] = {}
    speeds: dict[tuple[str, str, str, str], ThroughputSample] = {}
    windows: list[JudgedWindow] = []
    last_at = float(cast(float, rounds[-1]["measured"]))
    tail = clear_seconds + step
    evaluated: float | None = None

    def evaluate(now: float, shift: float = 0.0) -> None:
        if shift:
            moved = [replace(r, at=r.at + shift) for r in results.values()]
            later = [replace(s, at=s.at + shift) for s in speeds.values()]
            changes = classifier.update(moved, later, now)
        else:
            changes = classifier.update(results.values(), speeds.values(), now)
        for o in changes.cleared:
            windows.append(_window(o, o.since, now, False))

    for i, r in enumerate(rounds):
        at = float(cast(float, r["measured"]))
        v = (str(r.get("vantage")), str(r.get("city")), str(r.get("isp")))
        for platform, check, ok in cast(list[list[object]], r.get("results") or []):
            key = (*v, str(platform), str(check))
            results[key] = ProbeResult(
                *v, str(platform), cast(Check, check), ok is True, at, _next_in(r)
            )
        for platform, speed in cast(list[list[object]], r.get("throughput") or []):
            speeds[(*v, str(platform))] = ThroughputSample(
                *v, str(platform), float(cast(float, speed)), at
            )
        following = rounds[i + 1]["measured"] if i + 1 < len(rounds) else None
        if following == at:
            continue  # evaluate once every round measured at this instant is in
        if evaluated is None or at - evaluated >= step:
            evaluate(at)
            evaluated = at
    evaluate(last_at + tail, shift=tail)
    for o in classifier.active:
        windows.append(_window(o, o.since, last_at, True))
    return tuple(sorted(windows, key=lambda w: (w.start, w.scope, w.platform)))
