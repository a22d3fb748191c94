"""``jalsa check``: every problem at once, each naming its key; exit 2."""

from __future__ import annotations

from pathlib import Path

from event_toml import event_toml, slot, speaker
from jalsa_run import jalsa

HOST = speaker("host", source="testsrc")


def test_a_valid_file_passes(tmp_path: Path) -> None:
    event = tmp_path / "ok.toml"
    event.write_text(
        event_toml(
            None,
            program=None,
            speakers=[HOST],
            rundown=[slot("host", "1m")],
            destinations=[{"name": "yt", "platform": "youtube", "key": "${YT_STREAM_KEY}"}],
        )
    )
    result = jalsa("check", str(event), env={"YT_STREAM_KEY": "abc-def-ghi"})
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "abc-def-ghi" not in result.stdout + result.stderr


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    event = tmp_path / "bad.toml"
    event.write_text(
        event_toml(
            None,
            program={"fps": "thirty"},
            speakers=[speaker("host", source="clips/missing.mp4")],
            rundown=[slot("hots", "ten minutes")],
            destinations=[
                {"name": "yt", "platform": "youtube", "key": "${NOT_SET_ANYWHERE}"},
                {"name": "srt", "platform": "custom", "url": "srt://example.org:9000"},
            ],
        )
    )
    result = jalsa("check", str(event), env={})
    assert result.returncode == 2
    err = result.stderr
    for key in (
        "program.fps",
        "speakers[0].source",
        "rundown[0].speaker",
        "rundown[0].duration",
        "destinations[0].key",
        "destinations[1].url",
    ):
        assert key in err, f"{key} missing from:\n{err}"
    assert "did you mean 'host'" in err
    assert "NOT_SET_ANYWHERE" in err


def test_run_validates_before_starting(tmp_path: Path) -> None:
    event = tmp_path / "bad.toml"
    nobody = [slot("nobody", "1m")]
    event.write_text(event_toml(None, program=None, speakers=[HOST], rundown=nobody))
    result = jalsa("run", str(event), "--state", str(tmp_path / "state"))
    assert result.returncode == 2
    assert "rundown[0].speaker" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    event = tmp_path / "broken.toml"
    event.write_text('[event]\nname = "unterminated\n')
    result = jalsa("check", str(event))
    assert result.returncode == 2
    assert "line" in result.stderr
