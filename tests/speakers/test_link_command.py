"""``jalsa links``: one line per live speaker; clear errors; revocation."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from jalsa_run import jalsa

from orchestrator.api.whip import link_header
from orchestrator.event.ice_servers import IceServer
from orchestrator.event.secret import Secret

EVENT = """
    [event]
    name = "Links Test"
    [[speakers]]
    id = "host"
    name = "Host"
    source = "testsrc"
    [[speakers]]
    id = "guest"
    name = "Guest"
    [[speakers]]
    id = "ameer"
    name = "Ameer"
    [[rundown]]
    speaker = "host"
    duration = "1m"
    [[rundown]]
    speaker = "guest"
    duration = "1m"
"""


def test_links_for_live_speakers_only(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(textwrap.dedent(EVENT))
    state = str(tmp_path / "state")
    result = jalsa(
        "links",
        str(event),
        "--base-url",
        "https://j.example.org/",
        "--state",
        state,
        "--expires-in",
        "26h",
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ") for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == ["guest", "ameer"]
    assert all(url.startswith("https://j.example.org/join/") for _, url in lines)
    expires = int(lines[0][1].rsplit("/", 1)[1].split(".")[2])
    assert abs(expires - (time.time() + 26 * 3600)) < 60
    assert "valid until" in result.stderr
    again = jalsa(
        "links",
        str(event),
        "--base-url",
        "https://j.example.org",
        "--state",
        state,
        "--revoke",
        "guest",
    )
    assert again.returncode == 0 and "revoked for guest" in again.stderr
    assert again.stdout.split()[1].rsplit("/", 1)[1].split(".")[3] == "1"  # generation


def test_mistakes_exit_2_and_say_why(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(textwrap.dedent(EVENT))
    state = str(tmp_path / "state")
    bad_url = jalsa("links", str(event), "--base-url", "j.example.org", "--state", state)
    assert bad_url.returncode == 2 and "is not an http(s) URL" in bad_url.stderr
    bad_revoke = jalsa(
        "links", str(event), "--base-url", "https://j", "--revoke", "host", "--state", state
    )
    assert bad_revoke.returncode == 2 and "no live speaker has that id" in bad_revoke.stderr
    bad_expiry = jalsa(
        "links", str(event), "--base-url", "https://j", "--expires-in", "26", "--state", state
    )
    assert bad_expiry.returncode == 2 and "--expires-in" in bad_expiry.stderr
    short = jalsa(
        "links",
        str(event),
        "--base-url",
        "https://j",
        "--state",
        state,
        env={"JALSA_SECRET": "short"},
    )
    assert short.returncode == 2 and "JALSA_SECRET is too short" in short.stderr


def test_ice_servers_go_in_link_headers() -> None:
    header = link_header(
        (
            IceServer(("stun:stun.example.org:3478",)),
            IceServer(("turns:turn.example.org:443?transport=tcp",), "jalsa", Secret('pa"ss')),
        ),
        "ameer",
        1_800_000_000.0,
    )
    assert header == (
        '<stun:stun.example.org:3478>; rel="ice-server", '
        '<turns:turn.example.org:443?transport=tcp>; rel="ice-server"; username="jalsa"; '
        'credential="pa\\"ss"; credential-type="password"'
    )


def test_link_headers_carry_the_speakers_own_expiring_turn_login() -> None:
    server = IceServer(
        ("stun:turn.example.org:3478", "turn:turn.example.org:3478"),
        secret=Secret("shared-Secret-0123456789"),
        ttl=3600.0,
    )
    header = link_header((server,), "ameer", 1_800_000_000.0)
    stun, turn = header.split(", ")
    assert stun == '<stun:turn.example.org:3478>; rel="ice-server"'  # STUN: no login
    login = server.login("ameer", 1_800_000_000.0)
    assert login is not None
    username, password = login
    assert username == "1800003600:ameer"
    assert turn == (
        f'<turn:turn.example.org:3478>; rel="ice-server"; username="{username}"; '
        f'credential="{password}"; credential-type="password"'
    )
    assert "shared-Secret" not in header
