"""Unit tests of the outage classifier: the judgements and the debounce."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from monitoring.outage import (
    Check,
    Classifier,
    Outage,
    ProbeResult,
    Thresholds,
    ThroughputSample,
    classify,
)

NOW = 10_000.0
CHECKS: tuple[Check, ...] = ("dns", "tcp", "tls", "http")
VANTAGES = {
    "lahore-1": ("lahore", "ptcl"),
    "lahore-2": ("lahore", "jazz"),
    "karachi-1": ("karachi", "stormfiber"),
    "islamabad-1": ("islamabad", "nayatel"),
    "peshawar-1": ("peshawar", "telenor"),
}
THREE = ("lahore-1", "karachi-1", "islamabad-1")
FOUR = (*THREE, "peshawar-1")


def probe(
    vantage: str, platform: str, ok: bool = True, *, check: Check = "http", at: float = NOW
) -> ProbeResult:
    city, isp = VANTAGES[vantage]
    return ProbeResult(vantage, city, isp, platform, check, ok, at)


def round_(
    vantages: Iterable[str],
    platforms: Iterable[str],
    failing: Iterable[tuple[str, str]] = (),
    at: float = NOW,
) -> list[ProbeResult]:
    """Every check of every platform (and the control) from each vantage; `failing`
    lists the (vantage, platform) pairs whose tls check fails."""
    failed = set(failing)
    return [
        probe(v, p, not (check == "tls" and (v, p) in failed), check=check, at=at)
        for v in vantages
        for p in ("control", *platforms)
        for check in CHECKS
    ]


def speed(vantage: str, platform: str, bps: float, at: float = NOW) -> ThroughputSample:
    city, isp = VANTAGES[vantage]
    return ThroughputSample(vantage, city, isp, platform, bps, at)


def kinds(outages: Iterable[Outage]) -> set[tuple[str, str]]:
    return {(o.scope, o.platform) for o in outages}


# --- reachability ------------------------------------------------------------------------


def test_healthy_gives_nothing() -> None:
    results = round_(FOUR, ["youtube", "facebook", "x"])
    samples = [speed(v, p, 1_000_000) for v in FOUR for p in ("control", "youtube")]
    assert classify(results, samples, NOW) == set()


def test_platform_failing_in_most_cities_is_a_platform_outage() -> None:
    results = round_(
        THREE, ["youtube", "facebook"], [("lahore-1", "youtube"), ("karachi-1", "youtube")]
    )
    assert classify(results, [], NOW) == {
        Outage(
            scope="platform",
            platform="youtube",
            vantages=frozenset({"lahore-1", "karachi-1"}),
            cities=frozenset({"lahore", "karachi"}),
            since=NOW,
        )
    }


def test_half_of_the_cities_is_not_a_majority() -> None:
    results = round_(FOUR, ["youtube"], [("lahore-1", "youtube"), ("karachi-1", "youtube")])
    assert classify(results, [], NOW) == set()


def test_one_city_of_two_is_not_a_platform_outage() -> None:
    results = round_(["lahore-1", "karachi-1"], ["youtube"], [("lahore-1", "youtube")])
    assert classify(results, [], NOW) == set()


def test_any_failed_check_fails_the_platform() -> None:
    results = [
        *round_(THREE, ["youtube"]),
        probe("lahore-1", "youtube", False, check="dns"),
        probe("karachi-1", "youtube", False, check="tcp"),
    ]
    # The failing dns/tcp results are as fresh as the successes: a tie fails.
    assert kinds(classify(results, [], NOW)) == {("platform", "youtube")}


def test_only_the_latest_result_of_a_check_counts() -> None:
    failing_then_fixed = [
        probe(v, "youtube", False, at=NOW - 30) for v in ("lahore-1", "karachi-1")
    ] + round_(THREE, ["youtube"])
    assert classify(failing_then_fixed, [], NOW) == set()
    fixed_then_failing = round_(THREE, ["youtube"], at=NOW - 30) + [
        probe(v, "youtube", False) for v in ("lahore-1", "karachi-1")
    ]
    assert kinds(classify(fixed_then_failing, [], NOW)) == {("platform", "youtube")}


def test_stale_results_are_ignored() -> None:
    failing = [("lahore-1", "youtube"), ("karachi-1", "youtube")]
    old = round_(THREE, ["youtube"], failing, at=NOW - 121)
    assert classify(old, [], NOW) == set()
    assert kinds(classify(old, [], NOW - 1)) == {("platform", "youtube")}
    assert classify(old, [], NOW, Thresholds(stale_after=300)) != set()


def test_a_city_fails_only_when_all_its_vantages_fail() -> None:
    vantages = ("lahore-1", "lahore-2", "karachi-1", "islamabad-1")
    one_of_two = round_(vantages, ["youtube"], [("lahore-1", "youtube"), ("karachi-1", "youtube")])
    assert classify(one_of_two, [], NOW) == set()
    both = round_(
        vantages,
        ["youtube"],
        [("lahore-1", "youtube"), ("lahore-2", "youtube"), ("karachi-1", "youtube")],
    )
    (outage,) = classify(both, [], NOW)
    assert outage.cities == {"lahore", "karachi"}
    assert outage.vantages == {"lahore-1", "lahore-2", "karachi-1"}


# --- uplink ------------------------------------------------------------------------------


def test_an_uplink_down_vantage_counts_for_nothing_else() -> None:
    # lahore-1 lost its link: it fails the control and youtube. Karachi really fails
    # youtube. Counting lahore-1 would make 2 of 3 cities.
    results = round_(
        THREE,
        ["youtube"],
        [("lahore-1", "control"), ("lahore-1", "youtube"), ("karachi-1", "youtube")],
    )
    samples = [
        speed("lahore-1", "control", 1_000_000),
        speed("lahore-1", "youtube", 1_000),
        speed("karachi-1", "control", 1_000_000),
        speed("karachi-1", "youtube", 20_000),
        speed("islamabad-1", "control", 1_000_000),
        speed("islamabad-1", "youtube", 1_000_000),
    ]
    assert classify(results, samples, NOW) == {
        Outage("uplink", "control", frozenset({"lahore-1"}), frozenset({"lahore"}), NOW)
    }


def test_a_vantage_without_a_control_result_is_ignored() -> None:
    results = round_(["islamabad-1"], ["youtube"]) + [
        probe(v, "youtube", False) for v in ("lahore-1", "karachi-1")
    ]
    assert classify(results, [], NOW) == set()


def test_every_vantage_down_in_several_cities_is_a_shutdown() -> None:
    results = round_(THREE, ["youtube"], [(v, p) for v in THREE for p in ("control", "youtube")])
    assert classify(results, [], NOW) == {
        Outage(
            "national",
            "all",
            frozenset(THREE),
            frozenset({"lahore", "karachi", "islamabad"}),
            NOW,
        )
    }


def test_every_vantage_down_in_one_city_is_only_uplink() -> None:
    down = ("lahore-1", "lahore-2")
    results = round_(down, ["youtube"], [(v, "control") for v in down])
    assert kinds(classify(results, [], NOW)) == {("uplink", "control")}
    assert len(classify(results, [], NOW)) == 2


# --- national ----------------------------------------------------------------------------

NETBLOCKS = ("x", "facebook", "instagram", "youtube")


def netblocks_round(at: float = NOW) -> list[ProbeResult]:
    """X, Facebook, Instagram and YouTube fail in Lahore, Karachi and Islamabad;
    Peshawar and every control are fine."""
    return round_(FOUR, NETBLOCKS, [(v, p) for v in THREE for p in NETBLOCKS], at=at)


def test_the_netblocks_scenario_is_a_national_disruption() -> None:
    assert classify(netblocks_round(), [], NOW) == {
        Outage(
            "national",
            "*",
            frozenset(THREE),
            frozenset({"lahore", "karachi", "islamabad"}),
            NOW,
        )
    }


def test_the_netblocks_scenario_starts_once_after_a_minute() -> None:
    classifier = Classifier()
    for t in range(0, 60, 15):
        assert classifier.update(netblocks_round(NOW + t), [], NOW + t).started == []
    started = classifier.update(netblocks_round(NOW + 60), [], NOW + 60).started
    assert kinds(started) == {("national", "*")}
    assert started[0].since == NOW
    assert kinds(classifier.active) == {("national", "*")}


def test_one_platform_in_every_city_is_not_national() -> None:
    results = round_(FOUR, ["youtube", "x"], [(v, "youtube") for v in FOUR])
    assert kinds(classify(results, [], NOW)) == {("platform", "youtube")}


def test_two_platforms_in_half_the_cities_are_national() -> None:
    failing = [(v, p) for v in ("lahore-1", "karachi-1") for p in ("x", "youtube")]
    results = round_(FOUR, ["x", "youtube"], failing)
    assert kinds(classify(results, [], NOW)) == {("national", "*")}


def test_two_platforms_in_one_city_are_not_national() -> None:
    results = round_(THREE, ["x", "youtube"], [("lahore-1", "x"), ("lahore-1", "youtube")])
    assert classify(results, [], NOW) == set()


def test_national_leaves_an_uncovered_platform_outage() -> None:
    # With min_cities=3, x and youtube fail in 3 of 4 cities (national), while facebook
    # fails in 2 of 3 reporting cities: a platform outage, too few cities for national.
    failing = [(v, p) for v in THREE for p in ("x", "youtube")]
    results = round_(FOUR, ["x", "youtube"], failing) + round_(
        ("lahore-1", "karachi-1", "peshawar-1"),
        ["facebook"],
        [("lahore-1", "facebook"), ("karachi-1", "facebook")],
    )
    assert kinds(classify(results, [], NOW, Thresholds(min_cities=3))) == {
        ("national", "*"),
        ("platform", "facebook"),
    }


# --- throttling --------------------------------------------------------------------------


def throughput(per_city: Mapping[str, tuple[float, float]]) -> list[ThroughputSample]:
    """vantage -> (control speed, youtube speed)."""
    return [
        sample
        for v, (control, youtube) in per_city.items()
        for sample in (speed(v, "control", control), speed(v, "youtube", youtube))
    ]


def throttled(per_city: Mapping[str, tuple[float, float]]) -> bool:
    results = round_(per_city, ["youtube"])
    return kinds(classify(results, throughput(per_city), NOW)) == {("throttling", "youtube")}


def test_throttling_below_a_quarter_of_the_control_and_the_floor() -> None:
    assert throttled({v: (1_000_000, 8_000) for v in THREE})


def test_a_slow_network_is_not_throttling() -> None:
    assert not throttled({v: (40_000, 15_000) for v in THREE})


def test_a_fast_platform_on_a_faster_control_is_not_throttling() -> None:
    assert not throttled({v: (10_000_000, 100_000) for v in THREE})


def test_throttling_in_one_city_is_not_throttling() -> None:
    assert not throttled({"lahore-1": (1_000_000, 8_000)})
    assert not throttled(
        {
            "lahore-1": (1_000_000, 8_000),
            "karachi-1": (1_000_000, 900_000),
            "islamabad-1": (1e6, 9e5),
        }
    )


def test_throttling_takes_the_best_vantage_of_a_city() -> None:
    # Lahore's best vantage is fast: with the worst one it would be 2 slow cities of 3.
    mixed = {
        "lahore-1": (1_000_000, 8_000),
        "lahore-2": (1_000_000, 900_000),
        "karachi-1": (1_000_000, 8_000),
        "islamabad-1": (1_000_000, 900_000),
    }
    assert not throttled(mixed)
    assert throttled({**mixed, "lahore-2": (1_000_000, 8_000)})


def test_throttling_ignores_stale_samples() -> None:
    """Throughput stays fresh 15 minutes (agents download only every few rounds), not the
    2 minutes of a reachability result."""
    results = round_(THREE, ["youtube"])

    def aged(seconds: float) -> list[ThroughputSample]:
        return [
            ThroughputSample(
                s.vantage, s.city, s.isp, s.platform, s.bytes_per_second, NOW - seconds
            )
            for s in throughput({v: (1_000_000, 8_000) for v in THREE})
        ]

    assert kinds(classify(results, aged(600), NOW)) == {("throttling", "youtube")}
    assert classify(results, aged(1000), NOW) == set()
    assert classify(results, aged(200), NOW, Thresholds(throughput_stale_after=120)) == set()


def test_a_speed_tie_takes_the_slower_sample_in_any_order() -> None:
    results = round_(THREE, ["youtube"])
    slow = throughput({v: (1_000_000, 8_000) for v in THREE})
    fast = [speed(v, "youtube", 900_000) for v in THREE]
    assert kinds(classify(results, slow + fast, NOW)) == {("throttling", "youtube")}
    assert kinds(classify(results, fast + slow, NOW)) == {("throttling", "youtube")}


# --- thresholds and debounce -------------------------------------------------------------


def test_min_cities_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match="min_cities"):
        Thresholds(min_cities=1)
    with pytest.raises(ValueError):
        Classifier(for_seconds=-1)


YOUTUBE_DOWN = [("lahore-1", "youtube"), ("karachi-1", "youtube")]


def at(t: float, down: bool) -> list[ProbeResult]:
    return round_(THREE, ["youtube"], YOUTUBE_DOWN if down else [], at=t)


def test_an_outage_starts_after_holding_for_a_minute() -> None:
    classifier = Classifier()
    assert classifier.update(at(0, True), [], 0).started == []
    assert classifier.update(at(59, True), [], 59).started == []
    assert classifier.active == frozenset()
    transitions = classifier.update(at(60, True), [], 60)
    assert kinds(transitions.started) == {("platform", "youtube")}
    assert transitions.started[0].since == 0
    assert transitions.cleared == []
    # Started once: holding on is not a new start.
    assert classifier.update(at(90, True), [], 90).started == []


def test_an_interrupted_streak_starts_over() -> None:
    classifier = Classifier()
    for t, down in [(0, True), (30, True), (45, False), (60, True), (90, True)]:
        assert classifier.update(at(t, down), [], t).started == []
    assert kinds(classifier.update(at(120, True), [], 120).started) == {("platform", "youtube")}


def test_an_outage_clears_after_two_minutes_absent() -> None:
    classifier = Classifier(for_seconds=0)
    assert kinds(classifier.update(at(0, True), [], 0).started) == {("platform", "youtube")}
    assert classifier.update(at(10, False), [], 10).cleared == []
    # Back before the two minutes are up: still the same outage, no new start.
    back = classifier.update(at(100, True), [], 100)
    assert back.started == back.cleared == []
    assert classifier.update(at(200, False), [], 200).cleared == []
    assert classifier.update(at(319, False), [], 319).cleared == []
    assert len(classifier.active) == 1
    cleared = classifier.update(at(320, False), [], 320).cleared
    assert kinds(cleared) == {("platform", "youtube")}
    assert cleared[0].since == 0
    assert classifier.active == frozenset()


def test_an_active_outage_follows_the_cities_involved() -> None:
    classifier = Classifier(for_seconds=0)
    classifier.update(at(0, True), [], 0)
    worse = round_(THREE, ["youtube"], [*YOUTUBE_DOWN, ("islamabad-1", "youtube")], at=30)
    assert classifier.update(worse, [], 30) == classifier.update(worse, [], 31)
    (outage,) = classifier.active
    assert outage.cities == {"lahore", "karachi", "islamabad"}
    assert outage.since == 0


def test_time_must_not_go_backwards() -> None:
    classifier = Classifier()
    classifier.update([], [], 100)
    with pytest.raises(ValueError, match="backwards"):
        classifier.update([], [], 99)


def test_uplink_outages_are_tracked_per_vantage() -> None:
    classifier = Classifier(for_seconds=0, clear_seconds=0)
    one = round_(THREE, [], [("lahore-1", "control")])
    two = round_(THREE, [], [("lahore-1", "control"), ("karachi-1", "control")], at=10)
    assert [o.vantages for o in classifier.update(one, [], 0).started] == [{"lahore-1"}]
    assert [o.vantages for o in classifier.update(two, [], 10).started] == [{"karachi-1"}]
    healed = round_(THREE, [], [("karachi-1", "control")], at=20)
    assert [o.vantages for o in classifier.update(healed, [], 20).cleared] == [{"lahore-1"}]
