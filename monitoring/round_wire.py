"""One probe round as a pushing agent sends it: a small JSON body, and its strict reading.

Sans-I/O. The body (about 1-2 KB for the default targets) holds the per-platform
aggregate of the round (:meth:`ProbeRound.outcomes`), not every target::

    {"v": 1, "agent": "lahore-1", "generation": 0, "seq": 17, "sent_at": 1796000000.5,
     "vantage": "lahore-1", "city": "Lahore", "isp": "PTCL",
     "context": {"resolver": "192.168.1.1", "asn": 17557, "network": "mobile"},
     "backlog": 0, "started_at": 1796000000.0, "finished_at": 1796000000.4,
     "next_in": 240.0,
     "results": [["youtube", "dns", true, 0.012], ...],
     "throughput": [["youtube", 250000.0], ...],
     "resolvers": [["youtube", "control", true], ...]}

:func:`read_round` refuses anything that is not exactly that, with a reason that becomes
the ``reason`` label of ``jalsa_agent_rejected_total``: ``malformed`` (not this shape),
``labels`` (a label or platform that is not a label), ``timing`` (a round that ends
before it starts, lasts over :data:`MAX_ROUND_SECONDS`, or has a check longer than the
round). ``next_in`` (optional) is when the agent's next round comes, in seconds: an
agent at its calm cadence says so, and jalsa keeps its results fresh (and does not count
it silent) until then; up to :data:`MAX_NEXT_IN`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final, cast

from monitoring.outage import Check
from monitoring.probe_round import CheckResult, Download, ProbeRound, ResolverResult, Vantage
from orchestrator.event.monitoring_spec import LABEL_PATTERN

VERSION: Final = 1
MAX_BODY: Final = 64 * 1024
MAX_ROUND_SECONDS: Final = 600.0
MAX_RESULTS: Final = 256
MAX_NEXT_IN: Final = 3600.0
MAX_SPEED: Final = 1e10  # bytes/s: 80 Gbit/s is no volunteer's link
NETWORKS: Final = ("mobile", "fixed", "unknown")
_CHECKS: Final = ("dns", "tcp", "tls", "http")


class Refused(ValueError):
    """A body that is not a usable round; ``reason`` is the metric's label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Context:
    """The agent's own connectivity, as it knows it."""

    resolver: str = ""
    asn: int | None = None
    network: str = "unknown"


@dataclass(frozen=True, slots=True)
class PushedRound:
    """A round read from a body: who sent it and what it measured (agent's clock)."""

    agent: str
    generation: int
    seq: int
    sent_at: float
    backlog: int
    context: Context
    round: ProbeRound


def encode_round(
    found: ProbeRound, *, agent: str, generation: int, seq: int, context: Context
) -> dict[str, Any]:
    """The body of a round without ``sent_at`` and ``backlog`` (added when it is sent)."""
    v = found.vantage
    return {
        "v": VERSION,
        "agent": agent,
        "generation": generation,
        "seq": seq,
        "vantage": v.name,
        "city": v.city,
        "isp": v.isp,
        "context": {"resolver": context.resolver, "asn": context.asn, "network": context.network},
        "started_at": found.started_at,
        "finished_at": found.finished_at,
        "next_in": found.next_in,
        "results": [
            [platform, check, ok, round(seconds, 4)]
            for (platform, check), (ok, seconds) in sorted(found.outcomes().items())
        ],
        "throughput": [[p, round(s, 1)] for p, s in sorted(found.throughput().items())],
        "resolvers": [[p, name, ok] for (p, name), ok in sorted(_answered(found).items())],
    }


def _answered(found: ProbeRound) -> dict[tuple[str, str], bool]:
    """(platform, resolver) -> did it answer for every host of the platform."""
    answered: dict[tuple[str, str], bool] = {}
    for r in found.resolvers:
        key = (r.platform, r.resolver)
        answered[key] = answered.get(key, True) and r.success
    return answered


def body_bytes(stored: dict[str, Any], *, sent_at: float, backlog: int) -> bytes:
    return json.dumps({**stored, "sent_at": sent_at, "backlog": backlog}).encode()


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused("malformed", f"{what} is not a number")
    return float(value)


