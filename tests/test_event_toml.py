"""The tests' event-file builder writes TOML that parses back to what it was given, and
the small program it offers is a valid event."""

from __future__ import annotations

import tomllib
from pathlib import Path

from event_toml import SMALL_PROGRAM, event_toml, program, slot, speaker

from orchestrator.event import parse_event


def test_tables_and_values_round_trip(tmp_path: Path) -> None:
    text = event_toml(
        'A "quoted" \\ name',
        event={"on_end": "stop"},
        program=program(fps=10, width=640),
        speakers=[speaker("host", source=tmp_path / "clip.mp4"), speaker("guest", "Guest X")],
        rundown=[slot("host", "1m"), slot("guest", "30s")],
        destinations=[
            {"name": "yt", "key": "${YT_KEY}", "audio_only": True},
            {"name": "radio", "url": "icecast://x", "listeners": {"poll_seconds": 5}},
        ],
        ice_servers=[{"urls": ["turn:127.0.0.1:3478"], "ttl": "1h"}],
        monitoring={"probes": False, "agents": [], "sample_seconds": 1.5},
    )
    assert tomllib.loads(text) == {
        "event": {"name": 'A "quoted" \\ name', "on_end": "stop"},
        "program": {**SMALL_PROGRAM, "fps": 10, "width": 640},
        "speakers": [
            {"id": "host", "name": "Host", "source": str(tmp_path / "clip.mp4")},
            {"id": "guest", "name": "Guest X"},
        ],
        "rundown": [{"speaker": "host", "duration": "1m"}, {"speaker": "guest", "duration": "30s"}],
        "destinations": [
            {"name": "yt", "key": "${YT_KEY}", "audio_only": True},
            {"name": "radio", "url": "icecast://x", "listeners": {"poll_seconds": 5}},
        ],
        "ice_servers": [{"urls": ["turn:127.0.0.1:3478"], "ttl": "1h"}],
        "monitoring": {"probes": False, "agents": [], "sample_seconds": 1.5},
    }


def test_without_event_or_program_tables() -> None:
    text = event_toml(None, program=None, speakers=[speaker("host")])
    assert tomllib.loads(text) == {"speakers": [{"id": "host", "name": "Host"}]}


def test_the_small_program_is_a_valid_event(tmp_path: Path) -> None:
    text = event_toml(speakers=[speaker("host", source="testsrc")], rundown=[slot("host", "1m")])
    event = parse_event(tomllib.loads(text), base_dir=tmp_path, env={})
    assert (event.program.width, event.program.height, event.program.fps) == (320, 180, 15)
