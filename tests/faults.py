"""A fault-injecting TCP proxy for tests and benchmarks.

:class:`FaultProxy` sits between a sender (a relay writer, ffmpeg) and a real server
(nginx-rtmp) on loopback and misbehaves on demand, like a destination on a bad day:

- ``"pass"``: forward both ways.
- ``"refuse"``: nothing listens, so connects get ECONNREFUSED. Entering the mode also
  resets every open connection (the destination went down). Leaving it listens again on
  the same port.
- ``"reset"``: accept and forward ``reset_after_bytes`` from the client (counted per
  connection from when it opened or the mode was entered), then abort both sides with an
  RST (``SO_LINGER`` 0).
- ``"blackhole"``: accept, never read from the client and never connect upstream; open
  connections stop being read in both directions. The sender's writes block once the
  socket buffers fill. Leaving the mode resumes everything where it stopped; no byte is
  lost.
- ``"throttle"``: forward client to upstream at ``rate_bytes_per_s`` (per connection) in
  small reads; upstream to client is not limited. The client socket's receive buffer is
  small (``client_rcvbuf``), so the proxy holds little and the sender feels real TCP
  backpressure.
- ``"uplink"``: like ``"throttle"``, but ``rate_bytes_per_s`` is shared by all connections
  together, like one venue's uplink under every destination that goes through it.

The proxy runs its own asyncio loop in a daemon thread, so synchronous tests, async tests
(on another loop) and benchmark scripts all drive it the same way; every public method
is called from outside that thread and returns once the change is in effect. Every wait
inside is bounded, and :meth:`FaultProxy.stop` closes every socket.

Example::

    with FaultProxy("127.0.0.1", nginx_port) as proxy:
        url = f"rtmp://127.0.0.1:{proxy.port}/live/test"
        ...
        proxy.set_mode("throttle", rate_bytes_per_s=50_000)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, get_args

Mode = Literal["pass", "refuse", "reset", "blackhole", "throttle", "uplink"]
MODES: Final[frozenset[str]] = frozenset(get_args(Mode))

_T = TypeVar("_T")
_CALL_TIMEOUT: Final = 10.0  # bound on any call into the proxy's loop
_PASS_CHUNK: Final = 64 * 1024


class _Abort(Exception):
    """Raised inside a pump to reset the whole connection."""


class _Link:
    """One proxied connection: the accepted client socket and its upstream socket."""

    __slots__ = ("budget", "client", "next_read", "rst", "task", "upstream")

    def __init__(self, client: socket.socket, budget: int) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.task: asyncio.Task[None] | None = None
        # Bytes still to forward before a reset (used in "reset" mode).
        self.budget = budget
        # Monotonic time before which a throttled pump must not read.
        self.next_read = 0.0
        # Close with RST instead of FIN.
        self.rst = False


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def _close(sock: socket.socket | None, *, rst: bool) -> None:
    if sock is None or sock.fileno() < 0:
        return
    if rst:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 whose behaviour can be switched at runtime.

    Args:
        upstream_host: Where to forward to.
        upstream_port: Its port.
        mode: The initial mode (see the module docstring).
        reset_after_bytes: In ``"reset"`` mode, client bytes forwarded per connection
            before the RST.
        rate_bytes_per_s: In ``"throttle"`` mode, the client-to-upstream rate per
            connection; in ``"uplink"`` mode, of all connections together.
        client_rcvbuf: ``SO_RCVBUF`` of accepted client sockets (the kernel doubles it).
        connect_timeout: Bound on connecting upstream.
        port: The port to listen on; 0 picks a free one.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        mode: Mode = "pass",
        reset_after_bytes: int = 64 * 1024,
        rate_bytes_per_s: float = 100_000.0,
        client_rcvbuf: int = 16 * 1024,
        connect_timeout: float = 5.0,
        port: int = 0,
    ) -> None:
        self._check(mode, reset_after_bytes, rate_bytes_per_s)
        self._upstream = (upstream_host, upstream_port)
        self._mode: Mode = mode
        self._reset_after_bytes = reset_after_bytes
        self._rate = float(rate_bytes_per_s)
        self._client_rcvbuf = client_rcvbuf
        self._connect_timeout = connect_timeout
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Everything below is touched only on the proxy's loop thread (the counters are
        # also read from other threads; int reads are atomic).
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._links: set[_Link] = set()
        # Futures resolved (with False) at the next mode change.
        self._mode_waiters: set[asyncio.Future[bool]] = set()
        # In "uplink" mode: before this monotonic time no connection may read.
        self._uplink_next_read = 0.0
        self.bytes_forwarded = 0
        """Bytes forwarded from clients to upstream."""
        self.bytes_returned = 0
        """Bytes forwarded from upstream to clients."""
        self.connections = 0
        """Client connections accepted so far."""

    # --- public API (any thread but the proxy's own) ----------------------------------

    @property
    def port(self) -> int:
        """The listening port (stable across ``"refuse"``), 0 before :meth:`start`."""
        return self._port

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def active_connections(self) -> int:
        return len(self._links)

    def start(self) -> int:
        """Start the loop thread and listen (unless refusing).

        Returns:
            The listening port on 127.0.0.1.

        Raises:
            RuntimeError: If already started.
            OSError: If the port cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="fault-proxy", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._open())
        except BaseException:
            self.stop()
            raise
        return self._port

    def stop(self) -> None:
        """Close every socket and stop the loop thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(TimeoutError, RuntimeError):
                self._call(self._shutdown())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT)
        self._loop = None
        self._thread = None

    def set_mode(
        self,
        mode: Mode,
        *,
        reset_after_bytes: int | None = None,
        rate_bytes_per_s: float | None = None,
    ) -> None:
        """Switch behaviour; returns once the new mode is in effect.

        Args:
            mode: The new mode.
            reset_after_bytes: Also change the reset budget (applies to open connections).
            rate_bytes_per_s: Also change the throttle rate.

        Raises:
            ValueError: For an unknown mode or a negative budget / non-positive rate.
            OSError: If leaving ``"refuse"`` cannot listen on the same port again.
        """
        budget = self._reset_after_bytes if reset_after_bytes is None else reset_after_bytes
        rate = self._rate if rate_bytes_per_s is None else rate_bytes_per_s
        self._check(mode, budget, rate)
        if self._loop is None:
            self._mode, self._reset_after_bytes, self._rate = mode, budget, float(rate)
            return
        self._call(self._apply_mode(mode, budget, float(rate)))

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- plumbing --------------------------------------------------------------------

    @staticmethod
    def _check(mode: str, budget: int, rate: float) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        if budget < 0:
            raise ValueError(f"reset_after_bytes must not be negative, got {budget!r}")
        if not rate > 0:
            raise ValueError(f"rate_bytes_per_s must be positive, got {rate!r}")

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    async def _open(self) -> None:
        if self._mode == "refuse":
            if self._port == 0:
                # Reserve a port number to come back to; nothing listens meanwhile.
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self._port = probe.getsockname()[1]
        else:
            self._listen()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Inherited by accepted sockets, before the handshake sets the window scale.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._client_rcvbuf)
            sock.bind(("127.0.0.1", self._port))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._listener = sock
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop(sock))

    async def _unlisten(self) -> None:
        task, sock = self._accept_task, self._listener
        self._accept_task = self._listener = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if sock is not None:
            sock.close()

    async def _abort_all(self, *, rst: bool) -> None:
        tasks = []
        for link in list(self._links):
            link.rst = rst
            if link.task is not None:
                link.task.cancel()
                tasks.append(link.task)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _next_read(self, link: _Link, mode: Mode) -> float:
        return self._uplink_next_read if mode == "uplink" else link.next_read

    async def _shutdown(self) -> None:
        await self._unlisten()
        await self._abort_all(rst=False)

    async def _apply_mode(self, mode: Mode, budget: int, rate: float) -> None:
        old = self._mode
        self._mode, self._reset_after_bytes, self._rate = mode, budget, rate
        if mode == "reset":
            for link in self._links:
                link.budget = budget
        if mode == "refuse" and old != "refuse":
            await self._unlisten()
            await self._abort_all(rst=True)
        elif mode != "refuse" and old == "refuse":
            self._listen()
        # Wake every pump waiting on the mode so it re-reads it.
        waiters, self._mode_waiters = self._mode_waiters, set()
        for fut in waiters:
            _resolve(fut, False)

    async def _mode_change(self, at_most: float | None = None) -> None:
        """Wait until the mode changes, or ``at_most`` seconds."""
        fut = asyncio.get_running_loop().create_future()
        self._mode_waiters.add(fut)
        try:
            await asyncio.wait({fut}, timeout=at_most)
        finally:
            self._mode_waiters.discard(fut)
            fut.cancel()

    async def _readable(self, sock: socket.socket, *, or_mode_change: bool) -> bool:
        """Wait until ``sock`` is readable (True) or, if asked, the mode changes (False).

        Only waits: the caller then reads synchronously. Cancelling a pending
        ``loop.sock_recv`` can discard bytes it already took from the kernel; this
        never holds any.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _resolve, fut, True)
        if or_mode_change:
            self._mode_waiters.add(fut)
        try:
            return await fut
        finally:
            loop.remove_reader(fd)
            self._mode_waiters.discard(fut)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._readable(listener, or_mode_change=False)
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                continue
            client.setblocking(False)
            self.connections += 1
            link = _Link(client, self._reset_after_bytes)
            self._links.add(link)
            link.task = loop.create_task(self._serve(link))

    async def _serve(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        pumps: list[asyncio.Task[None]] = []
        try:
            while self._mode == "blackhole":
                await self._mode_change()
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            link.upstream = upstream
            upstream.setblocking(False)
            await asyncio.wait_for(
                loop.sock_connect(upstream, self._upstream), self._connect_timeout
            )
            pumps = [
                loop.create_task(self._pump(link, link.client, upstream, upward=True)),
                loop.create_task(self._pump(link, upstream, link.client, upward=False)),
            ]
            await asyncio.gather(*pumps)
        except (OSError, _Abort):
            # A reset from either peer, or our own, propagates to both sides.
            link.rst = True
        finally:
            for task in pumps:
                task.cancel()
            # Awaiting the pumps lets asyncio unregister their sockets before closing.
            await asyncio.gather(*pumps, return_exceptions=True)
            # Unregister first: whoever sees the close also sees the count drop.
            self._links.discard(link)
            _close(link.client, rst=link.rst)
            _close(link.upstream, rst=link.rst)

    async def _pump(
        self, link: _Link, src: socket.socket, dst: socket.socket, *, upward: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        data = b""
        while True:
            mode = self._mode
            if mode == "blackhole":
                await self._mode_change()
                continue
            if data:
                # Data read before a mode change is held, then forwarded: none is lost.
                if upward and mode == "reset":
                    data = data[: link.budget]
                    link.budget -= len(data)
                await loop.sock_sendall(dst, data)
                if upward:
                    self.bytes_forwarded += len(data)
                else:
                    self.bytes_returned += len(data)
                data = b""
                continue
            if upward and mode == "reset" and link.budget <= 0:
                raise _Abort
            size = _PASS_CHUNK
            if upward and mode in ("throttle", "uplink"):
                wait = self._next_read(link, mode) - time.monotonic()
                if wait > 0:
                    await self._mode_change(wait)
                    continue
                # About 20 ms worth per read keeps the proxy's own buffering small.
                size = max(256, min(16 * 1024, int(self._rate / 50)))
            if not await self._readable(src, or_mode_change=True):
                continue
            try:
                data = src.recv(size)
            except BlockingIOError:
                continue
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if upward and self._mode in ("throttle", "uplink"):
                due = max(self._next_read(link, self._mode), time.monotonic())
                due += len(data) / self._rate
                if self._mode == "uplink":
                    self._uplink_next_read = due
                else:
                    link.next_read = due