def _integer(value: object, what: str, low: int = 0, high: int = 2**53) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused("malformed", f"{what} is not an integer in {low}..{high}")
    return value


def _label(value: object, what: str) -> str:
    if not isinstance(value, str) or not LABEL_PATTERN.fullmatch(value):
        raise Refused("labels", f"{what} is not a label")
    return value


def _rows(data: dict[str, Any], key: str, width: int) -> list[list[Any]]:
    rows = data.get(key, [])
    if not isinstance(rows, list) or len(rows) > MAX_RESULTS:
        raise Refused("malformed", f"{key} is not a list of at most {MAX_RESULTS}")
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise Refused("malformed", f"{key} has a row that is not {width} items")
    return rows


def read_round(body: bytes) -> PushedRound:
    """Raises:
    Refused: see the module's docstring.
    """
    if len(body) > MAX_BODY:
        raise Refused("malformed", "too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused("malformed", "not JSON") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise Refused("malformed", f"not a version {VERSION} round")
    raw_context = data.get("context", {})
    if not isinstance(raw_context, dict):
        raise Refused("malformed", "context is not an object")
    resolver = raw_context.get("resolver", "")
    asn = raw_context.get("asn")
    network = raw_context.get("network", "unknown")
    if not isinstance(resolver, str) or len(resolver) > 64 or network not in NETWORKS:
        raise Refused("malformed", "context has a bad resolver or network")
    context = Context(
        resolver, None if asn is None else _integer(asn, "asn", 0, 2**32 - 1), network
    )
    vantage = Vantage(
        _label(data.get("vantage"), "vantage"),
        _label(data.get("city"), "city"),
        _label(data.get("isp"), "isp"),
    )
    started = _number(data.get("started_at"), "started_at")
    finished = _number(data.get("finished_at"), "finished_at")
    if not 0 <= finished - started <= MAX_ROUND_SECONDS:
        raise Refused("timing", "the round ends before it starts, or lasts too long")
    next_in = _number(data.get("next_in", 0.0), "next_in")
    if not 0 <= next_in <= MAX_NEXT_IN:
        raise Refused("malformed", f"next_in is not 0..{MAX_NEXT_IN:g} seconds")
    checks: list[CheckResult] = []
    for platform, check, ok, seconds in _rows(data, "results", 4):
        if check not in _CHECKS or not isinstance(ok, bool):
            raise Refused("malformed", "a result has a bad check or success")
        took = _number(seconds, "a check's seconds")
        if not 0 <= took <= finished - started + 1.0:
            raise Refused("timing", "a check took longer than its round")
        checks.append(
            CheckResult(_label(platform, "platform"), "agent", "", cast(Check, check), ok, took)
        )
    if len({(c.platform, c.check) for c in checks}) != len(checks):
        raise Refused("malformed", "a check is reported twice")
    downloads = []
    for platform, speed in _rows(data, "throughput", 2):
        bps = _number(speed, "a throughput")
        if not 0 <= bps <= MAX_SPEED:
            raise Refused("timing", "an impossible throughput")
        downloads.append(Download(_label(platform, "platform"), "", round(bps), 1.0))
    resolvers = []
    for platform, name, ok in _rows(data, "resolvers", 3):
        if name not in ("system", "control") or not isinstance(ok, bool):
            raise Refused("malformed", "a resolver row is bad")
        resolvers.append(ResolverResult(_label(platform, "platform"), "", name, ok, 0.0))
    agent = data.get("agent")
    if not isinstance(agent, str):
        raise Refused("malformed", "no agent")
    return PushedRound(
        agent=agent,
        generation=_integer(data.get("generation"), "generation", 0, 10**6),
        seq=_integer(data.get("seq"), "seq"),
        sent_at=_number(data.get("sent_at"), "sent_at"),
        backlog=_integer(data.get("backlog", 0), "backlog", 0, 10**6),
        context=context,
        round=ProbeRound(
            vantage,
            started,
            finished,
            tuple(checks),
            tuple(resolvers),
            tuple(downloads),
            tuple(dict.fromkeys(c.platform for c in checks)),
            next_in,
        ),
    )
