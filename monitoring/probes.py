"""Connectivity probes from one vantage: DNS, TCP, TLS, HTTPS and a timed download.

For each target, in order, on one connection:

1. ``dns``: the system resolver (``loop.getaddrinfo``: what the audience on this ISP
   gets); beside it, the control resolver is asked directly with dnspython, over UDP
   (and over TCP when the answer is truncated). The check is the system resolver's;
   when it fails and the control answers, names are blocked at DNS, and the control's
   addresses are used for the next steps so they still say whether the platform is
   reachable at all.
2. ``tcp``: connect to the first address that accepts (IPv4 first).
3. ``tls``: a handshake with SNI = host on that connection, the certificate verified
   (a block page's certificate fails here).
4. ``http``: ``HEAD path``; any status below 500 except 451 (blocked for legal reasons)
   means reachable. HEAD, not GET: a GET of a platform's home page starts its body at
   once (a congestion window, ~14 KB, on the link before the connection is aborted), and
   the status says as much either way (a server that does not do HEAD answers 405 or 501:
   it answered, so it is reachable).

A step that cannot run because an earlier one failed is reported failed. A target's
``download`` URL is then fetched for at most ``download_seconds`` / ``download_bytes``
for throughput (bytes of body over the time from request to last byte), asking for only
those bytes (``Range``), and only every ``throughput_every`` rounds (the first included):
it is the costly check (a pushing agent's budget: docs/monitoring.md).

Per platform, a check succeeds if it succeeded for every target of the platform (its web
and ingest endpoints); for ``control``, if it succeeded for any control target, so one
control site being down or blocked is not mistaken for a lost uplink. Throughput is the
best download of the platform. That aggregate (:mod:`monitoring.probe_round`) is what
/metrics exports and what the classifier gets.

Every step has a timeout, targets run concurrently up to ``concurrency`` at a time, and
every connection is aborted when its target is done.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A

from monitoring.outage import Check
from monitoring.probe_round import (
    CheckResult,
    Download,
    ProbeRound,
    ResolverResult,
    Vantage,
)
from monitoring.targets import Target, Targets
from monitoring.tls_sessions import SessionCache, resume_sessions

USER_AGENT: Final = "jalsa-probe/0.1"
MAX_HEADER_BYTES: Final = 64 * 1024
READ_CHUNK: Final = 64 * 1024
TICKET_WAIT: Final = 0.5  # seconds a TLS-only target waits for the server's session ticket


class _Failed(Exception):
    """A step failed; ``str`` is the short reason shown in results."""


class Prober:
    """Runs rounds of probes from one vantage.

    Args:
        vantage: the labels of this vantage.
        targets: what to probe, and the control resolver.
        timeout: the limit of each step (seconds).
        download_seconds: the longest a download runs (its speed is measured until then).
        download_bytes: a download stops after this many bytes of body.
        concurrency: targets probed at the same time.
        throughput_every: downloads run in one round of this many (1: every round).
        ssl_context: for TLS (default: the system's trust store).
        clock: wall-clock time (epoch seconds) for results.
    """

    def __init__(
        self,
        vantage: Vantage,
        targets: Targets,
        *,
        timeout: float = 5.0,
        download_seconds: float = 8.0,
        download_bytes: int = 2_000_000,
        concurrency: int = 8,
        throughput_every: int = 1,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if throughput_every < 1:
            raise ValueError("throughput_every must be at least 1")
        self.vantage = vantage
        self.targets = targets
        self.timeout = timeout
        self.download_seconds = download_seconds
        self.download_bytes = download_bytes
        self.concurrency = concurrency
        self.throughput_every = throughput_every
        self._rounds = 0
        self._ssl = ssl_context or ssl.create_default_context()
        self._sessions = SessionCache()  # the prober owns its context: it resumes sessions
        resume_sessions(self._ssl, self._sessions)
        self._clock = clock

    async def round(self) -> ProbeRound:
        """Probe every target once (and download, in one round of ``throughput_every``)."""
        started = self._clock()
        limit = asyncio.Semaphore(self.concurrency)
        download = self._rounds % self.throughput_every == 0
        self._rounds += 1
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._target(t, limit, download)) for t in self.targets.targets
            ]
        checks: list[CheckResult] = []
        resolvers: list[ResolverResult] = []
        downloads: list[Download] = []
        for task in tasks:
            c, r, d = task.result()
            checks += c
            resolvers += r
            downloads += d
        return ProbeRound(
            self.vantage,
            started,
            self._clock(),
            tuple(checks),
            tuple(resolvers),
            tuple(downloads),
            self.targets.platforms,
        )

    # -- one target ----------------------------------------------------------------------------
    async def _target(
        self, target: Target, limit: asyncio.Semaphore, download: bool
    ) -> tuple[list[CheckResult], list[ResolverResult], list[Download]]:
        async with limit:
            checks: list[CheckResult] = []

            def record(check: Check, ok: bool, seconds: float, error: str | None) -> None:
                checks.append(
                    CheckResult(
                        target.platform, target.role, target.host, check, ok, seconds, error
                    )
                )

            addresses, resolvers = await self._resolve(target.platform, target.host)
            system = next((r for r in resolvers if r.resolver == "system"), None)
            if system is not None:
                record("dns", system.success, system.seconds, system.error)
            streams = None
            blocked: str | None = None if addresses else "no address"
            try:
                for check in target.checks:
                    if check == "dns":
                        continue
                    if blocked is not None:
                        record(check, False, 0.0, f"not tried: {blocked}")
                        continue
                    started = time.monotonic()
                    try:
                        if check == "tcp":
                            streams = await self._connect(addresses, target.port)
                        elif check == "tls":
                            assert streams is not None
                            await self._tls(streams[1], target.host)
                        else:
                            assert streams is not None
                            await self._http(*streams, target.host, target.path, 0)
                    except _Failed as failure:
                        blocked = f"{check} failed"
                        record(check, False, time.monotonic() - started, str(failure))
                    else:
                        record(check, True, time.monotonic() - started, None)
                if blocked is None and streams is not None:
                    await self._keep_session(streams[1], target.host)
            finally:
                if streams is not None:
                    streams[1].transport.abort()
            downloads = []
            if target.download is not None and download:
                downloads.append(await self._download(target.platform, target.download))
            return checks, resolvers, downloads

    async def _resolve(self, platform: str, host: str) -> tuple[list[str], list[ResolverResult]]:
        """Addresses to connect to, and what each resolver said (none for an IP literal)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host], []
        system_task = self._system_resolve(platform, host)
        if self.targets.control_resolver is None:
            system = await system_task
            return list(system.addresses), [system]
        system, control = await asyncio.gather(
            system_task, self._control_resolve(platform, host, self.targets.control_resolver)
        )
        addresses = system.addresses if system.success else control.addresses
        return list(addresses), [system, control]

    async def _system_resolve(self, platform: str, host: str) -> ResolverResult:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), self.timeout
            )
        except TimeoutError:
            return ResolverResult(platform, host, "system", False, self.timeout, (), "timeout")
        except OSError as error:
            reason = error.strerror or type(error).__name__
            return ResolverResult(
                platform, host, "system", False, time.monotonic() - started, (), reason
            )
        except UnicodeError:  # the idna codec refuses the name (e.g. "a..b")
            reason = f"{host!r} is not a valid host name"
            return ResolverResult(
                platform, host, "system", False, time.monotonic() - started, (), reason
            )
        seconds = time.monotonic() - started
        # IPv4 first: a v6 route that blackholes would otherwise eat the whole timeout.
        found = dict.fromkeys(
            str(info[4][0]) for info in sorted(infos, key=lambda i: i[0] != socket.AF_INET)
        )
        return ResolverResult(platform, host, "system", bool(found), seconds, tuple(found))

    async def _control_resolve(
        self, platform: str, host: str, resolver: tuple[str, int]
    ) -> ResolverResult:
        started = time.monotonic()
        try:
            response = await asyncio.wait_for(_dns_query(host, resolver), self.timeout)
        except TimeoutError:
            return ResolverResult(platform, host, "control", False, self.timeout, (), "timeout")
        except (OSError, EOFError, dns.exception.DNSException, _Failed) as error:
            return ResolverResult(
                platform, host, "control", False, time.monotonic() - started, (), _dns_reason(error)
            )
        seconds = time.monotonic() - started
        rcode = response.rcode()
        addresses = _a_records(response)
        if rcode != dns.rcode.NOERROR or not addresses:
            reason = _rcode_name(rcode) if rcode != dns.rcode.NOERROR else "no A record"
            return ResolverResult(platform, host, "control", False, seconds, (), reason)
        return ResolverResult(platform, host, "control", True, seconds, addresses)

    async def _connect(
        self, addresses: list[str], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = time.monotonic() + self.timeout
        last = "no address"
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), remaining)
            except (TimeoutError, OSError) as error:
                last = describe(error)
        raise _Failed("timeout" if time.monotonic() >= deadline else last)

    async def _tls(self, writer: asyncio.StreamWriter, host: str) -> None:
        try:
            await asyncio.wait_for(
                writer.start_tls(
                    self._ssl, server_hostname=host, ssl_handshake_timeout=self.timeout + 1
                ),
                self.timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError) as error:
            raise _Failed(describe(error)) from None

    async def _keep_session(self, writer: asyncio.StreamWriter, host: str) -> None:
        """Keep the connection's session for the next round's handshake (resumed: no
        certificate chain on the link). A TLS 1.3 server sends its ticket after the
        handshake: an https target has read its answer by now; a TLS-only one waits for
        it up to :data:`TICKET_WAIT`."""
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        deadline = time.monotonic() + TICKET_WAIT
        # no event says a ticket came: the transport reads it while this sleeps
        while not self._sessions.keep(host, ssl_object) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def _http(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        path: str,
        body_limit: int,
    ) -> int:
        """Send a HEAD and read the status line; with a positive ``body_limit``, a GET of
        that many bytes (``Range``) and read them. Returns the body bytes read."""
        method, ranged = "HEAD", ""
        if body_limit > 0:
            method, ranged = "GET", f"Range: bytes=0-{body_limit - 1}\r\n"
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Accept: */*\r\n{ranged}Connection: close\r\n\r\n"
        )
        try:
            writer.write(request.encode("ascii"))
            await asyncio.wait_for(writer.drain(), self.timeout)
            line = await asyncio.wait_for(reader.readline(), self.timeout)
            _status(line, head=method == "HEAD")
            if body_limit <= 0:
                return 0
            await asyncio.wait_for(_skip_headers(reader), self.timeout)
            return await _read_body(reader, body_limit, self.download_seconds)
        except (TimeoutError, OSError, ssl.SSLError, ValueError) as error:
            raise _Failed(describe(error)) from None

    async def _download(self, platform: str, url: str) -> Download:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        addresses, _ = await self._resolve(platform, host)
        streams = None
        started = time.monotonic()
        try:
            streams = await self._connect(addresses, port)
            if parts.scheme == "https":
                await self._tls(streams[1], host)
            started = time.monotonic()
            size = await self._http(*streams, host, path, self.download_bytes)
            self._sessions.keep(host, streams[1].get_extra_info("ssl_object"))
            return Download(platform, host, size, time.monotonic() - started)
        except _Failed as failure:
            return Download(platform, host, 0, time.monotonic() - started, str(failure))
        finally:
            if streams is not None:
                streams[1].transport.abort()


def _status(line: bytes, *, head: bool = False) -> int:
    """The status of an HTTP/1.x status line (``head``: the answer to a HEAD, where 501,
    the method not implemented, is the server answering).

    Raises:
        ValueError: not a status line, or a status that means unreachable.
    """
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError("not an HTTP response" if line else "closed before answering")
    status = int(parts[1])
    if (status >= 500 and not (head and status == 501)) or status == 451:
        raise ValueError(f"HTTP {status}")
    return status


async def _skip_headers(reader: asyncio.StreamReader) -> None:
    size = 0
    while True:
        line = await reader.readline()
        size += len(line)
        if line in (b"\r\n", b"\n", b""):
            return
        if size > MAX_HEADER_BYTES:
            raise ValueError("headers too long")


async def _read_body(reader: asyncio.StreamReader, limit: int, seconds: float) -> int:
    """Read up to ``limit`` bytes or for ``seconds``, whichever comes first."""
    deadline = time.monotonic() + seconds
    size = 0
    while size < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(min(READ_CHUNK, limit - size)), remaining)
        except TimeoutError:
            break  # time is up: the speed so far is the measurement
        if not chunk:
            break
        size += len(chunk)
    return size


async def _dns_query(host: str, resolver: tuple[str, int]) -> dns.message.Message:
    """Ask ``resolver`` for the A records of ``host``: over UDP, and again over TCP when the
    UDP answer is truncated.

    Datagrams that are not the answer to this query (another id or question, or garbage)
    are ignored, so the wait goes on for the real answer. The UDP socket is connected, so
    an ICMP port unreachable ends the wait at once ("Connection refused").

    Raises:
        _Failed: ``host`` cannot be asked.
        OSError | EOFError | dns.exception.DNSException: no answer to read.
    """
    try:
        # IDNA 2003, as Python's getaddrinfo encodes the name the system resolver asks.
        name = dns.name.from_text(host, idna_codec=dns.name.IDNA_2003)
    except dns.exception.DNSException:
        name = dns.name.root
    if name == dns.name.root:
        raise _Failed(f"{host!r} is not a valid host name")
    query = dns.message.make_query(name, dns.rdatatype.A)
    address, port = resolver
    backend = dns.asyncbackend.get_backend("asyncio")
    udp = await backend.make_socket(  # type: ignore[no-untyped-call]  # (untyped in dnspython)
        dns.inet.af_for_address(address), socket.SOCK_DGRAM, 0, None, (address, port)
    )
    async with udp:
        response, _ = await dns.asyncquery.udp_with_fallback(
            query, address, port=port, udp_sock=udp, backend=backend, ignore_errors=True
        )
    return response


def _a_records(response: dns.message.Message) -> tuple[str, ...]:
    """The addresses of the answer section's A records (after a CNAME chain, its last
    name's)."""
    return tuple(
        rdata.address
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.A and rrset.rdclass == dns.rdataclass.IN
        for rdata in rrset
        if isinstance(rdata, dns.rdtypes.IN.A.A)
    )


def _rcode_name(rcode: dns.rcode.Rcode) -> str:
    text = dns.rcode.to_text(rcode)
    return f"RCODE{int(rcode)}" if text.isdigit() else text


def _dns_reason(error: BaseException) -> str:
    """A short reason for a control query that got no answer."""
    if isinstance(error, EOFError):
        return "closed"  # the TCP retry of a truncated answer
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return str(reason)


def describe(error: BaseException) -> str:
    """A short reason for a failed step: never the exception's text about a URL."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"tls: {error.reason or 'handshake failed'}"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, asyncio.IncompleteReadError | ConnectionAbortedError):
        return "closed"
    if isinstance(error, ValueError):
        return str(error)
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return type(error).__name__
