"""Probe targets: the defaults, a targets file, and its errors naming their keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.targets import DEFAULT_TARGETS, Target, load_targets, parse_targets
from orchestrator.cli import main
from orchestrator.event.monitoring_spec import parse_resolver
from orchestrator.event.problems import EventError


def test_defaults_cover_the_platforms_and_controls() -> None:
    assert DEFAULT_TARGETS.platforms == (
        "control",
        "youtube",
        "facebook",
        "x",
        "twitch",
        "whatsapp",
    )
    roles = {(t.platform, t.role) for t in DEFAULT_TARGETS.targets}
    for platform in ("youtube", "facebook", "x", "twitch"):
        assert (platform, "web") in roles and (platform, "ingest") in roles
    assert DEFAULT_TARGETS.control_resolver == ("1.1.1.1", 53)
    assert any(t.platform == "control" and t.download for t in DEFAULT_TARGETS.targets)


def test_checks_follow_the_scheme() -> None:
    web = Target("youtube", "web", "https://www.youtube.com/generate_204?x=1")
    assert (web.host, web.port, web.path, web.checks) == (
        "www.youtube.com",
        443,
        "/generate_204?x=1",
        ("dns", "tcp", "tls", "http"),
    )
    assert Target("c", "web", "http://h/").checks == ("dns", "tcp", "http")
    assert Target("t", "ingest", "tls://live.example:443").checks == ("dns", "tcp", "tls")
    assert Target("t", "ingest", "tcp://live.example:1935").port == 1935


def test_a_targets_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        'control_resolver = "127.0.0.1:5353"\n'
        '[[targets]]\nplatform = "control"\nurl = "https://www.debian.org/"\n'
        '[[targets]]\nplatform = "youtube"\nurl = "tcp://a.rtmp.youtube.com:1935"\n'
        'download = "https://www.youtube.com/"\n'
    )
    targets = load_targets(path)
    assert targets.control_resolver == ("127.0.0.1", 5353)
    assert targets.targets[1] == Target(
        "youtube", "ingest", "tcp://a.rtmp.youtube.com:1935", "https://www.youtube.com/"
    )
    path.write_text('control_resolver = ""\n[[targets]]\nplatform = "control"\nurl = "http://h/"\n')
    assert load_targets(path).control_resolver is None


def test_every_problem_names_its_key() -> None:
    with pytest.raises(EventError) as info:
        parse_targets(
            {
                "resolver": "x",
                "control_resolver": "dns.google",
                "targets": [
                    {"platform": "YouTube", "url": "https://www.youtube.com/"},
                    {"platform": "x", "url": "tcp://va.pscp.tv"},
                    {"platform": "x", "url": "rtmp://a/b", "download": "tcp://h:1"},
                ],
            }
        )
    keys = [p.key for p in info.value.problems]
    assert keys == [
        "resolver",
        "control_resolver",
        "targets[0].platform",
        "targets[1].url",
        "targets[2].url",
        "targets[2].download",
    ]


def test_a_file_without_controls_is_refused() -> None:
    with pytest.raises(EventError) as info:
        parse_targets({"targets": [{"platform": "x", "url": "https://x.com/"}]})
    assert [p.key for p in info.value.problems] == ["targets"]
    assert "no control target" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.1.1.1", ("1.1.1.1", 53)),
        ("9.9.9.9:5353", ("9.9.9.9", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("", None),
    ],
)
def test_resolvers(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_resolver(text) == parsed


@pytest.mark.parametrize("text", ["dns.google", "1.1.1.1:x", "1.1.1.1:70000", "[::1]x"])
def test_bad_resolvers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_resolver(text)


def test_jalsa_check_reads_the_targets_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        '[[speakers]]\nid = "host"\nname = "Host"\nsource = "testsrc"\n'
        '[[rundown]]\nspeaker = "host"\nduration = "1m"\n'
        '[[destinations]]\nname = "m"\nurl = "hls"\n'
        '[monitoring]\nprobes = true\ncity = "Lahore"\nisp = "PTCL"\ntargets = "targets.toml"\n'
    )
    (tmp_path / "targets.toml").write_text('[[targets]]\nplatform = "x"\nurl = "tcp://h"\n')
    assert main(["check", str(event)]) == 2
    assert "targets[0].url: 'tcp://h' needs a port" in capsys.readouterr().err
    (tmp_path / "targets.toml").write_text(
        '[[targets]]\nplatform = "control"\nurl = "https://www.debian.org/"\n'
    )
    assert main(["check", str(event)]) == 0
