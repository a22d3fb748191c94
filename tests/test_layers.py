"""The layers hold where a user feels them: ``jalsa probe`` (a volunteer's agent on a cheap
laptop) and ``jalsa report`` (offline, after the event) load no media stack; ``jalsa check``
and ``jalsa links`` load neither a media stack nor a web stack; ``jalsa run`` loads the HTTP
client and the DNS probes only for an event that uses them (start-up cost, issue 16).

``python -X importtime`` lists every module a real run of the command imported; the
import-linter contracts in pyproject.toml (run by scripts/test.sh) check the same statically.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from event_toml import event_toml, slot, speaker
from jalsa_run import free_port

from monitoring.samples import SampleLog

MEDIA_STACK = (
    "av",
    "numpy",
    "PIL",
    "aiortc",
    "orchestrator.show",
    "orchestrator.program",
    "relays",
)


def imported_by(*args: str) -> set[str]:
    """Run ``jalsa ARGS`` to completion; the top-level names of what it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            names.add(module)
    assert "orchestrator.event" in names, "importtime printed nothing"
    return names


# What serves the web side and polls others: a validation or a link has no use for it.
WEB_STACK = ("fastapi", "starlette", "pydantic", "uvicorn", "aiohttp", "prometheus_client", "dns")
# What only listener polls, probes, agents and the webhook use in ``jalsa run``.
HTTP_CLIENT = ("aiohttp", "dns")


def media_modules(names: set[str], stack: tuple[str, ...] = MEDIA_STACK) -> list[str]:
    return sorted(n for n in names for m in stack if n == m or n.startswith(m + "."))


def one_second_event(path: Path, destinations: list[dict[str, object]]) -> Path:
    path.write_text(
        event_toml(
            "Start-up",
            event={"on_end": "stop"},
            speakers=[speaker("host", source="testsrc")],
            rundown=[slot("host", "1s")],
            destinations=destinations,
        )
    )
    return path


def test_jalsa_check_loads_no_media_or_web_stack(tmp_path: Path) -> None:
    event = one_second_event(
        tmp_path / "event.toml",
        [
            {"name": "mkv", "url": "recordings/show.mkv"},
            {"name": "rtmp", "url": "rtmp://127.0.0.1:1935/live", "key": "k"},
            {"name": "mirror", "url": "hls"},
        ],
    )
    names = imported_by("check", str(event))
    assert "orchestrator.event.event_file" in names
    assert media_modules(names, MEDIA_STACK + WEB_STACK) == []


def test_jalsa_links_loads_no_media_or_web_stack(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(event_toml(speakers=[speaker("guest")], rundown=[slot("guest", "10m")]))
    names = imported_by(
        "links", str(event), "--base-url", "https://jalsa.example.org", "--state", str(tmp_path)
    )
    assert "orchestrator.speakers.link_command" in names
    assert media_modules(names, MEDIA_STACK + WEB_STACK) == []


def _run_args(event: Path, state: Path) -> list[str]:
    return [
        "run", str(event), "--state", str(state),
        "--http", f"127.0.0.1:{free_port()}", "--metrics", f"127.0.0.1:{free_port()}",
    ]  # fmt: skip


def test_jalsa_run_loads_the_http_client_only_for_what_uses_it(tmp_path: Path) -> None:
    """A 1 s event that polls no listeners and probes nothing: no aiohttp, no dnspython.
    The same event with an Icecast destination (its listener count is polled) loads
    aiohttp: the measure can fail."""
    plain = one_second_event(tmp_path / "plain.toml", [{"name": "mkv", "url": "out/a.mkv"}])
    names = imported_by(*_run_args(plain, tmp_path / "plain-state"))
    assert "orchestrator.program.encoder" in names  # it did run the show
    assert media_modules(names, HTTP_CLIENT) == []

    closed = free_port()
    polled = one_second_event(
        tmp_path / "polled.toml",
        [
            {"name": "mkv", "url": "out/b.mkv"},
            {"name": "radio", "url": f"icecast://source:pw@127.0.0.1:{closed}/live.mp3"},
        ],
    )
    names = imported_by(*_run_args(polled, tmp_path / "polled-state"))
    assert "aiohttp" in names


def test_jalsa_report_loads_no_media_stack(tmp_path: Path) -> None:
    t = 1_797_500_000.0
    SampleLog(tmp_path / "samples").write(
        [
            {"t": t, "type": "start", "event": "E", "destinations": [], "speakers": ["host"]},
            {"t": t + 5, "type": "sample", "listeners": {"youtube": 120}},
            {"t": t + 10, "type": "sample", "listeners": {"youtube": 80}},
        ]
    )
    names = imported_by("report", "--state", str(tmp_path))
    assert "monitoring.report" in names
    assert media_modules(names) == []


def test_jalsa_probe_loads_no_media_stack(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens: every probe fails at once
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'control_resolver = "127.0.0.1:{closed}"\n'
        f'[[targets]]\nplatform = "control"\nurl = "http://127.0.0.1:{closed}/"\n'
        f'[[targets]]\nplatform = "youtube"\nurl = "http://127.0.0.1:{closed}/"\n'
    )
    names = imported_by(
        "probe", "--vantage", "v", "--city", "Lahore", "--isp", "isp", "--once",
        "--targets", str(targets), "--timeout", "0.5",
    )  # fmt: skip
    assert "monitoring.probe_agent" in names
    assert media_modules(names) == []


def test_the_measure_sees_a_media_stack_when_one_is_loaded() -> None:
    """The same measurement on a module that does load it, so the tests above can fail."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import orchestrator.show"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert {"av", "numpy", "PIL"} <= set(media_modules(names))


def test_jalsa_probe_push_mode_loads_no_media_stack(tmp_path: Path) -> None:
    """``--join``: the link parsed, the round signed and kept (nothing listens there)."""
    closed = free_port()
    targets = tmp_path / "targets.toml"
    targets.write_text(
        'control_resolver = ""\n'
        f'[[targets]]\nplatform = "control"\nurl = "http://127.0.0.1:{closed}/"\n'
    )
    key = "A" * 43
    link = f"http://127.0.0.1:{closed}/agents/pesh-1#g=0&k={key}&city=Peshawar&isp=Jazz"
    names = imported_by(
        "probe", "--join", link, "--once", "--targets", str(targets), "--timeout", "0.5",
        "--backlog", str(tmp_path / "backlog"),
    )  # fmt: skip
    assert {"monitoring.probe_push", "monitoring.agent_link", "aiohttp"} <= names
    assert media_modules(names) == []
    assert len(list((tmp_path / "backlog").glob("*.json"))) == 1
