"""Probes against local servers that refuse, hang, serve bad certificates and throttle, and
a fake control resolver that truncates, answers other queries and says NXDOMAIN."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from probe_servers import Pki, ProbeServers, make_pki

from monitoring.outage import ProbeResult, ThroughputSample
from monitoring.probe_agent import PUSH_DOWNLOAD_BYTES, push_prober
from monitoring.probe_round import CheckResult, Download, ProbeRound, Vantage
from monitoring.probes import Prober
from monitoring.targets import Target, Targets

VANTAGE = Vantage("lab-1", "lahore", "ptcl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[ProbeServers]:
    with ProbeServers(pki, rate=40_000) as running:
        yield running


def prober(servers: ProbeServers, *targets: Target, **options: float) -> Prober:
    return Prober(
        VANTAGE,
        Targets(targets, ("127.0.0.1", servers.dns)),
        ssl_context=servers.pki.client_context(),
        timeout=options.pop("timeout", 1.0),
        download_seconds=options.pop("download_seconds", 1.0),
        concurrency=int(options.pop("concurrency", 8)),
    )


def by_check(found: ProbeRound, platform: str) -> dict[str, tuple[bool, str | None]]:
    return {c.check: (c.success, c.error) for c in found.checks if c.platform == platform}


async def test_a_healthy_platform_passes_every_check(servers: ProbeServers) -> None:
    good = f"https://localhost:{servers.good}"
    found = await prober(
        servers,
        Target("control", "web", f"http://localhost:{servers.plain}/"),
        Target("youtube", "web", f"{good}/generate_204", f"{good}/big"),
        Target("youtube", "ingest", f"tcp://localhost:{servers.good}"),
    ).round()
    assert found.outcomes() == {
        ("control", "dns"): (True, found.outcomes()["control", "dns"][1]),
        ("control", "tcp"): (True, found.outcomes()["control", "tcp"][1]),
        ("control", "http"): (True, found.outcomes()["control", "http"][1]),
        ("youtube", "dns"): (True, found.outcomes()["youtube", "dns"][1]),
        ("youtube", "tcp"): (True, found.outcomes()["youtube", "tcp"][1]),
        ("youtube", "tls"): (True, found.outcomes()["youtube", "tls"][1]),
        ("youtube", "http"): (True, found.outcomes()["youtube", "http"][1]),
    }
    assert all(0 <= seconds < 1 for _, seconds in found.outcomes().values())
    assert {(r.resolver, r.success) for r in found.resolvers} == {
        ("system", True),
        ("control", True),
    }
    (download,) = found.downloads
    assert download.error is None and download.bytes > 100_000
    assert found.throughput()["youtube"] > 1_000_000
    results = found.probe_results()
    assert (
        ProbeResult("lab-1", "lahore", "ptcl", "youtube", "tls", True, found.finished_at) in results
    )
    assert found.throughput_samples() == [
        ThroughputSample(
            "lab-1", "lahore", "ptcl", "youtube", download.bytes_per_second, found.finished_at
        )
    ]


async def test_refused_hanging_and_bad_certificates(servers: ProbeServers) -> None:
    found = await prober(
        servers,
        Target("refused", "web", f"https://localhost:{servers.refused}/"),
        Target("hang", "web", f"https://localhost:{servers.hang}/"),
        Target("selfsigned", "web", f"https://localhost:{servers.self_signed}/"),
        Target("wronghost", "web", f"https://localhost:{servers.wrong_host}/"),
        Target("legal", "web", f"https://localhost:{servers.good}/legal"),
        timeout=0.5,
    ).round()
    assert by_check(found, "refused") == {
        "dns": (True, None),
        "tcp": (False, "refused"),
        "tls": (False, "not tried: tcp failed"),
        "http": (False, "not tried: tcp failed"),
    }
    hang = by_check(found, "hang")
    assert hang["tcp"] == (True, None) and hang["tls"] == (False, "timeout")
    self_signed = by_check(found, "selfsigned")["tls"]
    assert not self_signed[0] and "certificate: self-signed certificate" in str(self_signed[1])
    wrong = by_check(found, "wronghost")["tls"]
    assert not wrong[0] and "certificate: Hostname mismatch" in str(wrong[1])
    assert by_check(found, "legal")["http"] == (False, "HTTP 451")
    assert by_check(found, "legal")["tls"] == (True, None)


async def test_throttled_download_is_measured(servers: ProbeServers) -> None:
    started = time.monotonic()
    found = await prober(
        servers,
        Target(
            "slow",
            "web",
            f"https://localhost:{servers.throttled}/",
            f"https://localhost:{servers.throttled}/big",
        ),
        Target(
            "fast",
            "web",
            f"https://localhost:{servers.good}/",
            f"https://localhost:{servers.good}/big",
        ),
        download_seconds=1.0,
    ).round()
    assert time.monotonic() - started < 3
    speed = found.throughput()
    assert 20_000 < speed["slow"] < 60_000  # served at 40 kB/s
    assert speed["fast"] > 10 * speed["slow"]


async def test_blocked_name_falls_back_to_the_control_resolver(servers: ProbeServers) -> None:
    found = await prober(
        servers,
        Target("blocked", "ingest", f"tcp://jalsa-blocked.invalid:{servers.good}"),
        Target("gone", "ingest", f"tcp://nx.test.invalid:{servers.good}"),
    ).round()
    blocked = by_check(found, "blocked")
    assert blocked["dns"][0] is False
    assert blocked["tcp"] == (True, None)  # reachable by address: blocked at DNS only
    control = next(
        r for r in found.resolvers if r.platform == "blocked" and r.resolver == "control"
    )
    assert control.success and control.addresses == ("127.0.0.1",)
    assert servers.dns_queries >= 2


async def test_control_resolver_failures(servers: ProbeServers) -> None:
    found = await prober(servers, Target("x", "ingest", f"tcp://nx.test:{servers.good}")).round()
    control = next(r for r in found.resolvers if r.resolver == "control")
    assert (control.success, control.error) == (False, "NXDOMAIN")
    silent = Prober(
        VANTAGE,
        Targets(
            (Target("x", "ingest", f"tcp://localhost:{servers.good}"),),
            ("127.0.0.1", servers.refused),
        ),
        timeout=0.3,
    )
    found = await silent.round()
    control = next(r for r in found.resolvers if r.resolver == "control")
    assert not control.success and control.error in ("timeout", "Connection refused")
    assert by_check(found, "x") == {"dns": (True, None), "tcp": (True, None)}


async def test_a_host_name_idna_refuses_fails_its_round_cleanly(servers: ProbeServers) -> None:
    found = await prober(servers, Target("bad", "ingest", f"tcp://a..b:{servers.good}")).round()
    resolvers = {r.resolver: (r.success, r.error) for r in found.resolvers if r.platform == "bad"}
    assert resolvers == {
        "system": (False, "'a..b' is not a valid host name"),
        "control": (False, "'a..b' is not a valid host name"),
    }
    assert by_check(found, "bad")["dns"][0] is False


async def test_a_truncated_answer_is_asked_again_over_tcp(servers: ProbeServers) -> None:
    before = servers.dns_tcp_queries
    found = await prober(
        servers, Target("t", "ingest", f"tcp://jalsa-truncated.invalid:{servers.good}")
    ).round()
    control = next(r for r in found.resolvers if r.resolver == "control")
    # Over UDP the answer was 10.0.0.1 with TC set; the full answer came over TCP.
    assert (control.success, control.addresses) == (True, ("127.0.0.1",))
    assert servers.dns_tcp_queries > before
    assert by_check(found, "t")["tcp"] == (True, None)


async def test_answers_to_other_queries_are_ignored(servers: ProbeServers) -> None:
    found = await prober(
        servers,
        Target("noisy", "ingest", f"tcp://jalsa-noisy.invalid:{servers.good}"),
        Target("spoofed", "ingest", f"tcp://jalsa-spoofed.invalid:{servers.good}"),
        timeout=0.5,
    ).round()
    control = {r.platform: r for r in found.resolvers if r.resolver == "control"}
    # Garbage, another id and another question (10.0.0.2) came first: only ours is taken.
    assert (control["noisy"].success, control["noisy"].addresses) == (True, ("127.0.0.1",))
    # Only an answer to another question: the wait goes on until the timeout.
    assert (control["spoofed"].success, control["spoofed"].error) == (False, "timeout")
    assert control["spoofed"].addresses == ()


async def test_the_control_resolver_is_asked_the_idna_name(servers: ProbeServers) -> None:
    servers.dns_names.clear()
    found = await prober(
        servers, Target("idn", "ingest", f"tcp://bücher.invalid:{servers.good}")
    ).round()
    assert servers.dns_names == ["xn--bcher-kva.invalid."]  # as getaddrinfo encodes it
    (control,) = (r for r in found.resolvers if r.resolver == "control")
    assert (control.success, control.addresses) == (True, ("127.0.0.1",))


async def test_concurrency_is_limited(servers: ProbeServers) -> None:
    targets = [Target(f"p{i}", "ingest", f"tls://127.0.0.1:{servers.hang}") for i in range(6)]
    servers.max_hanging = 0
    started = time.monotonic()
    found = await prober(servers, *targets, timeout=0.3, concurrency=2).round()
    elapsed = time.monotonic() - started
    assert servers.max_hanging <= 2
    assert 0.8 < elapsed < 3  # three waves of a 0.3 s handshake timeout
    assert all(not ok for (_, check), (ok, _) in found.outcomes().items() if check == "tls")


def test_aggregation_any_control_every_platform_target() -> None:
    def check(platform: str, role: str, ok: bool, seconds: float) -> CheckResult:
        return CheckResult(platform, role, "h", "tcp", ok, seconds, None if ok else "refused")

    found = ProbeRound(
        VANTAGE,
        0.0,
        10.0,
        (
            check("control", "a", False, 3.0),
            check("control", "b", True, 0.2),
            check("youtube", "web", True, 0.1),
            check("youtube", "ingest", False, 2.0),
            check("x", "web", True, 0.4),
        ),
        (),
        (
            Download("x", "h", 1000, 2.0),
            Download("x", "h", 10, 1.0),
            Download("x", "h", 0, 1.0, "timeout"),
        ),
    )
    assert found.outcomes() == {
        ("control", "tcp"): (True, 0.2),
        ("youtube", "tcp"): (False, 2.0),
        ("x", "tcp"): (True, 0.4),
    }
    assert found.throughput() == {"x": 500.0}


def test_pki_files_exist(pki: Pki) -> None:
    assert all(Path(p).exists() for p in (pki.ca, *pki.good, *pki.self_signed))


async def test_a_pushing_agent_downloads_64_kb_in_one_round_of_n(servers: ProbeServers) -> None:
    """jalsa probe --join's prober: the download asks for 64 KB (the stand-in honours
    Range, as a platform's static file does) and runs in rounds 0, 3, 6... only."""
    good = f"https://localhost:{servers.good}"
    targets = Targets(
        (Target("youtube", "web", f"{good}/generate_204", f"{good}/big"),),
        ("127.0.0.1", servers.dns),
    )
    agent = push_prober(VANTAGE, targets, 1.0, 3)
    agent._ssl = servers.pki.client_context()  # the stand-in's CA
    rounds = [await agent.round() for _ in range(4)]
    assert [len(r.downloads) for r in rounds] == [1, 0, 0, 1]
    for found in (rounds[0], rounds[3]):
        (download,) = found.downloads
        assert download.error is None and download.bytes == PUSH_DOWNLOAD_BYTES
    assert all(r.outcomes()["youtube", "http"][0] for r in rounds)  # HEAD: reachable


