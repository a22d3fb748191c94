"""What one probe round found, and its per-platform aggregate.

Per platform, a check succeeds if it succeeded for every target of the platform (its web
and ingest endpoints: we can stream only if both work); for ``control``, if it succeeded
for any control target, so one control site being down or blocked is not mistaken for a
lost uplink. Throughput is the best download of the platform. That aggregate is what
/metrics exports (:meth:`ProbeRound.outcomes`) and what the classifier gets
(:meth:`ProbeRound.probe_results`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from monitoring.outage import CONTROL, Check, ProbeResult, ThroughputSample

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Vantage:
    """Where the probes run from: the ``vantage``, ``city`` and ``isp`` labels."""

    name: str
    city: str
    isp: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    platform: str
    role: str
    host: str
    check: Check
    success: bool
    seconds: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResolverResult:
    platform: str
    host: str
    resolver: Literal["system", "control"]
    success: bool
    seconds: float
    addresses: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Download:
    platform: str
    host: str
    bytes: int
    seconds: float
    error: str | None = None

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ProbeRound:
    """Everything one round found, and its per-platform aggregate."""

    vantage: Vantage
    started_at: float
    finished_at: float
    checks: tuple[CheckResult, ...] = ()
    resolvers: tuple[ResolverResult, ...] = ()
    downloads: tuple[Download, ...] = ()
    platforms: tuple[str, ...] = field(default=())
    next_in: float = 0.0  # seconds to this vantage's next round, as it said (0: unsaid)

    def outcomes(self) -> dict[tuple[str, Check], tuple[bool, float]]:
        """(platform, check) -> (success, seconds), aggregated as the module says."""
        grouped: dict[tuple[str, Check], list[CheckResult]] = {}
        for c in self.checks:
            grouped.setdefault((c.platform, c.check), []).append(c)
        result = {}
        for (platform, check), items in grouped.items():
            if platform == CONTROL:
                good = [c.seconds for c in items if c.success]
                result[platform, check] = (
                    (True, min(good)) if good else (False, max(c.seconds for c in items))
                )
            else:
                result[platform, check] = (
                    all(c.success for c in items),
                    max(c.seconds for c in items),
                )
        return result

    def throughput(self) -> dict[str, float]:
        """platform -> the best download speed (bytes/s) of this round."""
        best: dict[str, float] = {}
        for d in self.downloads:
            if d.error is None and d.bytes > 0:
                best[d.platform] = max(best.get(d.platform, 0.0), d.bytes_per_second)
        return best

    def probe_results(self) -> list[ProbeResult]:
        v = self.vantage
        return [
            ProbeResult(v.name, v.city, v.isp, platform, check, ok, self.finished_at, self.next_in)
            for (platform, check), (ok, _) in self.outcomes().items()
        ]

    def throughput_samples(self) -> list[ThroughputSample]:
        v = self.vantage
        return [
            ThroughputSample(v.name, v.city, v.isp, platform, speed, self.finished_at)
            for platform, speed in self.throughput().items()
        ]


def log_changes(found: ProbeRound, seen: dict[str, bool]) -> None:
    """One log line per platform whose reachability changed (and none otherwise)."""
    failing: dict[str, str] = {}
    for c in found.checks:
        tried = c.error is not None and not c.error.startswith("not tried")
        if not c.success and tried and c.platform not in failing:
            failing[c.platform] = f"{c.check} {c.error} ({c.role} {c.host})"
    ok_now: dict[str, bool] = {}
    for (platform, _), (ok, _) in found.outcomes().items():
        ok_now[platform] = ok_now.get(platform, True) and ok
    v = found.vantage
    for platform, ok in sorted(ok_now.items()):
        if seen.get(platform) == ok:
            continue
        if ok:
            log.info("probes from %s: %s reachable", v.name, platform)
        else:
            reason = failing.get(platform, "failing")
            log.warning("probes from %s: %s failing: %s", v.name, platform, reason)
        seen[platform] = ok
