"""Property tests of the outage classifier: what no input may ever make it say."""

from __future__ import annotations

import random
from typing import Final

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitoring.outage import (
    Check,
    Classifier,
    Outage,
    ProbeResult,
    ThroughputSample,
    classify,
)

NOW: Final = 100_000.0
CITIES: Final = ("lahore", "karachi", "islamabad", "peshawar", "quetta")
ISPS: Final = ("ptcl", "jazz", "zong", "telenor", "stormfiber")
PLATFORMS: Final = ("youtube", "facebook", "x", "instagram")
CHECKS: Final[tuple[Check, ...]] = ("dns", "tcp", "tls", "http")

Vantage = tuple[str, str, str]  # (name, city, isp)

vantages = st.builds(
    lambda city, isp: (f"{city}-{isp}", city, isp),
    st.sampled_from(CITIES),
    st.sampled_from(ISPS),
)


# Ages around the 120 s staleness limit, and a clock slightly ahead.
AGES: Final = st.one_of(st.sampled_from((0.0, 0.0, 30.0, 120.0, 120.5, -5.0)), st.floats(-5, 300))
SPEEDS: Final = st.one_of(
    st.sampled_from((0.0, 500.0, 8_000.0, 31_999.0, 32_000.0, 64_000.0, 1e6, 1e8)),
    st.floats(0, 1e8),
)


@st.composite
def results_of(
    draw: st.DrawFn, vantage: Vantage, platforms: tuple[str, ...] = ("control", *PLATFORMS)
) -> list[ProbeResult]:
    """Any results from one vantage: a round of up to two checks of each platform,
    with any outcome and age (stale ones included), plus a few stray results."""
    name, city, isp = vantage
    results = []
    for platform in platforms:
        for check in draw(st.lists(st.sampled_from(CHECKS), max_size=2, unique=True)):
            ok, age = draw(st.sampled_from((True, True, False))), draw(AGES)
            results.append(ProbeResult(name, city, isp, platform, check, ok, NOW - age))
    for _ in range(draw(st.integers(0, 3))):
        platform, check = draw(st.sampled_from(platforms)), draw(st.sampled_from(CHECKS))
        ok, age = draw(st.sampled_from((True, True, False))), draw(AGES)
        results.append(ProbeResult(name, city, isp, platform, check, ok, NOW - age))
    return results


def samples_of(vantage: Vantage) -> st.SearchStrategy[list[ThroughputSample]]:
    name, city, isp = vantage
    return st.lists(
        st.builds(
            lambda platform, bps, age: ThroughputSample(name, city, isp, platform, bps, NOW - age),
            st.sampled_from(("control", *PLATFORMS)),
            SPEEDS,
            AGES,
        ),
        max_size=10,
    )


def healthy(vantage: Vantage, at: float = NOW) -> list[ProbeResult]:
    name, city, isp = vantage
    return [
        ProbeResult(name, city, isp, platform, check, True, at)
        for platform in ("control", *PLATFORMS)
        for check in CHECKS
    ]


def healthy_speed(vantage: Vantage, bps: float, at: float = NOW) -> list[ThroughputSample]:
    """Control and platforms at `bps` or more; 64 kB/s or more keeps even a two-city
    median, which is a mean, above the 32 kB/s throttling floor whatever the other
    city measures."""
    name, city, isp = vantage
    return [
        ThroughputSample(name, city, isp, platform, bps * (1 + i), at)
        for i, platform in enumerate(("control", *PLATFORMS))
    ]


def platform_wide(outages: set[Outage] | list[Outage] | frozenset[Outage]) -> set[Outage]:
    return {o for o in outages if o.scope != "uplink"}


@st.composite
def fleets(draw: st.DrawFn, min_size: int = 0) -> list[Vantage]:
    """Distinct healthy vantages, each in its own city."""
    cities = draw(st.lists(st.sampled_from(CITIES), min_size=min_size, max_size=4, unique=True))
    return [(f"{c}-ok", c, draw(st.sampled_from(ISPS))) for c in cities]


@settings(deadline=None)
@given(
    fleet=fleets(),
    odd=vantages,
    data=st.data(),
    speed=st.floats(64_000, 1e8),
)
def test_one_vantage_never_raises_a_platform_wide_outage(
    fleet: list[Vantage], odd: Vantage, data: st.DataObject, speed: float
) -> None:
    results = [r for v in fleet for r in healthy(v)] + data.draw(results_of(odd))
    samples = [s for v in fleet for s in healthy_speed(v, speed)] + data.draw(samples_of(odd))
    random.Random(0).shuffle(results)
    assert platform_wide(classify(results, samples, NOW)) == set()


