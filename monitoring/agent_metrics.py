"""``jalsa_agent_*``: the pushing agents' coverage and the submissions refused.

The agents' probe results themselves are the usual ``jalsa_probe_*`` series
(:class:`~monitoring.metrics.ProbeCollector`). These say how far to trust them: when
each agent last measured and last delivered, how many rounds came late, its clock skew
and backlog, and every refused submission by reason only (never with labels a forger
chose).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.agent_ingest import REASONS, AgentsSnapshot

_LABELS = ["vantage", "city", "isp"]


class AgentCollector(Collector):
    def __init__(self, snapshot: Callable[[], AgentsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        found = self._snapshot()
        rounds = CounterMetricFamily(
            "jalsa_agent_rounds",
            "Rounds accepted from a pushing agent; arrival=late: uploaded from its backlog "
            "(after a newer round, or over 90 s after it was measured)",
            labels=[*_LABELS, "arrival"],
        )
        measured = GaugeMetricFamily(
            "jalsa_agent_last_round_timestamp_seconds",
            "When the agent's newest accepted round was measured (Unix time, jalsa's clock)",
            labels=_LABELS,
        )
        uploaded = GaugeMetricFamily(
            "jalsa_agent_last_upload_timestamp_seconds",
            "When jalsa last accepted a round from the agent (Unix time)",
            labels=_LABELS,
        )
        skew = GaugeMetricFamily(
            "jalsa_agent_clock_skew_seconds",
            "The agent's clock minus jalsa's at its last upload (beyond 10 s its times are "
            "corrected by it)",
            labels=_LABELS,
        )
        backlog = GaugeMetricFamily(
            "jalsa_agent_backlog_rounds",
            "Rounds the agent still had to upload when it sent its newest one",
            labels=_LABELS,
        )
        info = GaugeMetricFamily(
            "jalsa_agent_info",
            "1 per agent: its country and connectivity context as it reports it",
            labels=[*_LABELS, "country", "network", "asn", "resolver"],
        )
        for a in found.agents:
            v = [a.vantage.name, a.vantage.city, a.vantage.isp]
            rounds.add_metric([*v, "on_time"], a.on_time)
            rounds.add_metric([*v, "late"], a.late)
            if a.latest is not None:
                measured.add_metric(v, a.latest.finished_at)
            uploaded.add_metric(v, a.last_arrival)
            skew.add_metric(v, a.skew)
            backlog.add_metric(v, a.backlog)
            c = a.context
            asn = "" if c.asn is None else str(c.asn)
            info.add_metric([*v, a.country, c.network, asn, c.resolver], 1)
        rejected = CounterMetricFamily(
            "jalsa_agent_rejected",
            "Submissions refused, by reason (bad_signature, revoked, replay, timing, ...)",
            labels=["reason"],
        )
        counts = dict(found.rejected)
        for reason in REASONS:
            rejected.add_metric([reason], counts.get(reason, 0))
        yield from (rounds, measured, uploaded, skew, backlog, info, rejected)
