"""Guessing the operator token (issue 12, item 13): per client address, after 10 wrong
tokens within a minute every request needing the token is 429 with ``Retry-After`` for a
minute (the right token too: else a guess would still tell), the /api/live WebSocket's
first message counts the same and is closed 4429, and other addresses are not affected.
Before the fix there was no limit at all."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator

import pytest
from web_app import TOKEN, Served, served_app
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orchestrator.api.auth import (
    BLOCK_SECONDS,
    GUESS_WINDOW,
    MAX_BAD_TOKENS,
    Guesses,
    RequireOperator,
    TooManyGuesses,
)
from orchestrator.event.secret import Secret

WRONG = "not-the-operator-token-0000"


@pytest.fixture
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("web-guesses")) as served:
        yield served


def get(web: Served, token: str | None, source: str = "127.0.0.1") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(
        "127.0.0.1", web.port, timeout=10, source_address=(source, 0)
    )
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    connection.request("GET", "/api/state", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_ten_wrong_tokens_block_the_address_for_a_minute(web: Served) -> None:
    assert [get(web, WRONG).status for _ in range(MAX_BAD_TOKENS)] == [401] * MAX_BAD_TOKENS
    for token in (WRONG, TOKEN):
        response = get(web, token)
        assert response.status == 429
        assert BLOCK_SECONDS - 5 <= int(response.headers["Retry-After"]) <= BLOCK_SECONDS
    # another address is not blocked (the whole of 127/8 is this host's loopback)
    assert get(web, TOKEN, source="127.0.0.2").status == 200


def test_requests_without_a_token_are_not_guesses(web: Served) -> None:
    assert {get(web, None).status for _ in range(3 * MAX_BAD_TOKENS)} == {401}
    assert get(web, TOKEN).status == 200


async def test_the_live_channel_counts_wrong_tokens_and_closes_4429(web: Served) -> None:
    url = f"ws://127.0.0.1:{web.port}/api/live"

    async def first_message(token: str) -> int | None:
        """The close code the server sent after ``token`` (None: it sent a frame)."""
        try:
            async with connect(url) as ws:
                await ws.send(json.dumps({"token": token}))
                async with asyncio.timeout(10):
                    await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
        return None

    codes = [await first_message(WRONG) for _ in range(MAX_BAD_TOKENS)]
    assert codes == [4401] * MAX_BAD_TOKENS
    assert await first_message(TOKEN) == 4429
    assert (await asyncio.to_thread(get, web, TOKEN)).status == 429  # the same count


def test_the_block_ends_and_old_guesses_age_out() -> None:
    now = [1000.0]
    guesses = Guesses(clock=lambda: now[0])
    operator = RequireOperator(Secret(TOKEN), guesses)
    for _ in range(MAX_BAD_TOKENS - 1):
        assert not operator.check(WRONG, "a")
    now[0] += GUESS_WINDOW + 1  # those are over a minute old now
    assert not operator.check(WRONG, "a")
    assert operator.check(TOKEN, "a")
    for _ in range(MAX_BAD_TOKENS - 1):
        assert not operator.check(WRONG, "a")
    with pytest.raises(TooManyGuesses) as blocked:
        operator.check(TOKEN, "a")
    assert blocked.value.retry_after == pytest.approx(BLOCK_SECONDS)
    assert operator.check(TOKEN, "b")
    now[0] += BLOCK_SECONDS + 0.1
    assert operator.check(TOKEN, "a")