class _GetOnly(BaseHTTPRequestHandler):
    """http.server without do_HEAD: it answers a HEAD 501."""

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_a_server_that_does_not_do_head_is_reachable(servers: ProbeServers) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GetOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        found = await prober(servers, Target("x", "web", f"http://localhost:{port}/")).round()
    finally:
        server.shutdown()
        server.server_close()
    assert by_check(found, "x")["http"] == (True, None)


async def test_later_rounds_resume_the_tls_session_and_a_stand_in_server_cannot(
    servers: ProbeServers, pki: Pki
) -> None:
    """From the second round on, a handshake is a resumption (no certificate chain on a
    volunteer's link); a server answering in the platform's place under the same name
    cannot resume the platform's ticket, so its certificate is checked and fails."""
    resumed: list[bool] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        resumed.append(writer.get_extra_info("ssl_object").session_reused)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*pki.good)
    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        web = Target("youtube", "web", f"https://localhost:{port}/generate_204")
        ingest = Target("youtube", "ingest", f"tls://localhost:{port}")
        probes = prober(servers, web, ingest)
        for _ in range(3):
            found = await probes.round()
            assert all(c.success for c in found.checks), found.checks
        # the first connection is full (a target that starts after it ends may resume)
        assert not resumed[0] and resumed[2:] == [True] * 4, resumed
        # The same name at a server with another certificate and ticket key:
        probes.targets = Targets(
            (Target("youtube", "web", f"https://localhost:{servers.self_signed}/"),)
        )
        found = await probes.round()
        assert by_check(found, "youtube")["tls"][0] is False
        assert "certificate" in (by_check(found, "youtube")["tls"][1] or "")
