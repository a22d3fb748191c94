"""``jalsa links`` warns when its links would open as an insecure page (no camera, no mic)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from jalsa_run import jalsa

from orchestrator.speakers.link_command import insecure_warning

EVENT = """
    [event]
    name = "Links Test"
    [[speakers]]
    id = "guest"
    name = "Guest"
    [[rundown]]
    speaker = "guest"
    duration = "1m"
"""


@pytest.mark.parametrize(
    "url",
    [
        "https://j.example.org",
        "https://192.0.2.7:8443/",
        "http://127.0.0.1:8080",
        "http://127.8.0.1",
        "http://localhost:8080/",
        "http://a.localhost",
        "http://[::1]:8080",
    ],
)
def test_secure_or_loopback_base_urls_are_fine(url: str) -> None:
    assert insecure_warning(url) is None


@pytest.mark.parametrize(
    "url", ["http://192.0.2.7:8080", "http://jalsa.example.org", "http://[2001:db8::1]/"]
)
def test_plain_http_elsewhere_is_warned(url: str) -> None:
    warning = insecure_warning(url)
    assert warning is not None
    assert "https://" in warning and "camera" in warning


def test_links_command_warns_and_still_prints(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(textwrap.dedent(EVENT))
    state = str(tmp_path / "state")
    plain = jalsa("links", str(event), "--base-url", "http://192.0.2.7:8080", "--state", state)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("guest http://192.0.2.7:8080/join/")
    assert "warning" in plain.stderr and "https://" in plain.stderr
    secure = jalsa("links", str(event), "--base-url", "https://j.example.org", "--state", state)
    assert secure.returncode == 0, secure.stderr
    assert "warning" not in secure.stderr