@settings(deadline=None)
@given(
    fleet=fleets(),
    odd=vantages,
    steps=st.lists(st.floats(1, 90), min_size=1, max_size=15),
    data=st.data(),
)
def test_one_vantage_flapping_over_time_never_starts_a_platform_wide_outage(
    fleet: list[Vantage], odd: Vantage, steps: list[float], data: st.DataObject
) -> None:
    classifier = Classifier()
    t = NOW
    for step in steps:
        t += step
        odd_results = [
            ProbeResult(r.vantage, r.city, r.isp, r.platform, r.check, r.success, r.at - NOW + t)
            for r in data.draw(results_of(odd))
        ]
        results = [r for v in fleet for r in healthy(v, t)] + odd_results
        samples = [s for v in fleet for s in healthy_speed(v, 64_000, t)]
        transitions = classifier.update(results, samples, t)
        assert platform_wide(transitions.started) == set()
    assert platform_wide(classifier.active) == set()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[ProbeResult], list[ThroughputSample]]:
    """Several vantages with any results: outages of every kind happen here."""
    members = draw(st.lists(vantages, min_size=1, max_size=6, unique=True))
    results = [r for v in members for r in draw(results_of(v))]
    samples = [s for v in members for s in draw(samples_of(v))]
    return results, samples


@settings(deadline=None)
@given(scenario=scenarios(), down=vantages, data=st.data())
def test_an_uplink_down_vantage_never_contributes(
    scenario: tuple[list[ProbeResult], list[ThroughputSample]],
    down: Vantage,
    data: st.DataObject,
) -> None:
    results, samples = scenario
    assume(all((r.vantage, r.city, r.isp) != down for r in results))
    assume(all((s.vantage, s.city, s.isp) != down for s in samples))
    name, city, isp = down
    # Its control fails in its latest round; its other results and speeds are anything.
    extra = [
        ProbeResult(name, city, isp, "control", "http", False, NOW),
        *data.draw(results_of(down, PLATFORMS)),
    ]
    extra_samples = data.draw(samples_of(down))

    def judged(outages: set[Outage]) -> set[Outage]:
        # The shutdown judgement ("every vantage lost its uplink") is about uplinks.
        return {o for o in platform_wide(outages) if o.platform != "all"}

    without = judged(classify(results, samples, NOW))
    with_down = judged(classify(results + extra, samples + extra_samples, NOW))
    assert with_down == without


@settings(deadline=None)
@given(
    members=st.lists(vantages, min_size=1, max_size=8, unique=True),
    speeds=st.lists(st.floats(32_000, 1e8), min_size=8, max_size=8),
)
def test_healthy_gives_nothing(members: list[Vantage], speeds: list[float]) -> None:
    results = [r for v in members for r in healthy(v)]
    samples = [s for v, bps in zip(members, speeds, strict=False) for s in healthy_speed(v, bps)]
    assert classify(results, samples, NOW) == set()


@settings(deadline=None)
@given(scenario=scenarios(), seed=st.integers())
def test_the_order_of_results_does_not_matter(
    scenario: tuple[list[ProbeResult], list[ThroughputSample]], seed: int
) -> None:
    results, samples = scenario
    shuffled_results, shuffled_samples = results[:], samples[:]
    random.Random(seed).shuffle(shuffled_results)
    random.Random(seed).shuffle(shuffled_samples)
    assert classify(results, samples, NOW) == classify(shuffled_results, shuffled_samples, NOW)


THREE: Final[tuple[Vantage, ...]] = (
    ("lahore-1", "lahore", "ptcl"),
    ("karachi-1", "karachi", "stormfiber"),
    ("islamabad-1", "islamabad", "nayatel"),
)


def youtube_round(karachi_fails: bool, t: float) -> list[ProbeResult]:
    """Lahore always fails youtube, Islamabad never: Karachi decides a 2-of-3 majority."""
    fails = {"lahore-1": True, "karachi-1": karachi_fails, "islamabad-1": False}
    return [
        ProbeResult(name, city, isp, platform, "http", platform == "control" or not fails[name], t)
        for name, city, isp in THREE
        for platform in ("control", "youtube")
    ]


@settings(deadline=None)
@given(rounds=st.lists(st.tuples(st.floats(0.5, 45), st.booleans()), min_size=1, max_size=40))
def test_debounce_follows_its_definition(rounds: list[tuple[float, bool]]) -> None:
    """Starts once present at every round for 60 s (so a flapping city starts nothing);
    clears once absent for 120 s; since is the first round of the run that started it."""
    classifier = Classifier()
    t = NOW
    run_start: float | None = None  # first round of the current unbroken presence
    absent_since: float | None = None  # while active
    active = False
    for step, present in rounds:
        t += step
        transitions = classifier.update(youtube_round(present, t), [], t)
        expected_started: list[tuple[str, str, float]] = []
        expected_cleared = False
        run_start = (run_start if run_start is not None else t) if present else None
        if not active and run_start is not None and t - run_start >= 60:
            active, expected_started = True, [("platform", "youtube", run_start)]
        elif active and present:
            absent_since = None
        elif active:
            absent_since = absent_since if absent_since is not None else t
            if t - absent_since >= 120:
                active, absent_since, expected_cleared = False, None, True
        assert [(o.scope, o.platform, o.since) for o in transitions.started] == expected_started
        assert bool(transitions.cleared) == expected_cleared
        assert len(classifier.active) == active
