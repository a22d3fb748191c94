"""FaultProxy against a real local TCP sink: each mode does what it says."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from faults import FaultProxy
from waiting import wait_for

pytestmark = pytest.mark.timeout(60)


class Sink:
    """A TCP server on 127.0.0.1 that counts the bytes it receives and can echo them."""

    def __init__(self, *, echo: bool = False) -> None:
        self.echo = echo
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port: int = self._server.getsockname()[1]
        self.received = 0
        self.accepted = 0
        self.errors: list[OSError] = []
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._spawn(self._accept_loop)

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(0.1)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError as e:
                self.errors.append(e)
                return
            if not data:
                return
            with self._lock:
                self.received += len(data)
            if self.echo:
                try:
                    conn.sendall(data)
                except OSError as e:
                    self.errors.append(e)
                    return

    def wait_received(self, n: int, timeout: float = 10.0) -> None:
        wait_for(lambda: self.received >= n, timeout, f"{n} bytes at the sink")

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        for t in self._threads:
            t.join(5)
        for conn in self._conns:
            conn.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def echo() -> Iterator[Sink]:
    s = Sink(echo=True)
    yield s
    s.close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def fill_until_blocked(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> int:
    """Write to a non-blocking socket until the kernel stops taking data; return bytes."""
    sock.setblocking(False)
    sent = 0
    chunk = bytes(16 * 1024)
    stalls = 0
    while sent < limit:
        try:
            sent += sock.send(chunk)
            stalls = 0
        except BlockingIOError:
            # Blocked for real only if it stays unwritable for a while.
            _, writable, _ = select.select([], [sock], [], 0.3)
            if not writable:
                return sent
            stalls += 1
            assert stalls < 100
    raise AssertionError(f"{limit} bytes went in without blocking")


def test_pass_forwards_both_ways(echo: Sink) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    with FaultProxy("127.0.0.1", echo.port) as proxy, connect(proxy.port) as c:
        sender = threading.Thread(target=c.sendall, args=(payload,), daemon=True)
        sender.start()
        assert recv_exactly(c, len(payload)) == payload
        sender.join(5)
        # The proxy counts a chunk once its send returns, which may be just after the
        # client has it.
        wait_for(lambda: proxy.bytes_returned == len(payload), 5, "every byte counted back")
        wait_for(lambda: proxy.bytes_forwarded == len(payload), 5, "every byte counted forward")
        assert proxy.connections == 1
        assert proxy.active_connections == 1


async def test_usable_from_an_async_test(echo: Sink) -> None:
    with FaultProxy("127.0.0.1", echo.port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"jalsa")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"jalsa"
        writer.close()
        await writer.wait_closed()


def test_refuse_then_listen_again_on_the_same_port(echo: Sink) -> None:
    with FaultProxy("127.0.0.1", echo.port, mode="refuse") as proxy:
        port = proxy.port
        assert port != 0
        with pytest.raises(ConnectionRefusedError):
            connect(port)
        proxy.set_mode("pass")
        assert proxy.port == port
        with connect(port) as c:
            c.sendall(b"hello")
            assert recv_exactly(c, 5) == b"hello"
            # Going down resets open connections and refuses new ones.
            proxy.set_mode("refuse")
            with pytest.raises(ConnectionResetError):
                c.sendall(b"x")
                c.recv(1)
            with pytest.raises(ConnectionRefusedError):
                connect(port)
        proxy.set_mode("pass")
        with connect(port) as c:
            c.sendall(b"again")
            assert recv_exactly(c, 5) == b"again"
        assert proxy.connections == 2


def test_reset_after_bytes_aborts_both_sides(sink: Sink) -> None:
    budget = 10_000
    with FaultProxy("127.0.0.1", sink.port, mode="reset", reset_after_bytes=budget) as proxy:
        with connect(proxy.port) as c, pytest.raises(ConnectionResetError):
            c.sendall(bytes(50_000))
            c.recv(1)
        assert proxy.bytes_forwarded == budget
        wait_for(lambda: sink.errors, 5, "the sink to see its connection end")
        assert any(isinstance(e, ConnectionResetError) for e in sink.errors)
        assert sink.received <= budget
        assert proxy.active_connections == 0


def test_reset_with_zero_budget_resets_at_once(sink: Sink) -> None:
    with FaultProxy("127.0.0.1", sink.port, mode="reset", reset_after_bytes=0) as proxy:
        # On a loaded machine the reset can land before connect() returns: either way
        # the client sees its connection reset and nothing reaches the upstream.
        with pytest.raises(ConnectionResetError), connect(proxy.port) as c:
            c.recv(1)
        assert proxy.bytes_forwarded == 0


def test_reset_applies_to_open_connections_from_the_switch(sink: Sink) -> None:
    with FaultProxy("127.0.0.1", sink.port) as proxy, connect(proxy.port) as c:
        c.sendall(bytes(30_000))
        sink.wait_received(30_000)
        proxy.set_mode("reset", reset_after_bytes=5_000)
        with pytest.raises(ConnectionResetError):
            c.sendall(bytes(20_000))
            c.recv(1)
        assert proxy.bytes_forwarded == 35_000


def test_blackhole_blocks_the_writer_and_never_connects_upstream(sink: Sink) -> None:
    with FaultProxy("127.0.0.1", sink.port, mode="blackhole") as proxy, connect(proxy.port) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        sent = fill_until_blocked(c)
        assert 0 < sent < 4 * 1024 * 1024
        assert sink.accepted == 0
        assert proxy.bytes_forwarded == 0
        # Leaving the blackhole delivers everything, in order and complete.
        proxy.set_mode("pass")
        sink.wait_received(sent)
        assert sink.accepted == 1


def test_blackhole_stops_reading_open_connections(sink: Sink) -> None:
    with FaultProxy("127.0.0.1", sink.port) as proxy, connect(proxy.port) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        c.sendall(bytes(100_000))
        sink.wait_received(100_000)
        proxy.set_mode("blackhole")
        sent = fill_until_blocked(c)
        # A window in which nothing may arrive: there is no event to wait for.
        time.sleep(0.3)
        assert sink.received == 100_000
        proxy.set_mode("pass")
        sink.wait_received(100_000 + sent)
        wait_for(lambda: proxy.bytes_forwarded == 100_000 + sent, 5, "the backlog counted")


def test_throttle_limits_the_rate_and_pushes_back_on_the_sender(sink: Sink) -> None:
    rate = 100_000
    total = 250_000
    expected = total / rate
    with FaultProxy("127.0.0.1", sink.port, mode="throttle", rate_bytes_per_s=rate) as proxy:
        with connect(proxy.port) as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
            start = time.monotonic()
            c.sendall(bytes(total))
            send_time = time.monotonic() - start
            sink.wait_received(total, timeout=30)
            elapsed = time.monotonic() - start
        # Loose bounds: the point is "about the rate", not a precise measurement.
        assert 0.5 * expected < elapsed < 4 * expected
        # The sender itself was held back (it could not just dump into buffers).
        assert send_time > 0.3 * expected
        wait_for(lambda: proxy.bytes_forwarded == total, 5, "every byte counted forward")


def test_throttle_to_pass_speeds_up(sink: Sink) -> None:
    proxy = FaultProxy("127.0.0.1", sink.port, mode="throttle", rate_bytes_per_s=20_000)
    with proxy, connect(proxy.port) as c:
        done = threading.Event()

        def send() -> None:
            with contextlib.suppress(OSError):
                c.sendall(bytes(2_000_000))
            done.set()

        threading.Thread(target=send, daemon=True).start()
        wait_for(lambda: sink.received >= 5_000, 5, "the first throttled bytes")
        assert sink.received < 100_000
        proxy.set_mode("pass")
        assert done.wait(10)
        sink.wait_received(2_000_000)


def test_stop_closes_every_socket(echo: Sink) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port)
    port = proxy.start()
    with connect(port) as c:
        c.sendall(b"hi")
        assert recv_exactly(c, 2) == b"hi"
        proxy.stop()
        c.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert c.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    proxy.stop()  # twice is fine


def test_rejects_bad_arguments(sink: Sink) -> None:
    with pytest.raises(ValueError):
        FaultProxy("127.0.0.1", sink.port, mode="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaultProxy("127.0.0.1", sink.port, rate_bytes_per_s=0)
    with FaultProxy("127.0.0.1", sink.port) as proxy:
        with pytest.raises(ValueError):
            proxy.set_mode("reset", reset_after_bytes=-1)
        with pytest.raises(RuntimeError):
            proxy.start()
