"""A TLS-terminating TCP proxy for tests: rtmps:// in front, plain RTMP (nginx) behind.

Certificates come from the ``openssl`` command line into a folder: a test CA and a
server certificate for 127.0.0.1 and localhost signed by it (:func:`make_certificates`).
Like a platform's RTMPS ingest, :class:`TlsTerminator` accepts TLS, then forwards the
plain bytes to the upstream server and back.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate (PEM): what a client trusts
    cert: Path  # the server's certificate chain
    key: Path  # the server's private key


def make_certificates(folder: Path) -> Certificates:
    """A test CA and a server certificate (SAN 127.0.0.1, localhost), valid for 2 days."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=jalsa test CA"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for command in run:
        subprocess.run([str(c) for c in command], check=True, capture_output=True, timeout=30)
    return Certificates(ca, cert, key)


class TlsTerminator:
    """Listen on 127.0.0.1 with TLS; forward each connection to ``upstream`` in clear."""

    def __init__(self, certificates: Certificates, upstream: tuple[str, int]) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificates.cert, certificates.key)
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.handshakes_failed = 0

    def __enter__(self) -> TlsTerminator:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(5)
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            client.close()
            return
        with tls, socket.create_connection(self._upstream, timeout=5) as upstream:
            tls.setblocking(False)
            upstream.setblocking(False)
            while not self._stop.is_set():
                ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.2)[0]
                for src in ready:
                    dst = upstream if src is tls else tls
                    try:
                        data = src.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    with contextlib.suppress(OSError):
                        _send_all(dst, data, self._stop)


def _send_all(sock: socket.socket, data: bytes, stop: threading.Event) -> None:
    view = memoryview(data)
    while view and not stop.is_set():
        try:
            sent = sock.send(view)
        except (ssl.SSLWantWriteError, BlockingIOError):
            select.select([], [sock], [], 0.2)
            continue
        view = view[sent:]
