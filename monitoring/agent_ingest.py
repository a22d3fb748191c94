"""jalsa's side of pushing agents: check each submitted round, keep what is trusted.

Sans-I/O apart from the registry it is given (the arrival time is passed in). The checks
of :meth:`AgentIngest.submit`, in order (the ``reason`` of ``jalsa_agent_rejected_total``
and the HTTP status in brackets):

1. ``unavailable`` (503): the registry cannot be read: nobody is trusted until repaired.
2. ``unknown_agent`` (401): no such enrolled agent.
3. ``bad_signature`` (401): the signature is not the body's under the agent's key (a
   forged or tampered body); ``revoked`` (403) when the agent is revoked or the body is
   signed with the key of an older link.
4. ``malformed`` / ``labels`` / ``timing`` (422): see :mod:`monitoring.round_wire`; also
   ``labels`` when the vantage, city or ISP is not the registry's.
5. Clock skew: ``sent_at`` minus the arrival. Beyond ``skew_tolerance`` the round's
   times are corrected by it (and the skew exported); a round that still ends after the
   arrival (plus ``future_slack``) is ``timing``; one measured more than ``keep`` before
   the arrival is ``too_old``.
6. ``replay`` (409): this agent's sequence number was accepted already (a replay, or the
   agent sending again a round whose answer it lost: it then drops it).
7. ``too_fast`` (422): another accepted round of the agent started within ``min_gap``.

Nothing about a refused submission is kept beyond the count of its reason: no labels, so
a forger can put nothing in the metrics. An accepted round is *late* when it arrives
after a newer round of its agent (it came from the agent's backlog) or more than
``late_after`` seconds after it was measured; it is kept by its measurement
time, so it never replaces a newer round in the live view, and ``on_round`` gets it (the
samples, for the report, and the classifier).

An agent downloads (throughput) only every few rounds: the live view of it
(:meth:`AgentIngest.latest_rounds`) is its newest round with, for each platform that
round did not download, the newest speed measured within ``throughput_keep`` seconds
before it (the classifier's ``throughput_stale_after``), so ``jalsa_probe_throughput_*``
and the alert rules see what the classifier sees. An agent whose newest round is older than
``stale_after`` (the classifier's) has no live view: its ``jalsa_probe_*`` series leave
``/metrics`` (Prometheus marks them stale), so a silent agent's last "all clear" is not
read as a current one; ``jalsa_agent_last_round_timestamp_seconds`` still says when it
last measured.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from monitoring.agent_link import AGENT_ID, verify_body
from monitoring.agent_registry import EnrolledAgent
from monitoring.outage import is_stale
from monitoring.probe_round import Download, ProbeRound, Vantage
from monitoring.round_wire import Context, PushedRound, Refused, read_round

log = logging.getLogger(__name__)

KEEP_SECONDS: Final = 86400.0
REASONS: Final = (
    "unavailable",
    "unknown_agent",
    "bad_signature",
    "revoked",
    "malformed",
    "labels",
    "timing",
    "too_old",
    "replay",
    "too_fast",
)
_STATUS: Final = {
    "unavailable": 503,
    "unknown_agent": 401,
    "bad_signature": 401,
    "revoked": 403,
    "replay": 409,
}


class Registry(Protocol):
    @property
    def agents(self) -> Mapping[str, EnrolledAgent]: ...
    @property
    def problem(self) -> str | None: ...
    def key(self, agent: str, generation: int) -> bytes: ...
    def refresh(self) -> None:
        """Re-read the enrolled agents (blocking: the caller runs it in a thread)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int
    reason: str | None = None  # None: accepted
    late: bool = False

    @property
    def text(self) -> str:
        if self.reason is None:
            return "late round accepted" if self.late else "accepted"
        return self.reason


@dataclass(frozen=True, slots=True)
class Accepted:
    """A trusted round, its times on jalsa's clock."""

    round: ProbeRound
    country: str
    arrival: float
    late: bool
    skew: float
    seq: int


