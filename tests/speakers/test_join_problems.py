"""A failed join as the page reports it (pure): jalsa's words, one per speaker, one a second."""

from __future__ import annotations

import pytest

from orchestrator.speakers.join_problems import PROBLEMS, JoinProblems, TooSoon


def test_the_latest_report_of_each_speaker_in_jalsas_words() -> None:
    problems = JoinProblems()
    problems.report("guest", "denied", 100.0)
    problems.report("imam", "ice_failed", 100.5)
    problems.report("guest", "no_device", 102.0)
    assert problems.snapshot() == {
        "guest": {"problem": "no_device", "text": PROBLEMS["no_device"], "at": 102.0},
        "imam": {"problem": "ice_failed", "text": PROBLEMS["ice_failed"], "at": 100.5},
    }
    assert PROBLEMS["denied"] == "microphone permission denied"


def test_only_known_codes_and_once_a_second() -> None:
    problems = JoinProblems()
    for bad in ("<script>", "", None, 3, ["denied"]):
        with pytest.raises(ValueError, match="problem must be one of"):
            problems.report("guest", bad, 100.0)
    problems.report("guest", "busy", 100.0)
    with pytest.raises(TooSoon):
        problems.report("guest", "denied", 100.9)
    problems.report("other", "denied", 100.9)  # another speaker is not held back
    problems.report("guest", "denied", 101.0)
    assert problems.snapshot()["guest"]["problem"] == "denied"


def test_joining_clears_it() -> None:
    problems = JoinProblems()
    problems.report("guest", "refused", 5.0)
    assert problems.clear("guest") is True
    assert problems.clear("guest") is False
    assert problems.snapshot() == {}
