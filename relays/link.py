"""The socket under a publisher: TCP, optionally TLS, driven from one thread with select.

Every call is non-blocking or bounded: connecting checks a deadline and a ``cancelled``
callback every :data:`POLL` seconds, so a writer thread can always be stopped, and
socket waits release the GIL, so a dead link never holds up the program thread or the
event loop. (PyAV's own network I/O holds the GIL while it opens a connection: that is
why network destinations never let PyAV touch the network.)

What is in flight stays small, so that the destination's drop policy, not the kernel,
decides what a slow link gets: ``TCP_NOTSENT_LOWAT`` keeps the unsent bytes the kernel
holds under :data:`NOTSENT_LOWAT`, and ``SO_SNDBUF`` caps the unacknowledged ones.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Final

from relays.errors import ConnectFailed, RelayError

POLL: Final = 0.1
SEND_BUFFER: Final = 128 * 1024
NOTSENT_LOWAT: Final = 16 * 1024
MAX_SEND: Final = 16 * 1024  # one TLS record per send: a retried send repeats the same bytes
_TCP_NOTSENT_LOWAT: Final = getattr(socket, "TCP_NOTSENT_LOWAT", 25)


class ConnectionClosed(RelayError):
    """The server closed the connection."""


class Link:
    """One connected (and, for TLS, handshaken) non-blocking socket.

    Use :meth:`open` to make one.
    """

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self._sock = sock
        self.peer = peer

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        deadline: float,
        cancelled: Callable[[], bool],
    ) -> Link:
        """Resolve, connect and (with ``tls``) handshake, checking the certificate.

        Raises:
            ConnectFailed: DNS failure, refused, unreachable, TLS failure, timed out, or
                ``cancelled()`` became true.
        """
        peer = f"{host}:{port}"
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot resolve {host!r}: {exc.strerror}") from None
        last: Exception | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                _tune(sock)
                _connect(sock, address, peer, deadline, cancelled)
                if tls is not None:
                    sock = _handshake(tls, sock, host, peer, deadline, cancelled)
                return cls(sock, peer)
            except ConnectFailed as exc:
                sock.close()
                if "refused" not in str(exc) and "unreachable" not in str(exc):
                    raise
                last = exc
            except BaseException:
                sock.close()
                raise
        raise last if last is not None else ConnectFailed(f"{host!r} has no address")

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, *, write: bool, timeout: float) -> tuple[bool, bool]:
        """Wait up to ``timeout`` for the socket to be readable, or writable if ``write``."""
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True, write
        readable, writable, _ = select.select(
            [self._sock], [self._sock] if write else [], [], max(0.0, timeout)
        )
        return bool(readable), bool(writable)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Send what the socket takes now (at most :data:`MAX_SEND`); 0 if it is full.

        Raises:
            OSError: The connection failed (reset, broken pipe...).
        """
        try:
            return self._sock.send(data[:MAX_SEND])
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0

    def recv(self) -> bytes:
        """Everything readable now (``b""`` if nothing).

        Raises:
            ConnectionClosed: The server closed its side.
            OSError: The connection failed.
        """
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                if chunks:
                    break  # hand over what came first; the close shows on the next call
                raise ConnectionClosed(f"{self.peer} closed the connection")
            chunks.append(chunk)
            if sum(map(len, chunks)) >= 1 << 20:
                break
        return b"".join(chunks)

    def close(self, *, abort: bool = False) -> None:
        """Close; ``abort`` resets the connection instead of a graceful FIN."""
        if abort:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self._sock.close()


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)


def _connect(
    sock: socket.socket,
    address: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
    peer: str,
    deadline: float,
    cancelled: Callable[[], bool],
) -> None:
    code = sock.connect_ex(address)
    if code not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        raise _connect_error(code, peer)
    while True:
        _check(peer, deadline, cancelled, "connecting")
        _, writable, _ = select.select([], [sock], [], _slice(deadline))
        if writable:
            break
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise _connect_error(code, peer)


def _handshake(
    context: ssl.SSLContext,
    sock: socket.socket,
    host: str,
    peer: str,
    deadline: float,
    cancelled: Callable[[], bool],
) -> ssl.SSLSocket:
    tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        return _drive_handshake(tls, peer, deadline, cancelled)
    except BaseException:
        tls.close()
        raise


def _drive_handshake(
    tls: ssl.SSLSocket, peer: str, deadline: float, cancelled: Callable[[], bool]
) -> ssl.SSLSocket:
    while True:
        _check(peer, deadline, cancelled, "the TLS handshake with")
        try:
            tls.do_handshake()
            return tls
        except ssl.SSLWantReadError:
            select.select([tls], [], [], _slice(deadline))
        except ssl.SSLWantWriteError:
            select.select([], [tls], [], _slice(deadline))
        except ssl.SSLCertVerificationError as exc:
            raise ConnectFailed(
                f"TLS certificate verification failed for {peer}: {exc.verify_message}: "
                "trust its CA (ca_file, or SSL_CERT_FILE) or, only if you must, "
                "set verify_tls = false"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake with {peer} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise ConnectFailed(
                f"TLS handshake with {peer} failed: {exc.strerror or 'connection closed'}"
            ) from None


def _check(peer: str, deadline: float, cancelled: Callable[[], bool], doing: str) -> None:
    if cancelled():
        raise ConnectFailed(f"stopped while {doing} {peer}")
    if time.monotonic() >= deadline:
        raise ConnectFailed(f"timed out {doing} {peer}")


def _slice(deadline: float) -> float:
    return max(0.0, min(POLL, deadline - time.monotonic()))


def _connect_error(code: int, peer: str) -> ConnectFailed:
    if code == errno.ECONNREFUSED:
        return ConnectFailed(f"connection refused by {peer}")
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return ConnectFailed(f"{peer} is unreachable")
    return ConnectFailed(f"cannot connect to {peer}: {errno.errorcode.get(code, code)}")
