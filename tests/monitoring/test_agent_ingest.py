"""Pushing agents, sans I/O: links, signed bodies, and every reason jalsa refuses a round.

A real registry in a temp state dir (``jalsa agents add`` writes the same file); bodies
made by the agent's own encoder and signer, then forged, replayed, tampered with, or
sent by a revoked link. Each refusal is counted by reason and leaves no trace in the
agents' view.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from monitoring.agent_ingest import Accepted, AgentIngest
from monitoring.agent_link import agent_key, make_link, parse_link, sign_body
from monitoring.agent_registry import AgentRegistry, enrol, load_agent_secret, revoke
from monitoring.probe_round import CheckResult, Download, ProbeRound, Vantage
from monitoring.round_wire import Context, body_bytes, encode_round, read_round
from monitoring.silence import Presence, silent_countries

T = 1_797_000_000.0
ENV = {"JALSA_SECRET": "agents-secret-for-tests-0123456789"}


def a_round(at: float, vantage: Vantage, ok: bool = True) -> ProbeRound:
    checks = tuple(
        CheckResult(p, "web", "h", c, ok or p == "control", 0.01)
        for p in ("control", "youtube")
        for c in ("dns", "tcp", "tls", "http")
    )
    return ProbeRound(vantage, at - 1.0, at, checks, (), (Download("youtube", "h", 50_000, 1.0),))


class Agent:
    """What ``jalsa probe --join`` does with its link, without the network."""

    def __init__(self, link: str) -> None:
        self.link = parse_link(link)
        self.seq = 0

    def body(self, at: float, *, sent_at: float | None = None, seq: int | None = None,
             ok: bool = True, **changes: Any) -> tuple[bytes, str]:  # fmt: skip
        v = Vantage(self.link.agent, self.link.city, self.link.isp)
        stored = encode_round(
            a_round(at, v, ok),
            agent=self.link.agent,
            generation=self.link.generation,
            seq=self.seq if seq is None else seq,
            context=Context("10.0.0.53", 17557, "mobile"),
        )
        self.seq += 1
        stored.update(changes)
        body = body_bytes(stored, sent_at=at if sent_at is None else sent_at, backlog=0)
        return body, sign_body(self.link, body)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def enrolled(state: Path, agent: str = "lahore-1", city: str = "Lahore") -> Agent:
    a = enrol(state, agent, city, "PTCL", "PK")
    key = agent_key(load_agent_secret(state, ENV), a.id, a.generation)
    return Agent(make_link("https://jalsa.example", a.id, a.generation, key, city, "PTCL", "PK"))


def ingest(state: Path, into: list[Accepted] | None = None) -> AgentIngest:
    return AgentIngest(AgentRegistry(state, ENV), on_round=None if into is None else into.append)


def test_a_link_holds_what_the_agent_needs_and_survives_spaces(state: Path) -> None:
    a = enrol(state, "pesh-3", "Peshawar", "Jazz 4G", "PK")
    key = agent_key(b"s" * 32, a.id, a.generation)
    link = parse_link(make_link("https://j.example/base/", a.id, 0, key, "Peshawar", "Jazz 4G"))
    assert (link.agent, link.city, link.isp, link.generation) == (
        "pesh-3",
        "Peshawar",
        "Jazz 4G",
        0,
    )
    assert link.rounds_url == "https://j.example/base/agents/pesh-3/rounds"
    assert "k=" not in repr(link) and key.hex() not in repr(link)


def test_an_honest_round_is_accepted_and_kept_with_its_context(state: Path) -> None:
    agent = enrolled(state)
    got: list[Accepted] = []
    jalsa = ingest(state, got)
    body, signature = agent.body(T)
    verdict = jalsa.submit("lahore-1", body, signature, T + 0.2)
    assert (verdict.status, verdict.reason, verdict.late) == (200, None, False)
    (view,) = jalsa.snapshot().agents
    assert view.vantage == Vantage("lahore-1", "Lahore", "PTCL")
    assert view.context == Context("10.0.0.53", 17557, "mobile") and view.country == "PK"
    assert got[0].round.outcomes()["youtube", "tcp"] == (True, 0.01)
    assert got[0].round.throughput() == {"youtube": 50_000.0}


@pytest.mark.parametrize(
    ("attack", "reason", "status"),
    [
        ("forged", "bad_signature", 401),
        ("tampered", "bad_signature", 401),
        ("unknown", "unknown_agent", 401),
        ("replayed", "replay", 409),
        ("revoked", "revoked", 403),
        ("old_link", "revoked", 403),
        ("labels", "labels", 422),
        ("future", "timing", 422),
        ("impossible", "timing", 422),
        ("too_fast", "too_fast", 422),
        ("too_old", "too_old", 422),
    ],
)
def test_refused_submissions_are_counted_and_leave_no_trace(
    state: Path, attack: str, reason: str, status: int
) -> None:
    agent = enrolled(state)
    other = enrolled(state, "karachi-1", "Karachi")
    jalsa = ingest(state)
    first, first_sig = agent.body(T)
    assert jalsa.submit("lahore-1", first, first_sig, T).status == 200
    before = jalsa.snapshot().agents
    at = T + 30
    body, sig = agent.body(at)
    name = "lahore-1"
    if attack == "forged":
        sig = sign_body(other.link, body)  # another agent's key
    elif attack == "tampered":
        body = body.replace(b"true", b"false", 1)
    elif attack == "unknown":
        name = "nobody"
    elif attack == "replayed":
        body, sig = first, first_sig
    elif attack == "revoked":
        revoke(state, "lahore-1")
        jalsa.registry.refresh()  # type: ignore[attr-defined]
    elif attack == "old_link":
        enrolled(state)  # enrolled again: a new generation
        jalsa.registry.refresh()  # type: ignore[attr-defined]
    elif attack == "labels":
        body, sig = agent.body(at, city="Islamabad")
    elif attack == "future":
        body, sig = agent.body(at + 3600, sent_at=at)
    elif attack == "impossible":
        body, sig = agent.body(at, started_at=at + 5)
    elif attack == "too_fast":
        body, sig = agent.body(T + 0.5, sent_at=at)
    elif attack == "too_old":
        body, sig = agent.body(at - 2 * 86400, sent_at=at)
    verdict = jalsa.submit(name, body, sig, at)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert dict(jalsa.snapshot().rejected) == {reason: 1}
    after = jalsa.snapshot().agents
    assert [a.latest for a in after] == [a.latest for a in before]
    assert [(a.on_time, a.late) for a in after] == [(1, 0)]


def test_a_late_round_counts_by_its_measurement_time_and_never_twice(state: Path) -> None:
    agent = enrolled(state)
    jalsa = ingest(state, got := [])
    live, live_sig = agent.body(T + 600)
    cut = [
        agent.body(T + 30 * i, sent_at=T + 601) for i in range(1, 5)
    ]  # measured while jalsa was cut off
    assert jalsa.submit("lahore-1", live, live_sig, T + 600.1).status == 200
    for body, sig in cut:
        verdict = jalsa.submit("lahore-1", body, sig, T + 601)
        assert verdict.status == 200 and verdict.late
    for body, sig in cut:  # the agent lost the answers and sends them again
        assert jalsa.submit("lahore-1", body, sig, T + 602).reason == "replay"
    (view,) = jalsa.snapshot().agents
    assert (view.on_time, view.late) == (1, 4)
    assert view.latest is not None and view.latest.finished_at == T + 600  # the newest stays
    assert sorted(a.round.finished_at for a in got) == [T + 30 * i for i in (1, 2, 3, 4)] + [
        T + 600
    ]


def test_clock_skew_is_corrected_and_reported(state: Path) -> None:
    agent = enrolled(state)
    jalsa = ingest(state, got := [])
    body, sig = agent.body(T + 300, sent_at=T + 300.5)  # the agent's clock is 5 min fast
    assert jalsa.submit("lahore-1", body, sig, T + 0.5).status == 200
    (view,) = jalsa.snapshot().agents
    assert view.skew == pytest.approx(300.0)
    assert got[0].round.finished_at == pytest.approx(T)


def test_nonsense_bodies_are_refused_by_shape() -> None:
    for body in (b"", b"[]", b'{"v": 2}', b"x" * 70_000):
        with pytest.raises(ValueError):
            read_round(body)
    good = encode_round(
        a_round(T, Vantage("v", "c", "i")), agent="v", generation=0, seq=1, context=Context()
    )
    bad = json.loads(body_bytes(good, sent_at=T, backlog=0))
    bad["results"][0][3] = 1e9  # a check longer than its round
    with pytest.raises(ValueError, match="timing"):
        read_round(json.dumps(bad).encode())


def test_many_agents_of_a_country_falling_silent_is_a_national_signal() -> None:
    heard = [Presence(f"v{i}", f"city{i % 3}", "PK", T) for i in range(6)]
    quiet = [Presence(p.vantage, p.city, p.country, T - 600) if i < 4 else p
             for i, p in enumerate(heard)]  # fmt: skip
    (outage,) = silent_countries(quiet, T + 10, silent_after=120, home_uplink_ok=True)
    assert (outage.scope, outage.platform, len(outage.vantages)) == ("national", "silent", 4)
    # our own uplink down, or unknown: the silence may be ours
    assert silent_countries(quiet, T + 10, silent_after=120, home_uplink_ok=False) == set()
    assert silent_countries(quiet, T + 10, silent_after=120, home_uplink_ok=None) == set()
    assert silent_countries(heard, T + 10, silent_after=120, home_uplink_ok=True) == set()


def test_a_round_accepted_before_a_restart_is_not_accepted_again(state: Path) -> None:
    agent = enrolled(state)
    body, sig = agent.body(T)
    first = ingest(state, got := [])
    assert first.submit("lahore-1", body, sig, T + 1).status == 200
    again = ingest(state)  # jalsa restarted: it remembers from the samples
    again.remember(got[0].round, got[0].seq, "PK")
    assert again.snapshot().agents == ()
    assert again.submit("lahore-1", body, sig, T + 2).reason == "replay"


def test_without_enrolled_agents_jalsa_reads_no_secret(state: Path) -> None:
    registry = AgentRegistry(state, {})
    assert not (state / "secret").exists() and registry.agents == {}
    enrolled(state)  # an agent: the registry now needs the secret (here it makes <state>/secret)
    registry.refresh()
    assert registry.problem is None and set(registry.agents) == {"lahore-1"}
    (state / "secret").chmod(0o644)  # open to others: refused, and nobody is trusted
    late = AgentRegistry(state, {})
    assert late.problem is not None and late.agents == {}


def test_the_live_view_keeps_a_speed_until_the_next_download(state: Path) -> None:
    """An agent downloads in one round of 20: between two, its live view (what
    jalsa_probe_throughput_* exports) keeps the last speed, for 15 minutes at most."""
    agent = enrolled(state)
    jalsa = ingest(state)
    assert jalsa.submit("lahore-1", *agent.body(T), T).status == 200
    without = agent.body(T + 30, throughput=[])
    assert jalsa.submit("lahore-1", *without, T + 30).status == 200
    (live,) = jalsa.latest_rounds(T + 31)
    assert live.finished_at == T + 30 and live.throughput() == {"youtube": 50_000.0}
    late = agent.body(T + 1000, throughput=[])
    assert jalsa.submit("lahore-1", *late, T + 1000).status == 200
    (live,) = jalsa.latest_rounds(T + 1001)
    assert live.throughput() == {}


def test_a_silent_agents_round_leaves_the_live_view(state: Path) -> None:
    """Exported as jalsa_probe_* while fresh; once older than the classifier's 120 s, no
    longer: a silent agent's last "all clear" is not a current one. Its coverage (the
    agents' view) still has it."""
    agent = enrolled(state)
    jalsa = ingest(state)
    assert jalsa.submit("lahore-1", *agent.body(T), T).status == 200
    assert [r.finished_at for r in jalsa.latest_rounds(T + 120)] == [T]
    assert jalsa.latest_rounds(T + 121) == []
    (view,) = jalsa.snapshot().agents
    assert view.latest is not None and view.latest.finished_at == T