@dataclass(slots=True)
class _Agent:
    vantage: Vantage
    country: str
    seqs: dict[int, float] = field(default_factory=dict)  # seq -> finished_at (corrected)
    starts: list[float] = field(default_factory=list)  # accepted started_at, sorted
    latest: ProbeRound | None = None
    first_measured: float | None = None
    last_arrival: float = 0.0
    on_time: int = 0
    late: int = 0
    skew: float = 0.0
    backlog: int = 0
    context: Context = field(default_factory=Context)
    speeds: dict[str, tuple[float, float]] = field(default_factory=dict)  # -> (B/s, at)

    def live(self, keep: float) -> ProbeRound | None:
        """The newest round, with the speeds of the platforms it did not download."""
        if self.latest is None:
            return None
        now = self.latest.finished_at
        measured = {d.platform for d in self.latest.downloads}
        older = tuple(
            Download(platform, "", round(bps), 1.0)
            for platform, (bps, at) in sorted(self.speeds.items())
            if platform not in measured and 0 <= now - at <= keep
        )
        if not older:
            return self.latest
        return dataclasses.replace(self.latest, downloads=self.latest.downloads + older)


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent, for the metrics and the console."""

    vantage: Vantage
    country: str
    latest: ProbeRound | None
    first_measured: float | None
    last_arrival: float
    on_time: int
    late: int
    skew: float
    backlog: int
    context: Context


@dataclass(frozen=True, slots=True)
class AgentsSnapshot:
    agents: tuple[AgentView, ...] = ()
    rejected: tuple[tuple[str, int], ...] = ()


class AgentIngest:
    """Args:
    registry: the enrolled agents and their keys.
    on_round: called with each accepted round.
    keep: how old a round may be (seconds before its arrival) and how long sequence
        numbers are remembered.
    skew_tolerance: a clock skew beyond this is corrected and flagged.
    late_after: a round arriving this long after it was measured is late.
    min_gap: the least time between the starts of two rounds of one agent.
    future_slack: how far after its arrival a corrected round may end.
    throughput_keep: how long a speed stays in the live view (see the module).
    stale_after: how long an agent's newest round stays in the live view.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        on_round: Callable[[Accepted], None] | None = None,
        keep: float = KEEP_SECONDS,
        skew_tolerance: float = 10.0,
        late_after: float = 90.0,
        min_gap: float = 1.0,
        future_slack: float = 5.0,
        throughput_keep: float = 900.0,
        stale_after: float = 120.0,
    ) -> None:
        self.registry = registry
        self._on_round = on_round
        self.keep = keep
        self.skew_tolerance = skew_tolerance
        self.late_after = late_after
        self.min_gap = min_gap
        self.future_slack = future_slack
        self.throughput_keep = throughput_keep
        self.stale_after = stale_after
        self.rejected: Counter[str] = Counter()
        self._agents: dict[str, _Agent] = {}

    def _refuse(self, reason: str, agent: str | None = None, detail: str = "") -> Verdict:
        self.rejected[reason] += 1
        if agent is not None:  # authenticated: worth a line (unauthenticated ones could flood)
            log.warning("probe agent %s: round refused: %s %s", agent, reason, detail)
        return Verdict(_STATUS.get(reason, 422), reason)

    def submit(self, agent: str, body: bytes, signature: str, arrival: float) -> Verdict:
        """Check one submission (see the module's docstring) and keep it if trusted."""
        if self.registry.problem is not None:
            return self._refuse("unavailable")
        enrolled = self.registry.agents.get(agent) if AGENT_ID.fullmatch(agent) else None
        if enrolled is None:
            return self._refuse("unknown_agent")
        if not verify_body(self.registry.key(agent, enrolled.generation), body, signature):
            older = any(
                verify_body(self.registry.key(agent, g), body, signature)
                for g in range(max(0, enrolled.generation - 20), enrolled.generation)
            )
            return self._refuse("revoked" if older else "bad_signature")
        if enrolled.revoked:
            return self._refuse("revoked")
        try:
            pushed = read_round(body)
        except Refused as refused:
            return self._refuse(refused.reason, agent, str(refused))
        if pushed.agent != agent or pushed.generation != enrolled.generation:
            return self._refuse("malformed", agent, "the body is for another agent or link")
        v = pushed.round.vantage
        if (v.name, v.city, v.isp) != (agent, enrolled.city, enrolled.isp):
            return self._refuse("labels", agent, f"{v} is not the enrolled labels")
        return self._accept(pushed, enrolled.country, arrival)

    def _accept(self, pushed: PushedRound, country: str, arrival: float) -> Verdict:
        agent, found = pushed.agent, pushed.round
        skew = pushed.sent_at - arrival
        if abs(skew) > self.skew_tolerance:
            found = dataclasses.replace(
                found, started_at=found.started_at - skew, finished_at=found.finished_at - skew
            )
        if found.finished_at > arrival + self.future_slack:
            return self._refuse("timing", agent, "the round ends after it arrived")
        if found.finished_at < arrival - self.keep:
            return self._refuse("too_old", agent)
        state = self._agents.get(agent)
        if state is None or state.vantage != found.vantage:
            state = self._agents[agent] = _Agent(found.vantage, country)
        if pushed.seq in state.seqs:
            return self._refuse("replay", agent, f"seq {pushed.seq}")
        at = bisect.bisect_left(state.starts, found.started_at)
        near = state.starts[max(0, at - 1) : at + 1]
        if any(abs(s - found.started_at) < self.min_gap for s in near):
            return self._refuse("too_fast", agent)
        self._forget(state, arrival)
        state.seqs[pushed.seq] = found.finished_at
        state.starts.insert(at, found.started_at)
        newer = state.latest is not None and state.latest.finished_at > found.finished_at
        late = newer or arrival - found.finished_at > self.late_after
        if late:
            state.late += 1
        else:
            state.on_time += 1
        if state.latest is None or found.finished_at >= state.latest.finished_at:
            state.latest = found
            state.backlog = pushed.backlog
        for platform, bps in found.throughput().items():
            if platform not in state.speeds or state.speeds[platform][1] <= found.finished_at:
                state.speeds[platform] = (bps, found.finished_at)
        if state.first_measured is None or found.started_at < state.first_measured:
            state.first_measured = found.started_at
        state.last_arrival = arrival
        state.skew = skew
        state.context = pushed.context
        state.country = country
        if self._on_round is not None:
            self._on_round(Accepted(found, country, arrival, late, skew, pushed.seq))
        return Verdict(200, None, late)

    def remember(self, found: ProbeRound, seq: int, country: str = "") -> None:
        """A round accepted before a restart (from the samples): its sequence number and
        start are known again, so it cannot be accepted twice."""
        agent = found.vantage.name
        state = self._agents.get(agent)
        if state is None:
            state = self._agents[agent] = _Agent(found.vantage, country)
        if seq not in state.seqs:
            state.seqs[seq] = found.finished_at
            bisect.insort(state.starts, found.started_at)

    def _forget(self, state: _Agent, now: float) -> None:
        """Drop sequence numbers and starts older than ``keep`` (a round that old is
        ``too_old`` anyway): memory stays bounded by what an agent can send in a day."""
        horizon = now - self.keep - self.late_after
        if state.starts and state.starts[0] < horizon:
            cut = bisect.bisect_left(state.starts, horizon)
            del state.starts[:cut]
            for seq in [s for s, at in state.seqs.items() if at < horizon]:
                del state.seqs[seq]

    def latest_rounds(self, now: float) -> list[ProbeRound]:
        """Each agent's live view at ``now``: see the module."""
        return [
            r
            for a in self._agents.values()
            if (r := a.live(self.throughput_keep))
            and not is_stale(r.finished_at, r.next_in, now, self.stale_after)
        ]

    def snapshot(self) -> AgentsSnapshot:
        views = tuple(
            AgentView(
                a.vantage,
                a.country,
                a.latest,
                a.first_measured,
                a.last_arrival,
                a.on_time,
                a.late,
                a.skew,
                a.backlog,
                a.context,
            )
            for _, a in sorted(self._agents.items())
            if a.last_arrival > 0  # not those only remembered from before a restart
        )
        return AgentsSnapshot(views, tuple(sorted(self.rejected.items())))
