"""Guessing speakers' links (issue 12): per client address, after 10 tokens within a
minute that are not links of this event's live speakers, every ``/join`` and ``/whip``
request is 429 with ``Retry-After`` for a minute (the right link too), answered from the
request head alone; expired and revoked links are not guesses; other addresses and the
operator's ``/api`` are not affected. Before, there was no limit at all."""

from __future__ import annotations

import http.client
import logging
import time
from pathlib import Path

import pytest
from web_app import Served

from orchestrator.api.auth import Guesses
from orchestrator.api.link_guesses import (
    BLOCK_SECONDS,
    LOG_EVERY,
    MAX_BAD_LINKS,
    LinkGuessLimit,
    is_guess,
)
from orchestrator.event import parse_event
from orchestrator.speakers.links import Links

FORGED = "remote.00000000.2000000000.0.AAAAAAAAAAAAAAAAAAAAAA"


def request(
    web: Served,
    method: str,
    path: str,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(
        "127.0.0.1", web.port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    return response


def join_path(web: Served) -> str:
    status, made, _ = web.call("POST", "/api/speakers/remote/link")
    assert status == 200, made
    path: str = made["url"].removeprefix(f"http://127.0.0.1:{web.port}")
    return path


def test_ten_bad_links_block_the_address_from_join_and_whip(
    web: Served, caplog: pytest.LogCaptureFixture
) -> None:
    good = join_path(web)
    token = good.removeprefix("/join/")
    assert request(web, "GET", good).status == 200
    bad = [f"/join/{FORGED}", "/join/not-a-link", f"/whip/{FORGED}", "/join/x/message"]
    statuses = [request(web, "GET", bad[i % len(bad)]).status for i in range(MAX_BAD_LINKS)]
    assert 429 not in statuses and set(statuses) <= {401, 403, 404, 405}

    for method, path in (("GET", good), ("POST", f"/whip/{token}"), ("GET", f"{good}/ice")):
        response = request(web, method, path)
        assert response.status == 429, path
        assert BLOCK_SECONDS - 5 <= int(response.headers["Retry-After"]) <= BLOCK_SECONDS
        assert response.headers["Cache-Control"] == "no-store"
    # the answer comes from the head alone: a 30 MB offer announced, never sent
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.putrequest("POST", f"/whip/{token}")
    connection.putheader("Content-Type", "application/sdp")
    connection.putheader("Content-Length", str(30 << 20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 429
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    connection.close()

    blocked = [r.getMessage() for r in caplog.records if "wrong links" in r.getMessage()]
    assert len(blocked) == 1 and "127.0.0.1" in blocked[0], blocked  # said once
    assert FORGED not in caplog.text and token not in caplog.text

    # another address, the operator's /api and the public HLS are not affected
    assert request(web, "GET", good, source="127.0.0.2").status == 200
    assert web.call("GET", "/api/state")[0] == 200
    assert request(web, "GET", "/join-assets/join.css").status == 200


def test_blocks_are_logged_once_per_ten_seconds_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limit = LinkGuessLimit(lambda *_: None, links=None, clock=lambda: now[0])  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="orchestrator.api.link_guesses"):
        for n in range(500):
            limit._blocked_now(f"10.0.{n // 256}.{n % 256}")
        now[0] += LOG_EVERY
        limit._blocked_now("10.9.9.9")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "10.0.0.0" in lines[0] and "(0 more" in lines[0]
    assert "10.9.9.9" in lines[1] and "(499 more" in lines[1]


def test_expired_and_revoked_links_are_not_guesses(web: Served) -> None:
    old = join_path(web)
    assert web.call("POST", "/api/speakers/remote/revoke")[0] == 200
    statuses = {request(web, "GET", old).status for _ in range(3 * MAX_BAD_LINKS)}
    assert statuses == {403}
    assert request(web, "GET", join_path(web)).status == 200


def test_what_counts_as_a_guess(tmp_path: Path) -> None:
    def event(live: str) -> Links:
        spec = {
            "event": {"name": "Guesses"},
            "speakers": [{"id": live, "name": live}],
            "rundown": [{"speaker": live, "duration": "1m"}],
        }
        return Links(parse_event(spec, base_dir=tmp_path, env={}), tmp_path / "state")

    here, renamed = event("remote"), event("gone")  # same state dir and name: same key
    soon = int(time.time()) + 3600
    assert not is_guess(here, here.issue("remote", soon))
    assert not is_guess(here, here.issue("remote", 1))  # expired: a speaker's old link
    assert is_guess(here, renamed.issue("gone", soon))  # no such live speaker
    good = here.issue("remote", soon)
    tampered = good[:-1] + ("B" if good.endswith("A") else "A")  # one character of the MAC
    for token in (FORGED, "", "x" * 10_000, tampered):
        assert is_guess(here, token)


def test_memory_stays_bounded_under_many_addresses() -> None:
    now = [0.0]
    guesses = Guesses(lambda: now[0], limit=2, window=60, block=60, max_addresses=100)
    for n in range(1_000):
        for _ in range(2):
            guesses.failed(f"10.0.{n // 256}.{n % 256}")
        now[0] += 0.001
    assert len(guesses._bad) <= 100 and len(guesses._blocked) <= 100
    assert guesses.retry_after("10.0.3.231") is not None  # the latest block stands
    assert guesses.retry_after("10.0.0.0") is None  # the oldest was lifted to make room
