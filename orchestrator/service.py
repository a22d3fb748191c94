"""``jalsa run``: the show, the HTTP app and /metrics in one asyncio process.

Lifecycle: SIGINT/SIGTERM stop the show, close every output with a valid trailer and
exit within 5 s; a second signal exits at once.

The web side shares the process's file descriptors with the media (relays, recordings,
HLS), and the outputs must keep working whatever the web side suffers. So:

- the descriptor limit is raised to the hard limit at start (:func:`raise_fd_limit`);
- each web server takes connections through :class:`GuardedH11Protocol`: a new one is
  refused (reset at once) while :data:`MAX_WEB_CONNECTIONS` are open or fewer than
  :data:`FD_RESERVE` descriptors are free, and one that has not sent a whole request
  head within :data:`HEADER_SECONDS` is closed (uvicorn has no such timeout: an idle
  socket would be kept forever); after a response, uvicorn's keep-alive timeout
  (:data:`KEEP_ALIVE_SECONDS`) applies;
- what would flood the log (an accept that fails, refused connections, uvicorn's
  warning per invalid request) is logged at most once per :data:`LOG_EVERY` seconds,
  with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitoring.broadcast import Broadcasts
from monitoring.metrics import build_registry
from monitoring.metrics_endpoint import OnLoop, metrics_app
from monitoring.watch import Watch
from orchestrator.api.app import create_app
from orchestrator.api.auth import operator_token
from orchestrator.event import Event
from orchestrator.event.address import Address
from orchestrator.rundown_control import RundownControl
from orchestrator.show import Show
from relays.relay import Relay

log = logging.getLogger(__name__)

STOP_SECONDS = 4.0  # within the 5 s promise, leaving time for the servers
MAX_WEB_CONNECTIONS: Final = 1000  # per server (the console, speakers, HLS viewers)
FD_RESERVE: Final = 128  # descriptors the web side never takes: they are the media's
HEADER_SECONDS: Final = 10.0  # for a connection's request head (slow or idle clients)
KEEP_ALIVE_SECONDS: Final = 5  # an idle connection after a response
MAX_HEADER_BYTES: Final = 64 * 1024  # an incomplete request head larger than this is 400
# asyncio accepts up to its listen backlog per wakeup, before any protocol sees them (a
# burst of 420 connects took every free descriptor at once): a small batch keeps what
# is in flight (about four batches) well inside FD_RESERVE; the kernel's queue is then
# widened to LISTEN_QUEUE (:func:`widen_listen_queue`).
ACCEPT_BATCH: Final = 16
LISTEN_QUEUE: Final = 1024
LOG_EVERY: Final = 10.0  # seconds between two lines of a flood
ACCEPT_FAILED: Final = "socket.accept() out of system resource"  # asyncio's words


class LogLimit:
    """Log one kind of line at most once per :data:`LOG_EVERY` seconds, with how many
    were held back since the last."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = float("-inf")
        self._held = 0

    def allow(self) -> int | None:
        """None to hold this one back; else how many were held back before it."""
        now = self._clock()
        if now - self._last < LOG_EVERY:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:  # e.g. above the kernel's nr_open
        log.warning("could not raise the open files limit from %d to %d: %s", soft, wanted, exc)
        return soft
    return wanted


def free_fds() -> int | None:
    """Descriptors this process may still open (None where /proc is not there)."""
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft - used


_refusals = LogLimit()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, refusing what would take descriptors from the media
    and closing connections that never send a request (see the module's docstring)."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        free = free_fds()
        if len(self.connections) > MAX_WEB_CONNECTIONS or (free is not None and free < FD_RESERVE):
            held = _refusals.allow()
            if held is not None:
                log.warning(
                    "web: refusing connections (%d open, %s descriptors free, %d reserved "
                    "for the media; %d more refused since the last line)",
                    len(self.connections) - 1,
                    "?" if free is None else free,
                    FD_RESERVE,
                    held,
                )
            transport.abort()
            return
        self._wait_for_head()

    def _wait_for_head(self) -> None:
        self._head_timer = self.loop.call_later(HEADER_SECONDS, self._head_timeout)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its head arrived
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_arrived()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._head_arrived()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_arrived()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._wait_for_head()  # the next request's head, if the client sends one

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)


class FloodFilter(logging.Filter):
    """On uvicorn's logger: each warning without a traceback (like "Invalid HTTP request
    received.", one per bad request) at most once per :data:`LOG_EVERY` s, with a count."""

    def __init__(self) -> None:
        super().__init__()
        self._limits: dict[str, LogLimit] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING or record.exc_info:
            return True
        key = str(record.msg)
        limit = self._limits.get(key)
        if limit is None:
            if len(self._limits) > 100:  # messages with their values in: keep it small
                self._limits.clear()
            limit = self._limits[key] = LogLimit()
        held = limit.allow()
        if held is None:
            return False
        if held:
            record.msg, record.args = f"{record.getMessage()} ({held} more since the last)", ()
        return True


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log a failing ``accept()`` (descriptors exhausted) once per :data:`LOG_EVERY` s
    with a count, not a traceback per try; anything else as asyncio would."""
    limit = LogLimit()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILED:
            loop.default_exception_handler(context)
            return
        held = limit.allow()
        if held is not None:
            log.error(
                "web: accept() failed: %s (%d more since the last line)",
                context.get("exception"),
                held,
            )

    loop.set_exception_handler(handler)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the service owns the signals), with the
    kernel's listen queue widened once it listens."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        widen_listen_queue(self)


def server_config(app: object, address: Address) -> uvicorn.Config:
    """How each of ``jalsa run``'s web servers is run (see the module's docstring)."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=address.host,
        port=address.port,
        http=GuardedH11Protocol,
        backlog=ACCEPT_BATCH,
        limit_concurrency=MAX_WEB_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="warning",
        access_log=False,  # paths can carry speaker tokens: never log them
        lifespan="off",
    )


