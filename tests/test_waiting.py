"""The one polling loop: returns the condition's value, says what it waited for."""

from __future__ import annotations

import threading

import pytest
from waiting import async_wait_for, blocked_in_wait, wait_for


def test_returns_the_first_truthy_value() -> None:
    values = iter([0, None, "", [], "ready"])
    assert wait_for(lambda: next(values), 5, "a value", poll=0) == "ready"


def test_a_timeout_names_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError) as raised:
        wait_for(lambda: 0, 0.05, "the moon", detail=lambda: "the log's tail")
    message = str(raised.value)
    assert message.startswith("timed out after 0.05s waiting for the moon (last seen: 0)")
    assert message.endswith("\nthe log's tail")


def test_ignored_errors_are_not_yet_and_others_raise_at_once() -> None:
    tries = iter([OSError("refused"), OSError("refused"), 7])

    def connect() -> int:
        got = next(tries)
        if isinstance(got, Exception):
            raise got
        return got

    assert wait_for(connect, 5, "a port", ignore=(OSError,), poll=0) == 7

    def refused() -> int:
        raise OSError("refused")

    with pytest.raises(AssertionError, match=r"last try raised OSError\('refused'\)"):
        wait_for(refused, 0.05, "a port", ignore=(OSError,))
    with pytest.raises(ValueError):
        wait_for(lambda: int("x"), 5, "a number")


async def test_the_async_one_awaits_a_coroutine_predicate() -> None:
    count = 0

    async def third() -> int:
        nonlocal count
        count += 1
        return count if count >= 3 else 0

    assert await async_wait_for(third, 5, "the third call", poll=0) == 3
    assert await async_wait_for(lambda: "plain", 5, "a plain value") == "plain"
    with pytest.raises(AssertionError, match="waiting for never"):
        await async_wait_for(lambda: False, 0.05, "never")


def test_blocked_in_wait_sees_a_thread_waiting() -> None:
    go = threading.Event()
    waiter = threading.Thread(target=go.wait, args=(10,))
    assert not blocked_in_wait(waiter)  # not started
    waiter.start()
    wait_for(lambda: blocked_in_wait(waiter), 5, "the waiter blocked")
    go.set()
    waiter.join(5)
    assert not blocked_in_wait(waiter)
