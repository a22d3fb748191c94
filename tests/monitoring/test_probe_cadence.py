"""A pushing agent's cadence: calm (every ``calm_interval``) after three clear rounds in a
row, back to ``interval`` at the first failure."""

from __future__ import annotations

from monitoring.probe_cadence import Cadence
from monitoring.probe_round import CheckResult, Download, ProbeRound, Vantage

V = Vantage("lahore-1", "Lahore", "PTCL")


def a_round(
    *, ok: bool = True, control_only_fails: bool = False, download: str | None = ""
) -> ProbeRound:
    checks = [
        CheckResult("youtube", "web", "h", c, ok, 0.01) for c in ("dns", "tcp", "tls", "http")
    ]
    checks.append(CheckResult("control", "web", "h", "tcp", not control_only_fails, 0.01))
    downloads = (
        ()
        if download == ""
        else (Download("youtube", "h", 0 if download else 64_000, 1.0, download),)
    )
    return ProbeRound(V, 0.0, 1.0, tuple(checks), (), downloads)


def test_three_clear_rounds_make_it_calm_and_one_failure_ends_it() -> None:
    cadence = Cadence(30.0, 240.0)
    assert [cadence.after(a_round()) for _ in range(4)] == [30.0, 30.0, 240.0, 240.0]
    assert cadence.after(a_round(ok=False)) == 30.0
    assert [cadence.after(a_round()) for _ in range(3)] == [30.0, 30.0, 240.0]


def test_a_failed_control_or_download_is_not_clear() -> None:
    for unclear in (a_round(control_only_fails=True), a_round(download="timeout")):
        cadence = Cadence(30.0, 240.0)
        assert [cadence.after(unclear) for _ in range(4)] == [30.0] * 4
    cadence = Cadence(30.0, 240.0)
    assert [cadence.after(a_round(download=None)) for _ in range(3)][-1] == 240.0


def test_a_round_that_checked_nothing_is_not_clear() -> None:
    cadence = Cadence(30.0, 240.0)
    empty = ProbeRound(V, 0.0, 1.0)
    assert [cadence.after(empty) for _ in range(4)] == [30.0] * 4


def test_a_calm_interval_at_or_below_the_interval_is_off() -> None:
    for calm in (0.0, 30.0, 10.0):
        cadence = Cadence(30.0, calm)
        assert {cadence.after(a_round()) for _ in range(5)} == {30.0}
