"""``jalsa run``: the show, the HTTP app and /metrics in one asyncio process.

Lifecycle: SIGINT/SIGTERM stop the show, close every output with a valid trailer and
exit within 5 s; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from prometheus_client import make_asgi_app

from monitoring.broadcast import Broadcasts
from monitoring.metrics import build_registry
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


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: object, address: Address) -> _Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=address.host,
        port=address.port,
        log_level="warning",
        access_log=False,  # paths can carry speaker tokens: never log them
        lifespan="off",
    )
    return _Server(config)


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
    registry = build_registry(show.snapshot, watch.collectors())
    servers = [_server(app, http), _server(make_asgi_app(registry), metrics)]

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
        else:
            lines.append(f"  {d.kind + ':':<10} {d.safe_url()}  ({d.name})")
    lines.append(f"  metrics:   {metrics.url('/metrics')}")
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)