def test_a_calm_agents_round_stays_fresh_until_its_next_is_due(state: Path) -> None:
    """An agent at its calm cadence says its next round comes in 240 s: its results stay
    in the live view (and the classifier's) until half a stale_after after that, and its
    quiet between two rounds is not silence. Past that, it leaves like any other."""
    agent = enrolled(state)
    jalsa = ingest(state)
    assert jalsa.submit("lahore-1", *agent.body(T, next_in=240.0), T).status == 200
    (live,) = jalsa.latest_rounds(T + 300)
    assert live.next_in == 240.0
    assert all(r.fresh_for == 240.0 for r in live.probe_results())
    assert jalsa.latest_rounds(T + 301) == []
    calm = [Presence(f"v{i}", f"city{i}", "PK", T, next_in=240.0) for i in range(4)]
    assert silent_countries(calm, T + 300, silent_after=120, home_uplink_ok=True) == set()
    (outage,) = silent_countries(calm, T + 301, silent_after=120, home_uplink_ok=True)
    assert len(outage.vantages) == 4


def test_next_in_is_read_within_its_limits() -> None:
    good = encode_round(
        dataclasses.replace(a_round(T, Vantage("v", "c", "i")), next_in=240.0),
        agent="v", generation=0, seq=1, context=Context(),
    )  # fmt: skip
    assert read_round(body_bytes(good, sent_at=T, backlog=0)).round.next_in == 240.0
    older = {k: v for k, v in good.items() if k != "next_in"}  # an agent from before it
    assert read_round(body_bytes(older, sent_at=T, backlog=0)).round.next_in == 0.0
    for bad in (-1, 3601, "240", True, float("inf")):
        body = json.dumps({**good, "next_in": bad, "sent_at": T, "backlog": 0}).encode()
        with pytest.raises(ValueError, match="malformed"):
            read_round(body)
