from __future__ import annotations

from orchestrator.event import SpeakerSpec
from orchestrator.program.slates import SlateCache, slate_text
from orchestrator.rundown import OnAir, Slot

SPEAKERS = {
    "host": SpeakerSpec("host", "Stage Secretary", "Host"),
    "amina": SpeakerSpec("amina", "Amina Qureshi", "Youth Wing"),
}
NEXT = Slot(1, "amina", 1_800_000_000.0, 1_800_000_600.0)


def on_air(slate: str, speaker: str | None = None) -> OnAir:
    return OnAir("slate", speaker, slate, None, NEXT)  # type: ignore[arg-type]


def test_between_speakers_the_slate_names_who_is_next_and_when() -> None:
    headline, lines = slate_text("Digital Jalsa", on_air("between"), SPEAKERS)
    assert headline == "Digital Jalsa"
    assert lines[0].startswith("Next: Amina Qureshi, Youth Wing at ")


def test_joining_and_reconnecting_name_the_speaker() -> None:
    assert slate_text("J", on_air("joining", "host"), SPEAKERS)[0] == "Stage Secretary is joining"
    assert slate_text("J", on_air("reconnecting", "host"), SPEAKERS)[0].startswith(
        "Reconnecting to Stage Secretary"
    )


def test_rendered_slates_are_cached_by_text() -> None:
    cache = SlateCache(320, 180)
    first = cache.render(("Title", ("line",)))
    assert cache.render(("Title", ("line",))) is first
    assert first.shape == (270, 320)


def test_a_hold_shows_the_operators_text_and_no_next() -> None:
    held = OnAir("slate", None, "hold", None, None, "Back in a moment")
    assert slate_text("Digital Jalsa", held, SPEAKERS) == ("Back in a moment", ("Digital Jalsa",))


def test_a_long_hold_text_is_wrapped_under_please_stand_by() -> None:
    text = "The main address begins shortly: the leader is on the way to the stage, stay with us"
    held = OnAir("slate", None, "hold", None, None, text)
    headline, lines = slate_text("Digital Jalsa", held, SPEAKERS)
    assert headline == "Please stand by" and lines[-1] == "Digital Jalsa"
    assert " ".join(lines[:-1]) == text and all(len(line) <= 56 for line in lines)
