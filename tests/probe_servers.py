"""Local servers for the connectivity probes: good, refusing, hanging, badly certified,
blocked-for-legal-reasons and throttled, plus a fake DNS resolver (UDP and TCP, on one
port; messages made with dnspython). Nothing leaves loopback.

:func:`make_pki` writes a test CA and certificates: ``good`` (localhost, signed by the
CA), ``wrong_host`` (other.example, signed by the CA) and ``self_signed`` (localhost).
:class:`ProbeServers` runs everything on its own loop in a daemon thread, so both async
tests and sync tests (driving ``jalsa`` subprocesses) use it alike.

HTTP paths on the good and throttled servers: ``/`` answers 204, ``/big`` 2 MB of body
(on the good server, ``Range: bytes=0-N`` gets 206 and the first N + 1 bytes, as a real
platform's static file), ``/legal`` 451.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BIG = 2_000_000


@dataclass(frozen=True)
class Pki:
    ca: Path
    good: tuple[Path, Path]
    wrong_host: tuple[Path, Path]
    self_signed: tuple[Path, Path]

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _cert(
    subject: str,
    names: list[x509.GeneralName],
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki:
    local: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    ca_cert, ca_key = _cert("jalsa test CA", [], None, ca=True)
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    issuer = (ca_cert.subject, ca_key)
    good = _write(folder, "good", *_cert("localhost", local, issuer))
    wrong = _write(
        folder, "wrong", *_cert("other.example", [x509.DNSName("other.example")], issuer)
    )
    self_signed = _write(folder, "self", *_cert("localhost", local, None))
    return Pki(ca_path, good, wrong, self_signed)


def _server_context(pair: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pair[0]), str(pair[1]))
    return context


class ProbeServers:
    """Every fault a probe must tell apart, on 127.0.0.1.

    Attributes (ports): ``good`` (TLS, good cert), ``plain`` (HTTP), ``throttled`` (TLS,
    body at ``rate`` bytes/s), ``hang`` (accepts, never answers), ``self_signed``,
    ``wrong_host``, ``refused`` (nothing listens), ``dns`` (the fake resolver, UDP and TCP:
    see :func:`dns_answers`). ``dns_queries`` and ``dns_tcp_queries`` count the queries it
    got, ``dns_names`` the names asked (over UDP, in order); ``max_hanging`` is the most
    connections the hang server held at once.
    """

    def __init__(self, pki: Pki, rate: float = 20_000.0) -> None:
        self.pki = pki
        self.rate = rate
        self.good = self.plain = self.throttled = self.hang = 0
        self.self_signed = self.wrong_host = self.dns = 0
        self.refused = _free_port()
        self.hanging = 0
        self.max_hanging = 0
        self.dns_queries = 0
        self.dns_tcp_queries = 0
        self.dns_names: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> ProbeServers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _listen(self, handler: object, context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)  # type: ignore[arg-type]
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _start(self) -> None:
        good = _server_context(self.pki.good)
        self.good = await self._listen(self._http, good)
        self.plain = await self._listen(self._http)
        self.throttled = await self._listen(self._slow, good)
        self.hang = await self._listen(self._hang)
        self.self_signed = await self._listen(self._http, _server_context(self.pki.self_signed))
        self.wrong_host = await self._listen(self._http, _server_context(self.pki.wrong_host))
        await self._start_dns()

    async def _start_dns(self) -> None:
        """UDP and TCP on the same port (one a TCP listener may hold already: try another)."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _FakeResolver(self), local_addr=("127.0.0.1", 0)
            )
            port: int = transport.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(self._dns_tcp, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self._servers.append(server)
            self._udp = transport
            self.dns = port
            return
        raise OSError("no port free for both UDP and TCP")

    async def _stop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp.close()
        await asyncio.sleep(0)

    async def _request_path(self, reader: asyncio.StreamReader) -> str:
        path, _ = await self._request(reader)
        return path

    async def _request(self, reader: asyncio.StreamReader) -> tuple[str, int | None]:
        """The path, and the last byte a ``Range: bytes=0-N`` asks for (None: all)."""
        line = await reader.readline()
        last = None
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            start, _, end = value.strip().removeprefix("bytes=").partition("-")
            if name.lower() == "range" and start == "0" and end.isdigit():
                last = int(end)
        parts = line.split()
        return (parts[1].decode() if len(parts) > 1 else "/"), last

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            path, last = await self._request(reader)
            if path == "/big" and last is not None:
                size = min(BIG, last + 1)
                writer.write(
                    f"HTTP/1.1 206 Partial Content\r\nContent-Length: {size}\r\n"
                    f"Content-Range: bytes 0-{size - 1}/{BIG}\r\n\r\n".encode()
                )
                writer.write(b"x" * size)
            elif path == "/big":
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n".encode())
                writer.write(b"x" * BIG)
            elif path == "/legal":
                writer.write(
                    b"HTTP/1.1 451 Unavailable For Legal Reasons\r\nContent-Length: 0\r\n\r\n"
                )
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _slow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._request_path(reader)
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n".encode())
            chunk = 2048
            for _ in range(BIG // chunk):
                writer.write(b"y" * chunk)
                await writer.drain()
                await asyncio.sleep(chunk / self.rate)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _dns_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """DNS over TCP: each message after its two-byte length (RFC 1035 4.2.2)."""
        self._writers.add(writer)
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                query = dns.message.from_wire(await reader.readexactly(size))
                self.dns_tcp_queries += 1
                for response in dns_answers(query, tcp=True):
                    writer.write(len(response).to_bytes(2, "big") + response)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, dns.exception.DNSException):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.hanging += 1
        self.max_hanging = max(self.max_hanging, self.hanging)
        try:
            await reader.read()  # until the client gives up
        except OSError:
            pass
        finally:
            self.hanging -= 1
            self._writers.discard(writer)
            writer.transport.abort()


NX = dns.name.from_text("nx.test")
TRUNCATED = dns.name.from_text("jalsa-truncated.invalid")
NOISY = dns.name.from_text("jalsa-noisy.invalid")
SPOOFED = dns.name.from_text("jalsa-spoofed.invalid")


def dns_answers(query: dns.message.Message, *, tcp: bool = False) -> list[bytes]:
    """What the fake resolver sends back to ``query``, in order.

    ``nx.test`` is NXDOMAIN. Over UDP, ``jalsa-truncated.invalid`` gets a truncated answer
    (TC set, 10.0.0.1: what a client that ignores TC would take), ``jalsa-noisy.invalid``
    gets garbage, an answer with another id and one to another question (10.0.0.2 each)
    before the real answer, and ``jalsa-spoofed.invalid`` gets only the answer to another
    question. Every other name, and every name over TCP, is 127.0.0.1.
    """
    name = query.question[0].name if query.question else dns.name.root

    def answer(to: dns.message.Message, address: str) -> bytes:
        response = dns.message.make_response(to)
        response.answer.append(dns.rrset.from_text(to.question[0].name, 60, "IN", "A", address))
        return response.to_wire()

    if name == NX:
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NXDOMAIN)
        return [response.to_wire()]
    if tcp:
        return [answer(query, "127.0.0.1")]
    elsewhere = dns.message.make_query("elsewhere.invalid", "A", id=query.id)
    if name == TRUNCATED:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "10.0.0.1"))
        return [response.to_wire()]
    if name == NOISY:
        other_id = dns.message.make_query(name, "A", id=(query.id + 1) % 0x10000)
        return [
            b"\x00garbage",
            answer(other_id, "10.0.0.2"),
            answer(elsewhere, "10.0.0.2"),
            answer(query, "127.0.0.1"),
        ]
    if name == SPOOFED:
        return [answer(elsewhere, "10.0.0.2")]
    return [answer(query, "127.0.0.1")]


class _FakeResolver(asyncio.DatagramProtocol):
    def __init__(self, servers: ProbeServers) -> None:
        self.servers = servers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.servers.dns_queries += 1
        assert self.transport is not None
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        self.servers.dns_names += [q.name.to_text() for q in query.question]
        for response in dns_answers(query):
            self.transport.sendto(response, addr)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
