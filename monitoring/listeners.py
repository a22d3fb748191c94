"""Listener counts per destination: platform APIs and Icecast polled, the HLS mirror counted.

Each polled destination has its own :class:`ListenerPoller`: it asks, judges the answer
(:mod:`monitoring.platform_apis`), keeps the last good value with its time, counts
errors by reason, and waits as :class:`~monitoring.poll_schedule.PollSchedule` says
(429 + Retry-After and quota errors back off). :class:`Listeners` owns the pollers, the
HTTP session and their tasks; its :meth:`Listeners.snapshot` is what /metrics, the
sampler and the console read.

A YouTube poller's one request also says whether the broadcast is live
(:mod:`monitoring.broadcast`): each answer gives the count and a verdict, handed to
:attr:`Listeners.broadcasts`. There is no second client polling the same video.

Credentials never leave :func:`~monitoring.platform_apis.request_for`: log lines and
snapshots carry the URL without its query, and error details are built from the error's
kind (never an exception's text, which may quote the URL) and scrubbed of every secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from monitoring.broadcast import Broadcasts, unreachable, youtube_verdict
from monitoring.hls_viewers import HlsViewers
from monitoring.platform_apis import (
    REASONS,
    ApiRequest,
    Count,
    Failure,
    Outcome,
    PolledSpec,
    Reason,
    icecast_html_url,
    parse_icecast_html,
    parse_response,
    request_for,
    scrub,
    secrets_of,
)
from monitoring.poll_schedule import PollSchedule
from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.listener_spec import (
    FacebookListeners,
    HlsListeners,
    IcecastListeners,
    ListenerSpec,
    TwitchListeners,
    XListeners,
    YouTubeListeners,
    listener_spec,
)
from orchestrator.event.secret import redact

if TYPE_CHECKING:
    # aiohttp is loaded when there is something to poll (it costs about a quarter of a CPU
    # second to import, and most events poll nothing): see Listeners.run.
    import aiohttp

log = logging.getLogger(__name__)

REQUEST_TIMEOUT: Final = 10.0
MAX_BODY: Final = 1 << 20  # a listener count never needs more; a bigger body is cut
USER_AGENT: Final = "jalsa-listeners/0.1"


def listener_platform(spec: ListenerSpec) -> str:
    """The ``platform`` label of a listener source (``hls`` and ``icecast`` for our own)."""
    if isinstance(spec, YouTubeListeners):
        return "youtube"
    if isinstance(spec, FacebookListeners):
        return "facebook"
    if isinstance(spec, TwitchListeners):
        return "twitch"
    if isinstance(spec, XListeners):
        return "x"
    if isinstance(spec, IcecastListeners):
        return "icecast"
    return "hls"


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one request."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    at: float  # wall-clock time of the answer

    def json(self) -> Any:
        """The body as JSON; None if it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class DestinationListeners:
    """One destination's listener count.

    Attributes:
        value: the last good count; None until the first one.
        updated_at: wall-clock time of ``value``.
        age_seconds: how old ``value`` is now.
        errors: failed polls so far, by reason.
        last_error: what the last failure was (no secrets), cleared by a success.
    """

    destination: str
    platform: str
    value: int | None
    updated_at: float | None
    age_seconds: float | None
    polls: int
    errors: tuple[tuple[Reason, int], ...]
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ListenersSnapshot:
    destinations: tuple[DestinationListeners, ...] = ()

    def by_platform(self) -> dict[str, int]:
        """Listeners now per platform label: the sum of its destinations' known values."""
        totals: dict[str, int] = {}
        for d in self.destinations:
            if d.value is not None:
                totals[d.platform] = totals.get(d.platform, 0) + d.value
        return totals

    def errors_by_platform(self) -> dict[tuple[str, Reason], int]:
        totals: Counter[tuple[str, Reason]] = Counter()
        for d in self.destinations:
            for reason, count in d.errors:
                totals[d.platform, reason] += count
        return dict(totals)


