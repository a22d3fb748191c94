"""Everything ``jalsa run`` watches beside the show: listeners, probes, outages, samples.

One object for the service to start beside the show and cancel on shutdown::

    watch = Watch(event, state_dir, show.snapshot)
    registry = build_registry(show.snapshot, watch.collectors())
    task = asyncio.create_task(watch.run())
    ...
    task.cancel(); await watch.close()

What runs depends on the event file (``[monitoring]``, ``[destinations.listeners]``):
listener pollers for destinations that have a source of counts; the sampler always;
probes from this machine only with ``probes = true`` (so an offline laptop running the
demo sends nothing to the internet); the classifier when there are probes or agents,
or from the moment an agent is enrolled while jalsa runs (``jalsa agents add``: the
registry is re-read every few seconds); the webhook when one is set. A component that
fails is logged and restarted; it never stops the others or the show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from prometheus_client.registry import Collector

from monitoring.agent_ingest import Accepted, AgentIngest
from monitoring.agent_metrics import AgentCollector
from monitoring.agent_registry import AgentRegistry
from monitoring.hls_viewers import HlsViewers
from monitoring.listeners import Listeners, ListenersSnapshot
from monitoring.metrics import ListenerCollector, OutageCollector, ProbeCollector
from monitoring.metrics_endpoint import Bind, unbound
from monitoring.outage import Classifier, Outage
from monitoring.outage_watch import OutageEvent, OutagesSnapshot, OutageWatch
from monitoring.probe_round import ProbeRound, Vantage, log_changes
from monitoring.samples import SampleLog, Sampler, read_records, round_record
from monitoring.show_view import ShowView
from monitoring.silence import Presence, silent_countries
from monitoring.targets import DEFAULT_TARGETS, Targets, load_targets
from orchestrator.event import Event

if TYPE_CHECKING:
    # Loaded only for an event that uses them: the HTTP client (aiohttp) and the DNS
    # probes (dnspython) cost about 0.3 CPU s of start-up, and most events use neither.
    from monitoring.agent_scrape import AgentFeed
    from monitoring.probes import Prober
    from monitoring.webhook import Webhook

log = logging.getLogger(__name__)

RESTART_SECONDS: Final = 5.0
EVALUATE_SECONDS: Final = 5.0  # cheap: the classifier, and reading the agents


@dataclass(frozen=True, slots=True)
class WatchSnapshot:
    listeners: ListenersSnapshot
    probes: ProbeRound | None
    outages: OutagesSnapshot


class Watch:
    """Args:
        event: the validated event (its ``monitoring`` and destinations).
        state_dir: samples go to ``<state_dir>/samples``.
        show: the show's snapshot, for the samples.
        clock: wall-clock time.

    Raises:
        EventError: the ``[monitoring] targets`` file is invalid.
    """

    def __init__(
        self,
        event: Event,
        state_dir: Path,
        show: Callable[[], ShowView],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        spec = event.monitoring
        self.spec = spec
        self.hls_viewers = HlsViewers()
        self._clock = clock
        self.listeners = Listeners(event.destinations, self.hls_viewers, clock=clock)
        self.sampler = Sampler(
            SampleLog(state_dir / "samples", clock=clock),
            show,
            self.listeners.snapshot,
            every=spec.sample_seconds,
            clock=clock,
        )
        self.prober: Prober | None = None
        targets: Targets | None = None
        if spec.probes:
            if spec.targets is not None:
                targets = load_targets(spec.targets)
            else:
                targets = replace(DEFAULT_TARGETS, control_resolver=spec.control_resolver)
            from monitoring.probes import Prober

            vantage = Vantage(spec.vantage, spec.city, spec.isp)
            self.prober = Prober(vantage, targets, clock=clock)
        self.agents: AgentFeed | None = None
        if spec.agents:
            from monitoring.agent_scrape import AgentFeed

            self.agents = AgentFeed(spec.agents)
        self.webhook: Webhook | None = None
        if spec.webhook is not None:
            from monitoring.redirect import mirror_links
            from monitoring.webhook import Webhook

            # A started outage's post also tells listeners where the mirror is.
            mirrors = mirror_links(event.destinations)
            self.webhook = Webhook(spec.webhook, mirrors=mirrors, event=event.info.name)
        classifier = Classifier(
            for_seconds=spec.outage_for_seconds, clear_seconds=spec.outage_clear_seconds
        )
        self.outages = OutageWatch(
            classifier,
            targets.platforms if targets is not None else (),
            on_event=self._on_outage,
            clock=clock,
        )
        self._round: ProbeRound | None = None
        self._platform_ok: dict[str, bool] = {}
        # Pushing agents (jalsa agents add): their rounds arrive at POST /agents/<id>/rounds.
        self.agent_registry = AgentRegistry(state_dir)
        self.agent_ingest = AgentIngest(
            self.agent_registry,
            on_round=self._on_agent_round,
            throughput_keep=classifier.thresholds.throughput_stale_after,
            stale_after=classifier.thresholds.stale_after,
        )
        self.sampler.note(
            {
                "type": "classifier",
                "for_seconds": spec.outage_for_seconds,
                "clear_seconds": spec.outage_clear_seconds,
            }
        )

    @property
    def judging(self) -> bool:
        """Whether the classifier has anything to judge: own probes, scraped agents, or
        pushing agents enrolled (at the start or since)."""
        return (
            self.prober is not None or self.agents is not None or bool(self.agent_registry.agents)
        )

    def collectors(self, bind: Bind = unbound) -> list[Collector]:
        """The collectors of what the Watch sees; ``bind`` wraps their snapshot functions
        (:class:`~monitoring.metrics_endpoint.OnLoop`: /metrics renders in a thread)."""
        found: list[Collector] = [ListenerCollector(bind(self.listeners.snapshot))]
        found.append(
            ProbeCollector(
                bind(lambda: self._round),
                bind(lambda: self.agent_ingest.latest_rounds(self._clock())),
            )
        )
        found.append(AgentCollector(bind(self.agent_ingest.snapshot)))
        found.append(OutageCollector(bind(self._judged)))
        return found

    def _judged(self) -> OutagesSnapshot | None:
        """The outages, once there is something to judge (none: no jalsa_outage)."""
        return self.outages.snapshot() if self.judging else None

    def snapshot(self) -> WatchSnapshot:
        return WatchSnapshot(self.listeners.snapshot(), self._round, self.outages.snapshot())

    def _remember_agents(self) -> None:
        """The pushing agents' rounds of the last day, from the samples: a restart must
        not let a round be accepted twice (blocking: run it in a thread)."""
        horizon = time.time() - self.agent_ingest.keep
        for r in read_records(self.sampler.log.folder):
            if r.get("type") != "probe_round" or not isinstance(r.get("seq"), int):
                continue
            try:
                measured, started = float(r["measured"]), float(r["started"])
                vantage = Vantage(str(r["vantage"]), str(r["city"]), str(r["isp"]))
            except (KeyError, TypeError, ValueError):
                continue
            if measured >= horizon:
                found = ProbeRound(vantage, started, measured)
                self.agent_ingest.remember(found, r["seq"])

    async def run(self) -> None:
        """Run every component until cancelled."""
        await asyncio.to_thread(self._remember_agents)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._guard("listeners", self.listeners.run))
            group.create_task(self._guard("samples", self.sampler.run))
            if self.prober is not None:
                group.create_task(self._guard("probes", self._probe))
            # always: agents may be enrolled while jalsa runs (the registry is re-read)
            group.create_task(self._guard("outages", self._evaluate))
            if self.webhook is not None:
                group.create_task(self._guard("webhook", self.webhook.run))

    async def close(self) -> None:
        """After :meth:`run` is cancelled: write the last samples."""
        await self.sampler.close()

    # -- components --------------------------------------------------------------------------
    async def _guard(self, name: str, component: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await component()
                return
            except Exception as error:
                log.error(
                    "monitoring: %s failed (%s); restarting in %gs",
                    name,
                    type(error).__name__,
                    RESTART_SECONDS,
                )
                log.debug("monitoring: %s failed", name, exc_info=True)
                await asyncio.sleep(RESTART_SECONDS)

    async def _probe(self) -> None:
        assert self.prober is not None
        v = self.prober.vantage
        log.info(
            "probes: from vantage %s (%s, %s) every %gs",
            v.name,
            v.city,
            v.isp,
            self.spec.probe_seconds,
        )
        while True:
            started = time.monotonic()
            found = await self.prober.round()
            self._round = found
            self.outages.add(found.probe_results(), found.throughput_samples())
            self.sampler.note(round_record(found, arrival=found.finished_at))
            log_changes(found, self._platform_ok)
            self.outages.evaluate()  # at once, not at the next tick of _evaluate
            await asyncio.sleep(max(0.0, self.spec.probe_seconds - (time.monotonic() - started)))

    async def _evaluate(self) -> None:
        """Re-read the agent registry (``jalsa agents add|revoke``), read the scraped
        agents, and run the classifier whenever there is something to judge."""
        every = min(EVALUATE_SECONDS, self.spec.probe_seconds)
        judged = False
        async with contextlib.AsyncExitStack() as stack:
            session = None
            if self.agents is not None:
                import aiohttp

                session = await stack.enter_async_context(aiohttp.ClientSession())
            while True:
                if self.agents is not None and session is not None:
                    results, samples = await self.agents.read(session, time.time())
                    self.outages.add(results, samples)
                await asyncio.to_thread(self.agent_registry.refresh)
                if self.judging:
                    if not judged and self.prober is None and self.agents is None:
                        log.info("outages: judging the rounds of the enrolled probe agents")
                    judged = True
                    self.outages.evaluate(self._silence())
                await asyncio.sleep(every)

    def _on_agent_round(self, accepted: Accepted) -> None:
        found = accepted.round
        self.outages.add(found.probe_results(), found.throughput_samples())
        self.sampler.note(
            round_record(
                found,
                arrival=accepted.arrival,
                late=accepted.late,
                skew=accepted.skew,
                seq=accepted.seq,
            )
        )

    def _silence(self) -> set[Outage]:
        """Many pushing agents of one country silent at once, while jalsa's own control
        probes work (without own probes, silence cannot be told from our own outage)."""
        if self.prober is None:
            return set()
        now = self.outages.now()
        stale = self.outages.classifier.thresholds.stale_after
        presence = [
            Presence(
                a.vantage.name,
                a.vantage.city,
                a.country,
                a.last_arrival,
                a.latest.next_in if a.latest is not None else 0.0,
            )
            for a in self.agent_ingest.snapshot().agents
        ]
        home = self.outages.uplink_ok(self.prober.vantage)
        return silent_countries(presence, now, silent_after=stale, home_uplink_ok=home)

    def _on_outage(self, event: OutageEvent) -> None:
        self.sampler.outage(event)
        if self.webhook is not None:
            self.webhook.notify(event)
