"""Speakers' links, revocations and the state dir's secrets under attack (issue 12: items
1, 5, 9, 12, and 13's printing of the operator token).

Each test failed on the code before its fix: revocations lost and the list corrupted by
concurrent revokes, a rewrite of the list missed because its mtime was unchanged, links
valid for another event that shares the name (and the secret), ``--expires-in 87600h``,
a TURN login outliving its link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import pytest
from event_toml import event_toml, program, slot
from event_toml import speaker as speaker_table
from jalsa_run import JalsaRun, jalsa
from waiting import async_wait_for
from whip_client import WhipClient

from orchestrator.api.speaker_page import browser_ice
from orchestrator.api.whip import link_header
from orchestrator.event import Event, load_event, parse_event
from orchestrator.event.address import Address
from orchestrator.event.ice_servers import IceServer
from orchestrator.event.secret import Secret
from orchestrator.service import _announce
from orchestrator.speakers.links import (
    REVOKED_FILE,
    LinkProblem,
    LinkRefused,
    Links,
    RevocationsUnreadable,
    read_generations,
    revoke,
)
from orchestrator.speakers.whip_ingest import ice_servers

EVENT = """
    [event]
    name = "Digital Jalsa"
    [[speakers]]
    id = "guest"
    name = "Guest"
    [[speakers]]
    id = "ameer"
    name = "Ameer"
    [[rundown]]
    speaker = "guest"
    duration = "10m"
"""
SECRET = {"JALSA_SECRET": "a-secret-shared-by-two-events-0123456789"}
REVOKES = 150  # per writer: enough to lose some on the old code nearly every time


def _event(text: str = EVENT) -> Event:
    return parse_event(tomllib.loads(textwrap.dedent(text)), base_dir=Path("/"), env={})


def _problem(links: Links, token: str) -> LinkProblem:
    with pytest.raises(LinkRefused) as info:
        links.check(token)
    return info.value.problem


# -- 1. revocations: locked, atomic, never lost -------------------------------------------


class _Reader(threading.Thread):
    """Reads the revocation list all the while: every version must parse, and no
    speaker's generation may ever go down."""

    def __init__(self, state: Path) -> None:
        super().__init__(daemon=True)
        self.state = state
        self.stop = threading.Event()
        self.reads = 0
        self.problems: list[str] = []

    def run(self) -> None:
        seen: dict[str, int] = {}
        while not self.stop.is_set():
            try:
                generations = read_generations(self.state)
            except ValueError as error:
                self.problems.append(str(error))
                continue
            self.reads += 1
            for speaker, generation in generations.items():
                if generation < seen.get(speaker, 0):
                    self.problems.append(f"{speaker} went from {seen[speaker]} to {generation}")
                seen[speaker] = generation


