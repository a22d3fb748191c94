"""Probe results of remote ``jalsa probe`` agents, read from their /metrics.

One vantage can never raise a platform-wide or national outage, so jalsa's own
classifier reads the agents' latest rounds too (``[monitoring] agents``), sending each
agent's bearer token when the event gives one (``jalsa probe --token-file``). Each agent's
exposition is turned back into :class:`~monitoring.outage.ProbeResult` and
:class:`~monitoring.outage.ThroughputSample`, timed by the agent's
``jalsa_probe_round_timestamp_seconds`` so a stuck agent goes stale. An agent that
cannot be read is skipped (its old results go stale in the classifier); one log line
per change of its state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from monitoring.outage import ProbeResult, ThroughputSample
from orchestrator.event.monitoring_spec import AgentSpec
from orchestrator.event.secret import sanitize_url

log = logging.getLogger(__name__)

TIMEOUT: Final = 10.0
MAX_BODY: Final = 1 << 20
_CHECKS: Final = ("dns", "tcp", "tls", "http")


def parse_agent_metrics(
    text: str, fetched_at: float
) -> tuple[list[ProbeResult], list[ThroughputSample]]:
    """The probe results in an agent's exposition.

    Raises:
        ValueError: the text is not Prometheus exposition format.
    """
    rounds: dict[tuple[str, str, str], float] = {}
    success: list[tuple[dict[str, str], float]] = []
    speed: list[tuple[dict[str, str], float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "jalsa_probe_round_timestamp_seconds":
                labels = sample.labels
                rounds[labels["vantage"], labels["city"], labels["isp"]] = sample.value
            elif sample.name == "jalsa_probe_success":
                success.append((sample.labels, sample.value))
            elif sample.name == "jalsa_probe_throughput_bytes_per_second":
                speed.append((sample.labels, sample.value))
    results = []
    for labels, value in success:
        check = labels.get("check", "")
        if check not in _CHECKS:
            continue
        v = (labels.get("vantage", ""), labels.get("city", ""), labels.get("isp", ""))
        at = rounds.get(v, fetched_at)
        results.append(ProbeResult(*v, labels.get("platform", ""), check, value >= 1, at))  # type: ignore[arg-type]
    samples = []
    for labels, value in speed:
        v = (labels.get("vantage", ""), labels.get("city", ""), labels.get("isp", ""))
        samples.append(
            ThroughputSample(*v, labels.get("platform", ""), value, rounds.get(v, fetched_at))
        )
    return results, samples


class AgentFeed:
    """Reads every agent's /metrics.

    Args:
        agents: the agents (or bare /metrics URLs of agents that want no token).
        timeout: per agent.
    """

    def __init__(self, agents: Sequence[AgentSpec | str], *, timeout: float = TIMEOUT) -> None:
        self.agents = tuple(AgentSpec(a) if isinstance(a, str) else a for a in agents)
        self._timeout = timeout
        self._failing: dict[str, str | None] = {}

    async def read(
        self, session: aiohttp.ClientSession, now: float
    ) -> tuple[list[ProbeResult], list[ThroughputSample]]:
        gathered = await asyncio.gather(*(self._one(session, a, now) for a in self.agents))
        results = [r for rs, _ in gathered for r in rs]
        samples = [s for _, ss in gathered for s in ss]
        return results, samples

    async def _one(
        self, session: aiohttp.ClientSession, agent: AgentSpec, now: float
    ) -> tuple[list[ProbeResult], list[ThroughputSample]]:
        url = agent.url
        problem: str | None = None
        found: tuple[list[ProbeResult], list[ThroughputSample]] = ([], [])
        headers = {"Authorization": f"Bearer {agent.token.reveal()}"} if agent.token else {}
        try:
            async with session.get(
                url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,  # the token goes to the agent's own URL only
            ) as response:
                if response.status == 401:
                    problem = (
                        "HTTP 401: the agent wants a token: give this agent token = ... "
                        "(the agent's --token-file) in [monitoring] agents"
                        if agent.token is None
                        else "HTTP 401: the agent refused the token: check it against its "
                        "--token-file"
                    )
                elif response.status != 200:
                    problem = f"HTTP {response.status}"
                else:
                    body = await response.content.read(MAX_BODY)
                    text = body.decode("utf-8", "replace")
                    # Parsing a big page takes a while: not on the event loop.
                    found = await asyncio.to_thread(parse_agent_metrics, text, now)
        except TimeoutError:
            problem = "timeout"
        except aiohttp.ClientError as error:
            problem = type(error).__name__
        except ValueError:
            problem = "not Prometheus metrics"
        if self._failing.get(url, "unseen") != problem:
            if problem is None:
                log.info("probe agent %s: reading it", sanitize_url(url))
            else:
                log.warning(
                    "probe agent %s: %s (its results will go stale)", sanitize_url(url), problem
                )
        self._failing[url] = problem
        return found
