"""The report judges again from every round, late uploads included, by measurement time;
and says when each vantage was measuring."""

from __future__ import annotations

from typing import Any

import pytest

from monitoring.coverage import coverage, reclassify
from monitoring.report import build_report, to_markdown

T = 1_797_000_000.0


def rounds(vantage: str, city: str, *, x_down: tuple[float, float] | None = None,
           late: tuple[float, float] | None = None,
           silent: tuple[float, float] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    found = []
    for i in range(31):
        at = T + 2 * i
        if silent and silent[0] <= at < silent[1]:
            continue
        down = x_down is not None and x_down[0] <= at < x_down[1]
        is_late = late is not None and late[0] <= at < late[1]
        found.append(
            {
                "t": (late[1] + 1 if is_late and late else at),
                "type": "probe_round", "vantage": vantage, "city": city, "isp": "isp",
                "started": at - 0.5, "measured": at, "late": is_late, "skew": 0.0,
                "results": [["control", "tcp", True], ["x", "tcp", not down]],
                "throughput": [],
            }
        )  # fmt: skip
    return found


def test_late_rounds_make_the_outage_that_the_live_view_could_not_see() -> None:
    cut = (T + 20, T + 40)
    records = [
        {"t": T - 1, "type": "start", "event": "E", "destinations": [], "speakers": []},
        {"t": T - 1, "type": "classifier", "for_seconds": 0, "clear_seconds": 0},
        # Lahore: x down during the cut, and its link to jalsa cut too: uploaded after
        *rounds("lahore-1", "Lahore", x_down=cut, late=cut),
        *rounds("karachi-1", "Karachi", x_down=cut),
        *rounds("quetta-1", "Quetta"),
    ]
    (window,) = reclassify(records, for_seconds=0, clear_seconds=0)
    assert (window.scope, window.platform) == ("platform", "x")
    assert (window.start, window.end) == (T + 20, T + 40)
    assert window.cities == ("Karachi", "Lahore") and not window.open
    # without the late rounds (what the live view had): Lahore's last round before the cut
    # (x fine) is still fresh, so x fails in one city of three: no outage
    on_time = [r for r in records if not r.get("late")]
    assert reclassify(on_time, for_seconds=0, clear_seconds=0) == ()
    report = build_report(records)
    assert [(w.platform, w.start) for w in report.judged] == [("x", T + 20)]
    lahore = next(c for c in report.coverage if c.vantage == "lahore-1")
    assert (lahore.rounds, lahore.late) == (31, 10)
    assert "Probe coverage" in to_markdown(report) and "x unreachable" in to_markdown(report)


def test_a_silent_vantage_has_a_gap_in_its_coverage() -> None:
    (c,) = coverage(rounds("pesh-1", "Peshawar", silent=(T + 20, T + 40)))
    assert c.measuring == ((T, T + 18), (T + 40, T + 60))
    assert c.rounds == 21


@pytest.mark.parametrize("clear", [0.0, 10.0])
def test_an_outage_still_present_at_the_end_is_open(clear: float) -> None:
    records = [
        *rounds("lahore-1", "Lahore", x_down=(T + 40, T + 99)),
        *rounds("karachi-1", "Karachi", x_down=(T + 40, T + 99)),
    ]
    (window,) = reclassify(records, for_seconds=0, clear_seconds=clear)
    assert window.open and window.start == T + 40


def test_a_calm_agents_announced_gaps_are_measuring() -> None:
    """A calm agent measures every 240 s after a fast stretch (every 30 s): the calm
    gaps it announced are measuring, not silence; a gap longer than it said is one."""
    times = [T + 30 * i for i in range(10)] + [T + 270 + 240 * i for i in range(1, 4)]
    calm = [0.0 if i < 10 else 240.0 for i in range(len(times))]
    calm[9] = 240.0  # the round that went calm says so
    found = [
        {"t": at, "type": "probe_round", "vantage": "v", "city": "c", "isp": "i",
         "started": at - 0.5, "measured": at, "late": False, "skew": 0.0,
         "results": [["control", "tcp", True]], "throughput": [], "next_in": n}
        for at, n in zip(times, calm, strict=True)
    ]  # fmt: skip
    (one,) = coverage(found)
    assert one.measuring == ((T, times[-1]),)
    found[-1]["measured"] = times[-2] + 400  # later than the 240 s it said (+ half)
    (split,) = coverage(found)
    assert len(split.measuring) == 2
