"""``jalsa probe``: a probe agent for one vantage point (a city and an ISP).

Runs a round of probes every ``interval`` seconds and serves the latest round at
``/metrics`` for Prometheus (``jalsa_probe_*`` with its vantage, city and isp labels).
Logs one line per platform whose reachability changes, so an agent on a dead link logs
once, not every round. SIGINT/SIGTERM stop it.

With a token (``--token-file FILE`` or ``JALSA_AGENT_TOKEN``) ``/metrics`` answers only a
request with ``Authorization: Bearer <token>`` (401 otherwise): its labels say which
city and ISP a volunteer is on, and whoever could read or pose as an agent could raise
or hide an outage. Without one it warns at start when it binds a non-loopback address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Final

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app

from monitoring.agent_link import AgentLink
from monitoring.metrics import ProbeCollector
from monitoring.probe_round import ProbeRound, Vantage, log_changes
from monitoring.probes import Prober
from monitoring.round_wire import MAX_NEXT_IN
from monitoring.targets import DEFAULT_TARGETS, Targets, load_targets
from orchestrator.event.address import Address
from orchestrator.event.monitoring_spec import LABEL_PATTERN, MIN_AGENT_TOKEN, parse_resolver
from orchestrator.event.problems import EventError
from orchestrator.event.secret import Secret

log = logging.getLogger(__name__)

TOKEN_ENV: Final = "JALSA_AGENT_TOKEN"

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Asgi = Callable[
    [_Scope, Callable[[], Awaitable[_Message]], Callable[[_Message], Awaitable[None]]],
    Awaitable[None],
]


def require_token(app: _Asgi, token: Secret) -> _Asgi:
    """``app`` behind ``Authorization: Bearer <token>`` (compared in constant time): any
    other request gets 401 before ``app`` sees it."""
    expected = f"Bearer {token.reveal()}".encode()

    async def guarded(
        scope: _Scope,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[_Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, expected):
                body = b"send Authorization: Bearer <the agent's token>\n"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="jalsa probe"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def read_token(path: Path | None, env: MutableMapping[str, str] | None = None) -> Secret | None:
    """The agent's token: the file's content (``--token-file``), else ``JALSA_AGENT_TOKEN``;
    None when neither is given.

    Raises:
        ValueError: the file cannot be read, or the token is too short or has spaces.
    """
    environ = os.environ if env is None else env
    if path is not None:
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--token-file {path}: cannot be read ({error})") from None
        where = f"--token-file {path}"
    else:
        text = environ.get(TOKEN_ENV, "").strip()
        where = TOKEN_ENV
        if not text:
            return None
    if len(text) < MIN_AGENT_TOKEN or any(c.isspace() for c in text):
        raise ValueError(
            f"{where}: the token must be at least {MIN_AGENT_TOKEN} characters without spaces "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return Secret(text)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may be reachable from anywhere


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProbeAgent:
    """Args:
    prober: the vantage and its targets.
    interval: seconds from the start of one round to the start of the next.
    """

    def __init__(
        self, prober: Prober, interval: float = 30.0, *, token: Secret | None = None
    ) -> None:
        self.prober = prober
        self.interval = interval
        self.token = token
        self.latest: ProbeRound | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ProbeCollector(lambda: self.latest))
        self._seen: dict[str, bool] = {}

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            started = time.monotonic()
            self.latest = await self.prober.round()
            log_changes(self.latest, self._seen)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def serve(self, host: str, port: int) -> int:
        """Probe and serve /metrics until SIGINT/SIGTERM. Returns the exit code."""
        app: _Asgi = make_asgi_app(self.registry)
        if self.token is not None:
            app = require_token(app, self.token)
        elif not _loopback(host):
            log.warning(
                "probe agent: /metrics on %s:%d has no token: anyone who can reach it reads "
                "this volunteer's city and ISP, and could pose as this agent; start it with "
                "--token-file FILE (or %s) and give [monitoring] agents the same token",
                host,
                port,
                TOKEN_ENV,
            )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        v = self.prober.vantage
        log.info(
            "probe agent %s (%s, %s): %d targets every %gs; metrics at http://%s:%d/metrics%s",
            v.name,
            v.city,
            v.isp,
            len(self.prober.targets.targets),
            self.interval,
            host,
            port,
            " (bearer token required)" if self.token is not None else "",
        )
        serving = asyncio.create_task(server.serve(), name="metrics")
        probing = asyncio.create_task(self.run(), name="probes")
        stopper = asyncio.create_task(stop.wait(), name="signal")
        try:
            done, _ = await asyncio.wait(
                {serving, probing, stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            code = 0 if stopper in done else 1
            if serving in done and not stop.is_set():
                log.error("the metrics server stopped (is %s:%d free?)", host, port)
        finally:
            for task in (probing, stopper):
                task.cancel()
            for task in (probing, stopper):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            server.should_exit = True
            await asyncio.wait({serving}, timeout=2.0)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if probing.done() and not probing.cancelled() and probing.exception() is not None:
            log.error("the probes failed", exc_info=probing.exception())
            code = 1
        return code


def format_round(found: ProbeRound) -> str:
    """A table of one round, for ``jalsa probe --once``."""
    lines = [f"{'platform':<10} {'role':<7} {'check':<5} {'ok':<3} {'seconds':>7}  host / error"]
    for c in found.checks:
        ok = "ok" if c.success else "NO"
        detail = c.host if c.error is None else f"{c.host}: {c.error}"
        lines.append(
            f"{c.platform:<10} {c.role:<7} {c.check:<5} {ok:<3} {c.seconds:>7.3f}  {detail}"
        )
    for r in found.resolvers:
        if r.resolver == "control" and not r.success:
            lines.append(f"{r.platform:<10} control resolver for {r.host}: {r.error}")
    for platform, speed in sorted(found.throughput().items()):
        lines.append(f"{platform:<10} throughput {speed * 8 / 1000:,.0f} kbit/s")
    for d in found.downloads:
        if d.error is not None:
            lines.append(f"{d.platform:<10} download from {d.host} failed: {d.error}")
    return "\n".join(lines)


def probe_command(args: argparse.Namespace) -> int:
    """``jalsa probe``: exit 0 when stopped by a signal, 2 for bad arguments."""

    def fail(message: str) -> int:
        print(f"jalsa probe: {message}", file=sys.stderr)
        return 2

    join: str | None = getattr(args, "join", None)  # absent from older callers' Namespaces
    if join is not None:
        if any(getattr(args, n) is not None for n in ("vantage", "city", "isp")):
            return fail("--join gives the vantage, city and ISP: leave out --vantage/--city/--isp")
        from monitoring.agent_link import LinkError, parse_link

        try:
            link = parse_link(join)
        except LinkError as error:
            return fail(f"--join: {error}")
        args.vantage, args.city, args.isp = link.agent, link.city, link.isp
    elif any(getattr(args, n) is None for n in ("vantage", "city", "isp")):
        return fail("give --join LINK, or --vantage, --city and --isp")
    for name in ("vantage", "city", "isp"):
        if not LABEL_PATTERN.fullmatch(getattr(args, name)):
            return fail(f"--{name}: use 1-40 letters, digits, spaces, . _ and -")
    if not 1 <= args.interval <= 3600 or not 0.1 <= args.timeout <= 60:
        return fail("--interval must be 1..3600 seconds and --timeout 0.1..60")
    try:
        token = read_token(args.token_file)
        metrics = Address.parse(args.metrics)
        targets = load_targets(args.targets) if args.targets else DEFAULT_TARGETS
        if args.control_resolver is not None:
            resolver = parse_resolver(args.control_resolver)
            targets = dataclasses.replace(targets, control_resolver=resolver)
    except EventError as error:
        return fail(str(error))
    except ValueError as error:
        return fail(str(error))
    vantage = Vantage(args.vantage, args.city, args.isp)
    if join is not None:
        every = getattr(args, "throughput_every", 20)
        if not 1 <= every <= 1000:
            return fail("--throughput-every must be 1..1000")
        if not 0 <= args.calm_interval <= MAX_NEXT_IN:
            return fail(f"--calm-interval must be 0..{MAX_NEXT_IN:g} seconds")
        return _push(args, push_prober(vantage, targets, args.timeout, every), link)
    prober = Prober(vantage, targets, timeout=args.timeout)
    if args.once:
        found = asyncio.run(prober.round())
        print(format_round(found))
        return 0
    agent = ProbeAgent(prober, args.interval, token=token)
    return asyncio.run(agent.serve(metrics.host, metrics.port))


PUSH_DOWNLOAD_BYTES: Final = 64_000
"""A pushing agent's throughput download per target: a volunteer's data budget (1 MB an
hour) allows no more, and it is enough to tell a throttled platform (the classifier's
floor is 32 KB/s: 64 KB take 2 s there) from a slow network (the control as slow)."""


def push_prober(vantage: Vantage, targets: Targets, timeout: float, every: int) -> Prober:
    """The prober of ``jalsa probe --join``: HEAD checks, 64 KB downloads in one round of
    ``every``."""
    return Prober(
        vantage,
        targets,
        timeout=timeout,
        download_bytes=PUSH_DOWNLOAD_BYTES,
        throughput_every=every,
    )


def _push(args: argparse.Namespace, prober: Prober, link: AgentLink) -> int:
    """``jalsa probe --join``: push rounds (``--once``: one round, one delivery attempt)."""
    from monitoring.probe_push import Backlog, PushAgent, system_resolver
    from monitoring.round_wire import Context

    folder = Path(args.backlog) if args.backlog else default_backlog(link.agent)
    try:
        backlog = Backlog(folder)
    except OSError as error:
        print(f"jalsa probe: --backlog {folder}: {error.strerror}", file=sys.stderr)
        return 2
    context = Context(system_resolver(), args.asn, args.network)
    agent = PushAgent(
        prober,
        link,
        backlog,
        interval=args.interval,
        calm_interval=args.calm_interval,
        context=context,
    )
    if args.once:

        async def once() -> int:
            import aiohttp

            await agent.measure_once()
            async with aiohttp.ClientSession() as session:
                left = await agent.uploader.flush(session)
            print(f"{agent.uploader.delivered} delivered, {left} kept in {folder}")
            return 0

        return asyncio.run(once())
    return asyncio.run(agent.run())


def default_backlog(agent: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "jalsa-probe" / agent
