import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.event.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h", 3600.0),
        ("2m30s", 150.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("1h2m3s4ms", 3723.004),
        ("  1h 30m  ", 5400.0),
        ("2 m 30 s", 150.0),
        ("\t45s\n", 45.0),
        ("1H30M", 5400.0),
        (".5s", 0.5),
        ("0s", 0.0),
        ("0.25h", 900.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "90", "1h30", "5 minutes", "-5s", "1m1h", "5s5s", "30s1m", "abc", "1.s", "5x", "s"],
)
def test_parse_duration_rejects_with_examples(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    message = str(info.value)
    assert repr(text) in message
    assert '"90s"' in message and '"1h30m"' in message


def test_bare_number_hint_asks_for_a_unit() -> None:
    with pytest.raises(ValueError, match="needs a unit"):
        parse_duration("90")


@pytest.mark.parametrize(("text", "word"), [("5 mins", "mins"), ("2 hours", "hours"), ("5x", "x")])
def test_unknown_unit_hint(text: str, word: str) -> None:
    with pytest.raises(ValueError, match=f"unknown unit '{word}'"):
        parse_duration(text)


def test_negative_hint() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration("-5s")


def test_units_out_of_order_hint() -> None:
    with pytest.raises(ValueError, match="largest first"):
        parse_duration("30s2m")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (3600, "1h"),
        (0.5, "500ms"),
        (1.5, "1.5s"),
        (121.25, "2m1.25s"),
        (3723.004, "1h2m3.004s"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_non_finite() -> None:
    assert format_duration(math.inf) == "inf"


@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_format_then_parse_round_trips_to_the_millisecond(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)
