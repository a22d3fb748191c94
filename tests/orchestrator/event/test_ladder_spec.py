"""``[destinations.ladder]`` of an HLS mirror: defaults, limits, and every problem named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import EventError, parse_event
from orchestrator.event.demo import demo_event
from orchestrator.event.ladder_spec import LadderSpec


def event(ladder: Any, url: str = "hls", **more: Any) -> dict[str, Any]:
    return {
        "program": {"width": 1280, "height": 720},
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [{"name": "mirror", "url": url, "ladder": ladder, **more}],
    }


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(EventError) as info:
        parse_event(data, base_dir=Path("/srv"), env={}, check_files=False)
    return [(p.key, p.message) for p in info.value.problems]


def test_an_empty_table_is_the_default_ladder() -> None:
    parsed = parse_event(event({}), base_dir=Path("/srv"), env={}, check_files=False)
    ladder = parsed.destinations[0].ladder
    assert ladder == LadderSpec(360, 440, 48, 48)
    assert ladder.renditions == ("low", "audio")


def test_zero_turns_a_rendition_off() -> None:
    data = event({"low_height": 0, "audio_kbps": 32})
    ladder = parse_event(data, base_dir=Path("/srv"), env={}, check_files=False).destinations[0]
    assert ladder.ladder is not None and ladder.ladder.renditions == ("audio",)


def test_a_mirror_without_a_ladder_has_none() -> None:
    data = event({})
    del data["destinations"][0]["ladder"]
    assert parse_event(data, base_dir=Path("/srv"), env={}).destinations[0].ladder is None


@pytest.mark.parametrize(
    ("ladder", "key", "words"),
    [
        ({"audio_kbps": 96}, "audio_kbps", "16 to 64"),
        ({"low_height": 721}, "low_height", "even height"),
        ({"low_height": 100}, "low_height", "144 or more"),
        ({"low_height": 720}, "low_height", "not below the program's height (720)"),
        ({"low_video_kbps": 50}, "low_video_kbps", "100 to 4000"),
        ({"low_heigth": 360}, "low_heigth", "did you mean 'low_height'"),
        ({"audio_kbps": "48"}, "audio_kbps", "expected an integer"),
    ],
)
def test_problems_name_their_key(ladder: dict[str, Any], key: str, words: str) -> None:
    [(where, message)] = problems(event(ladder))
    assert where == f"destinations[0].ladder.{key}"
    assert words in message


def test_only_a_video_hls_mirror_has_a_ladder() -> None:
    [(where, message)] = problems(event({}, url="out/show.mkv"))
    assert (where, 'url = "hls"' in message) == ("destinations[0].ladder", True)
    [(where, message)] = problems(event({}, audio_only=True))
    assert where == "destinations[0].ladder" and "audio-only" in message


def test_the_demo_mirror_has_the_ladder(tmp_path: Path) -> None:
    [mirror] = [d for d in demo_event(tmp_path).destinations if d.kind == "hls"]
    assert mirror.ladder is not None and mirror.ladder.renditions == ("low", "audio")