class ListenerPoller:
    """Polls one destination's count until cancelled.

    Args:
        destination: the destination's name.
        spec: where its count comes from.
        clock: wall-clock time (epoch seconds).
        timeout: the limit for one request, connect to last byte.
        schedule: the poll timing (default: every ``spec.poll_seconds``).
        broadcasts: where a YouTube answer's broadcast verdict goes.
    """

    def __init__(
        self,
        destination: str,
        spec: PolledSpec,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = REQUEST_TIMEOUT,
        schedule: PollSchedule | None = None,
        broadcasts: Broadcasts | None = None,
    ) -> None:
        self.destination = destination
        self.spec = spec
        self.platform = listener_platform(spec)
        self._clock = clock
        self._timeout = timeout
        self._schedule = schedule or PollSchedule(spec.poll_seconds)
        self._secrets = secrets_of(spec)
        self._value: int | None = None
        self._updated_at: float | None = None
        self._polls = 0
        self._errors: Counter[Reason] = Counter()
        self._last_error: str | None = None
        self._failing: Reason | None = None
        self._broadcasts = broadcasts

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                outcome = await self.poll(session)
            except Exception as error:  # a bug here must not stop the other pollers
                log.error("listeners: %s: %s", self.destination, type(error).__name__)
                outcome = Failure("bad_response", type(error).__name__)
            await asyncio.sleep(self._schedule.next_delay(outcome))

    async def poll(self, session: aiohttp.ClientSession) -> Outcome:
        """Ask once and record the outcome (and, for YouTube, the broadcast's verdict)."""
        spec = self.spec
        outcome = await self._ask(session, spec)
        if isinstance(spec, IcecastListeners) and spec.relays and isinstance(outcome, Count):
            outcome = await self._with_relays(session, spec, outcome)
        self._record(outcome, request_for(spec).describe())
        return outcome

    async def _with_relays(
        self, session: aiohttp.ClientSession, spec: IcecastListeners, master: Count
    ) -> Count:
        """The master's listeners plus each relay's (Icecast's own master/slave relays).

        A relay's pull from the master is one of the master's listeners: one less is
        counted for each relay that answers. A relay that does not answer counts 0 this
        round (its failure is counted and logged), so one dead relay never freezes the
        total."""
        total = master.value
        for url in spec.relays:
            got = await self._ask(session, replace(spec, status_url=url, relays=()))
            if isinstance(got, Count):
                total += got.value - 1
            else:
                self._errors[got.reason] += 1
                log.warning("listeners: %s: relay %s: %s", self.destination, url, got.detail)
        return Count(max(0, total))

    async def _ask(self, session: aiohttp.ClientSession, spec: PolledSpec) -> Outcome:
        request = request_for(spec)
        answer = await self._get(session, request)
        outcome = answer if isinstance(answer, Failure) else _judge(spec, answer)
        if isinstance(spec, YouTubeListeners):
            self._judge_broadcast(spec, answer)
        if (
            isinstance(outcome, Failure)
            and outcome.reason == "bad_response"
            and isinstance(spec, IcecastListeners)
            and (page := icecast_html_url(spec)) is not None
        ):
            # Icecast 2.4's status-json.xsl is malformed with some libxslt versions (and
            # now and then anyway): its HTML status page says the same.
            html = await self._get(session, ApiRequest(page))
            outcome = html if isinstance(html, Failure) else _html_outcome(spec.mount, html)
        return outcome

    async def _get(self, session: aiohttp.ClientSession, request: ApiRequest) -> Answer | Failure:
        import aiohttp  # loaded already: the session is aiohttp's

        try:
            async with session.get(
                request.url,
                params=dict(request.params),
                headers=dict(request.headers),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as response:
                body = await response.content.read(MAX_BODY)
                return Answer(response.status, response.headers, body, self._clock())
        except TimeoutError:
            return Failure("timeout", f"no answer within {self._timeout:g}s")
        except aiohttp.ClientConnectorError as error:
            return Failure("network", f"cannot connect to {error.host}:{error.port}")
        except aiohttp.ClientError as error:
            return Failure("network", type(error).__name__)

    def _judge_broadcast(self, spec: YouTubeListeners, answer: Answer | Failure) -> None:
        if self._broadcasts is None:
            return
        if isinstance(answer, Failure):
            verdict = unreachable(answer.detail)
        else:
            verdict = youtube_verdict(answer.status, answer.json(), spec.video_id)
        text = redact(verdict.text, self._secrets)
        self._broadcasts.note(self.destination, replace(verdict, text=text))

    def _record(self, outcome: Outcome, where: str) -> None:
        self._polls += 1
        name = f"{self.destination} ({self.platform})"
        if isinstance(outcome, Count):
            if self._failing is not None or self._value is None:
                log.info("listeners: %s: %d", name, outcome.value)
            self._value, self._updated_at = outcome.value, self._clock()
            self._failing = self._last_error = None
            return
        detail = scrub(f"{outcome.reason}: {outcome.detail}", self._secrets)
        self._errors[outcome.reason] += 1
        self._last_error = detail
        if self._failing != outcome.reason:
            # One line per change of trouble, not one per poll.
            log.warning("listeners: %s: %s (%s); keeping the last value", name, detail, where)
        self._failing = outcome.reason

    def snapshot(self) -> DestinationListeners:
        age = None if self._updated_at is None else max(0.0, self._clock() - self._updated_at)
        return DestinationListeners(
            destination=self.destination,
            platform=self.platform,
            value=self._value,
            updated_at=self._updated_at,
            age_seconds=age,
            polls=self._polls,
            errors=tuple((r, self._errors[r]) for r in REASONS if self._errors[r]),
            last_error=self._last_error,
        )


class Listeners:
    """Every destination's listener count: pollers for platforms and Icecast, and the
    HLS mirror's own viewers.

    Args:
        destinations: the event's destinations; those without a listener source are skipped.
        hls: the mirror's viewer counter (fed by the /hls route).
        clock: wall-clock time.
        timeout: per request.
    """

    def __init__(
        self,
        destinations: Sequence[DestinationSpec],
        hls: HlsViewers,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.hls = hls
        self.broadcasts = Broadcasts()  # YouTube's verdicts, from the same polls
        self._clock = clock
        self._timeout = timeout
        self.pollers: list[ListenerPoller] = []
        self._hls_streams: list[str] = []
        self._running: tuple[aiohttp.ClientSession, asyncio.TaskGroup] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wanted = asyncio.Event()  # set once there is a poller
        for d in destinations:
            self._track(d)

    def add(self, destination: DestinationSpec) -> None:
        """Count a destination added while live (polled at once if :meth:`run` runs)."""
        poller = self._track(destination)
        if poller is not None and self._running is not None:
            self._start(poller)

    def remove(self, name: str) -> None:
        """Stop counting a destination that was removed."""
        self.pollers = [p for p in self.pollers if p.destination != name]
        self.broadcasts.forget(name)
        self._hls_streams = [n for n in self._hls_streams if n != name]
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    async def run(self) -> None:
        """Poll until cancelled (destinations may be added meanwhile); the HTTP session is
        closed on the way out.

        The session (and aiohttp) waits for the first destination that has something to
        poll, from the event file or added while live."""
        await self._wanted.wait()
        import aiohttp

        async with (
            aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session,
            asyncio.TaskGroup() as group,
        ):
            self._running = session, group
            try:
                for poller in self.pollers:
                    self._start(poller)
                await asyncio.Event().wait()
            finally:
                self._running = None

    def _track(self, d: DestinationSpec) -> ListenerPoller | None:
        spec = listener_spec(d.listeners, d.platform, d.kind, d.url)
        if isinstance(spec, HlsListeners):
            self._hls_streams.append(d.name)
        elif spec is not None:
            poller = ListenerPoller(
                d.name, spec, clock=self._clock, timeout=self._timeout, broadcasts=self.broadcasts
            )
            self.pollers.append(poller)
            self._wanted.set()
            return poller
        return None

    def _start(self, poller: ListenerPoller) -> None:
        assert self._running is not None
        session, group = self._running
        task = group.create_task(poller.run(session), name=f"listeners-{poller.destination}")
        self._tasks[poller.destination] = task

    def snapshot(self) -> ListenersSnapshot:
        now = self._clock()
        hls = tuple(
            DestinationListeners(name, "hls", self.hls.count(name), now, 0.0, 0, (), None)
            for name in self._hls_streams
        )
        return ListenersSnapshot(tuple(p.snapshot() for p in self.pollers) + hls)


def _judge(spec: PolledSpec, answer: Answer) -> Outcome:
    return parse_response(spec, answer.status, answer.headers, answer.body, answer.at)


def _html_outcome(mount: str, answer: Answer) -> Outcome:
    if answer.status != 200:
        return Failure("bad_response", f"status.xsl: HTTP {answer.status}")
    return parse_icecast_html(answer.body.decode("utf-8", "replace"), mount)