def test_two_threads_revoking_lose_nothing_and_the_file_always_parses(tmp_path: Path) -> None:
    reader = _Reader(tmp_path)
    reader.start()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def revoker() -> None:
        start.wait()
        try:
            for _ in range(REVOKES):
                revoke(tmp_path, "guest")
        except BaseException as error:  # reported below, with the counts
            errors.append(error)

    threads = [threading.Thread(target=revoker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    reader.stop.set()
    reader.join(10)
    assert errors == []
    assert read_generations(tmp_path) == {"guest": 2 * REVOKES}
    assert reader.problems == [] and reader.reads > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


_REVOKER = """
import sys
from pathlib import Path
from orchestrator.speakers.links import revoke
state, speaker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(count):
    revoke(state, speaker)
"""


def test_two_processes_and_a_thread_revoking_lose_nothing(tmp_path: Path) -> None:
    """``jalsa links --revoke`` in other processes beside the running jalsa's API."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REVOKER, str(tmp_path), speaker, str(REVOKES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for speaker in ("guest", "guest")
    ]
    reader = _Reader(tmp_path)
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        reader.start()
        for process in processes:  # all at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for _ in range(REVOKES):
            revoke(tmp_path, "ameer")
            revoke(tmp_path, "guest")
        assert [process.wait(120) for process in processes] == [0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()  # waits, and closes the pipes
        reader.stop.set()
        reader.join(10)
    assert read_generations(tmp_path) == {"guest": 3 * REVOKES, "ameer": REVOKES}
    assert reader.problems == []
    mode = stat.S_IMODE((tmp_path / REVOKED_FILE).stat().st_mode)
    assert mode & 0o077 == 0  # a file of its own (mkstemp), not 0644


def test_a_rewrite_with_the_same_mtime_and_size_is_picked_up(tmp_path: Path) -> None:
    links = Links(_event(), tmp_path, env={})
    token = links.issue("guest", int(time.time()) + 600)
    revoke(tmp_path, "ameer")
    links.refresh()
    path = tmp_path / REVOKED_FILE
    before = path.stat()
    # Another process's revocation, on a filesystem with coarse timestamps: same size,
    # same mtime, a new file (an atomic replace).
    replacement = tmp_path / "new.json"
    replacement.write_text(path.read_text().replace('"ameer"', '"guest"'))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)
    assert path.stat().st_size == before.st_size
    links.refresh()
    assert _problem(links, token) is LinkProblem.REVOKED


def test_a_corrupt_list_refuses_joins_keeps_known_revocations_and_never_says_delete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    links = Links(_event(), tmp_path, env={})
    old = links.issue("guest", int(time.time()) + 600)
    revoke(tmp_path, "guest")
    links.refresh()
    new = links.issue("guest", int(time.time()) + 600)
    assert links.check(new).generation == 1
    path = tmp_path / REVOKED_FILE
    path.write_text('{"speakers": {"guest": 1')  # torn, or edited by hand
    with caplog.at_level(logging.ERROR, logger="orchestrator.speakers.links"):
        links.refresh()
    assert _problem(links, new) is LinkProblem.UNAVAILABLE  # 503: joins refused
    assert LinkProblem.UNAVAILABLE.status == 503
    assert _problem(links, old) is LinkProblem.REVOKED  # still known
    assert links.generation("guest") == 1
    logged = caplog.text
    assert str(path) in logged and "Do NOT delete it" in logged
    assert "fix or delete" not in logged
    # Revoking does not write over it (it would lose what it holds), and says why.
    with pytest.raises(RevocationsUnreadable, match="Do NOT delete it"):
        revoke(tmp_path, "ameer")
    assert path.read_text() == '{"speakers": {"guest": 1'
    # jalsa starting with it: it runs, and refuses joins (no 500, no crash).
    restarted = Links(_event(), tmp_path, env={})
    assert _problem(restarted, new) is LinkProblem.UNAVAILABLE
    with pytest.raises(RevocationsUnreadable):
        restarted.issue("guest", int(time.time()) + 600)
    # A repair that lost the revocation does not revive the old link here.
    path.write_text(json.dumps({"speakers": {}}))
    links.refresh()
    assert links.check(new).generation == 1
    assert _problem(links, old) is LinkProblem.REVOKED


def test_jalsa_links_on_a_corrupt_list_says_what_to_do(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(textwrap.dedent(EVENT))
    state = tmp_path / "state"
    args = ("links", str(event), "--base-url", "https://j.example.org", "--state", str(state))
    assert jalsa(*args).returncode == 0
    (state / REVOKED_FILE).write_text("[]")
    for extra in ((), ("--revoke", "guest")):
        result = jalsa(*args, *extra)
        assert result.returncode == 2 and result.stdout == ""
        assert "Do NOT delete it" in result.stderr and "fix or delete" not in result.stderr


# -- 5. links are bound to one event, and expire within a week --------------------------


def test_links_do_not_carry_over_to_another_event_of_the_same_name(tmp_path: Path) -> None:
    first = Links(_event(), tmp_path / "first", env=SECRET)
    link = first.issue("guest", int(time.time()) + 600)
    assert first.check(link).speaker == "guest"
    # The next rally, same name, same JALSA_SECRET, its own state dir.
    second = Links(_event(), tmp_path / "second", env=SECRET)
    assert _problem(second, link) is LinkProblem.OTHER_EVENT
    # Revoked in the first; a fresh state dir with the same secret does not revive it.
    revoke(tmp_path / "first", "guest")
    first.refresh()
    assert _problem(first, link) is LinkProblem.REVOKED
    fresh = Links(_event(), tmp_path / "fresh", env=SECRET)
    assert _problem(fresh, link) is LinkProblem.OTHER_EVENT
    # The event id is random, made once, private; the same state dir keeps its links.
    event_id = tmp_path / "first" / "event-id"
    assert stat.S_IMODE(event_id.stat().st_mode) == 0o600
    assert len(event_id.read_text().strip()) == 32
    assert event_id.read_text() != (tmp_path / "second" / "event-id").read_text()
    again = Links(_event(), tmp_path / "first", env=SECRET)
    assert again.check(first.issue("ameer", int(time.time()) + 600)).speaker == "ameer"
    # Renaming the event still invalidates its links.
    renamed = Links(_event(EVENT.replace("Digital Jalsa", "Other")), tmp_path / "first", env=SECRET)
    assert _problem(renamed, first.issue("ameer", int(time.time()) + 600)) is (
        LinkProblem.OTHER_EVENT
    )


def test_expires_in_is_capped_at_a_week(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(textwrap.dedent(EVENT))
    base = ("links", str(event), "--base-url", "https://j.example.org")
    state = ("--state", str(tmp_path / "state"))
    for too_long in ("87600h", "169h"):
        result = jalsa(*base, *state, "--expires-in", too_long)
        assert result.returncode == 2 and result.stdout == ""
        assert f"--expires-in {too_long}" in result.stderr and "at most 168h" in result.stderr
    week = jalsa(*base, *state, "--expires-in", "168h")
    assert week.returncode == 0, week.stderr
    expires = int(week.stdout.split()[1].rsplit("/", 1)[1].split(".")[2])
    assert abs(expires - (time.time() + 7 * 86400)) < 60
    links = Links(_event(), tmp_path / "state", env={})
    with pytest.raises(ValueError, match="at most 7 days"):
        links.issue("guest", int(time.time() + 8 * 86400))
    # A rundown that ends weeks away: no silent month-long link.
    far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    event.write_text(textwrap.dedent(EVENT) + f"start = {far}\n")
    result = jalsa(*base, *state)
    assert result.returncode == 2 and "168h" in result.stderr and "--expires-in" in result.stderr


# -- 12. credentials end with their link ---------------------------------------------------


def test_turn_logins_last_no_longer_than_the_link() -> None:
    server = IceServer(("turn:turn.example.org:3478",), secret=Secret("t" * 32), ttl=12 * 3600.0)
    now = 1_800_000_000.0
    soon, late = int(now) + 600, int(now) + 86400
    login = server.login("guest", now, until=soon)
    assert login is not None and login[0] == f"{soon}:guest"
    login = server.login("guest", now, until=late)  # the ttl is sooner
    assert login is not None and login[0] == f"{int(now) + 12 * 3600}:guest"
    assert server.login("guest", now) == server.login("guest", now, until=None)
    # Everywhere a login is handed out for a link: the WHIP answer's Link header, the
    # join page (and its /ice refresh), and jalsa's own side of the session.
    assert f'username="{soon}:guest"' in link_header((server,), "guest", now, soon)
    assert browser_ice((server,), "guest", now, soon)[0]["username"] == f"{soon}:guest"
    assert ice_servers((server,), now, soon)[0].username == f"{soon}:jalsa"


_SHORT_LINK_SECONDS = 8


@pytest.mark.media
async def test_a_live_session_ends_when_its_link_expires(tmp_path: Path) -> None:
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Expiry Test",
            program=program(video_bitrate_kbps=300),
            speakers=[speaker_table("guest", "Guest Speaker")],
            rundown=[slot("guest", "10m")],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()
        links = Links(load_event(event), run.state_dir, env={})
        token = links.issue("guest", int(time.time()) + _SHORT_LINK_SECONDS)
        client = WhipClient(f"http://127.0.0.1:{run.http_port}/whip/{token}")
        try:
            assert await client.publish() == 201, client.body

            async def metric(value: float) -> bool:
                got = await asyncio.to_thread(
                    run.metric, "jalsa_speaker_connected", speaker="guest"
                )
                return got == value

            await async_wait_for(
                lambda: metric(1), 15, "the speaker connected", detail=lambda: run.logs[-2000:]
            )
            # Expiry is checked with revocations, every 2 s stats reading.
            await async_wait_for(
                lambda: metric(0),
                _SHORT_LINK_SECONDS + 10,
                "the session ended at the link's expiry",
                detail=lambda: run.logs[-2000:],
            )
            assert "ended (the link expired)" in run.logs
        finally:
            await client.close()
        # 13: stdout is a file here (as under systemd): the token is not in it.
        assert run.token() not in run.logs
        assert f"the token is in {run.state_dir / 'operator-token'}, mode 0600" in run.logs


# -- 13. the operator token is not printed into logs -----------------------------------


@pytest.mark.parametrize("terminal", [False, True])
def test_the_first_start_prints_the_token_only_to_a_terminal(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    terminal: bool,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    token = "T" * 43
    http, metrics = Address("127.0.0.1", 8080), Address("127.0.0.1", 9108)
    _announce(_event(), None, http, metrics, tmp_path, token)  # type: ignore[arg-type]
    printed = capsys.readouterr().out
    assert str(tmp_path / "operator-token") in printed
    assert (f"#token={token}" in printed) is terminal
    assert (token in printed) is terminal
    _announce(_event(), None, http, metrics, tmp_path, None)  # type: ignore[arg-type]
    assert token not in capsys.readouterr().out  # later starts: never