def widen_listen_queue(server: uvicorn.Server) -> None:
    """Let the kernel queue :data:`LISTEN_QUEUE` connections for ``server`` while asyncio
    still accepts :data:`ACCEPT_BATCH` per wakeup (listen() again on a duplicate of
    the listening socket changes the socket's own queue)."""
    for listener in getattr(server, "servers", ()):
        for sock in listener.sockets:
            try:
                with socket.socket(fileno=os.dup(sock.fileno())) as twin:
                    twin.listen(LISTEN_QUEUE)
            except OSError as exc:
                log.warning("could not widen the listen queue of %s: %s", sock, exc)


def _server(app: object, address: Address) -> _Server:
    return _Server(server_config(app, address))


def show_verdicts(relay: Relay, broadcasts: Broadcasts) -> None:
    """Join the two sides (neither imports the other): the broadcast verdicts the listener
    pollers read from the platform's API go into the relay destinations' snapshots
    (``live_check``), and a verdict is judged against whether its destination pushes.
    Destinations added over the API are found by name like the others."""

    def note(name: str, text: str | None) -> None:
        with contextlib.suppress(KeyError):  # removed meanwhile
            relay.get(name).note_platform_verdict(text)

    def pushing(name: str) -> bool:
        try:
            return relay.get(name).state == "live"
        except KeyError:
            return False

    broadcasts.connect(note, pushing)


async def serve(
    event: Event,
    *,
    http: Address,
    metrics: Address,
    state_dir: Path,
    loop_rundown: bool = False,
    fresh: bool = False,
    event_file: Path | None = None,
) -> int:
    """Run the event until its rundown ends or a signal arrives. Returns the exit code.

    The rundown resumes from the state dir's journal unless ``fresh`` (see
    :meth:`RundownControl.open`).

    Raises:
        ResumeError: the journal cannot be resumed (the message says what to do).
    """
    files = raise_fd_limit()
    quiet_accept_errors(asyncio.get_running_loop())
    log.info("open files limit: %d (%d kept for the media)", files, FD_RESERVE)
    token, created = operator_token(state_dir)
    control = await asyncio.to_thread(
        RundownControl.open,
        state_dir,
        event,
        loop=loop_rundown,
        fresh=fresh,
        event_file=event_file,
    )
    show = Show(event, state_dir, control)
    watch = Watch(event, state_dir, show.snapshot)  # listeners, probes, outages, samples
    show_verdicts(show.relay, watch.listeners.broadcasts)
    app = create_app(show, token, state_dir, watch)
    # /metrics renders in a thread; the collectors' snapshots are still taken on the loop
    on_loop = OnLoop(asyncio.get_running_loop())
    registry = build_registry(on_loop.bind(show.snapshot), watch.collectors(on_loop.bind))
    servers = [_server(app, http), _server(metrics_app(registry), metrics)]
    logging.getLogger("uvicorn.error").addFilter(FloodFilter())  # after uvicorn's setup

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            print("jalsa: second signal, exiting now", flush=True)
            os._exit(130)
        log.info("stopping: closing every output (a second signal forces)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    server_tasks = [asyncio.create_task(s.serve(), name="http") for s in servers]
    await asyncio.sleep(0)
    show_task = asyncio.create_task(show.run(), name="show")
    watch_task = asyncio.create_task(watch.run(), name="watch")
    _announce(event, show, http, metrics, state_dir, token.reveal() if created else None)
    stopper = asyncio.create_task(stop.wait(), name="signal")
    try:
        done, _ = await asyncio.wait(
            {show_task, stopper, *server_tasks}, return_when=asyncio.FIRST_COMPLETED
        )
        failed = next((t for t in done if t in server_tasks), None)
        if failed is not None and not stop.is_set():
            # A server that ended on its own could not bind or crashed.
            log.error("the %s server stopped; shutting down", failed.get_name())
    finally:
        stopper.cancel()
        show_task.cancel()
        watch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await show_task
        with contextlib.suppress(asyncio.CancelledError):
            await watch_task
        await watch.close()
        await show.close(STOP_SECONDS)
        for server in servers:
            server.should_exit = True
        await asyncio.wait(server_tasks, timeout=1.0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if show_task.done() and not show_task.cancelled() and show_task.exception():
        log.error("the show failed", exc_info=show_task.exception())
        return 1
    return 0


def _announce(
    event: Event,
    show: Show,
    http: Address,
    metrics: Address,
    state_dir: Path,
    new_token: str | None,
) -> None:
    lines = [f"jalsa: {event.info.name!r} is running"]
    console = http.url("/")
    if new_token is not None and sys.stdout.isatty():
        lines.append(f"  console:   {console}#token={new_token}")
        lines.append(f"             (operator token saved in {state_dir / 'operator-token'})")
    elif new_token is not None:  # stdout is journald or a log file: never the token there
        lines.append(f"  console:   {console}#token=<the operator token>")
        lines.append(f"             (the token is in {state_dir / 'operator-token'}, mode 0600)")
    else:
        lines.append(
            f"  console:   {console}  (operator token from JALSA_OPERATOR_TOKEN or state dir)"
        )
    for d in event.destinations:
        if d.kind == "hls":
            lines.append(f"  hls:       {http.url(f'/hls/{d.name}/index.m3u8')}")
            lines.append(f"  watch:     {http.url(f'/watch/{d.name}')}  (the listener page)")
        else:
            lines.append(f"  {d.kind + ':':<10} {d.safe_url()}  ({d.name})")
    lines.append(f"  metrics:   {metrics.url('/metrics')}")
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)
