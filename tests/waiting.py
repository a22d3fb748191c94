"""Tests wait on conditions, not clocks: the one polling loop every test uses.

``wait_for(predicate, timeout, what)`` calls ``predicate`` every ``POLL`` seconds until it
returns something truthy and returns that; at the timeout it raises ``AssertionError``
naming ``what``, the last value seen and, if given, ``detail()`` (say, a process's log).
``async_wait_for`` is the same for async tests: its predicate may be a coroutine function,
and the loop sleeps with ``asyncio.sleep`` so the event loop goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.03  # seconds between two looks
SHOWN = 500  # characters of the last value shown on a timeout


def _timed_out(
    timeout: float, what: str, last: object, error: BaseException | None, detail: str
) -> AssertionError:
    message = f"timed out after {timeout}s waiting for {what}"
    seen = f"last try raised {error!r}" if error is not None else f"last seen: {last!r}"
    message += f" ({seen[:SHOWN]})"
    if detail:
        message += f"\n{detail}"
    return AssertionError(message)


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    ignore: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
    poll: float = POLL,
) -> T:
    """Poll ``predicate`` until it is truthy; return its value.

    ``ignore``: exceptions that count as "not yet" (a server still starting, say)."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last = predicate()
            error = None
        except ignore as exc:
            error = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last, error, detail() if detail else "")
        time.sleep(poll)


def blocked_in_wait(thread: threading.Thread) -> bool:
    """Whether ``thread`` is blocked in a ``threading`` wait (a Condition's, an Event's):
    for tests that must act only once a consumer is really waiting."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "wait" and code.co_filename == threading.__file__:
            return True
        frame = frame.f_back
    return False


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 (the same call as wait_for's; the loop keeps the deadline)
    what: str,
    *,
    ignore: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
    poll: float = POLL,
) -> T:
    """``wait_for`` for async tests: ``predicate`` may return an awaitable."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = predicate()
            last = await value if inspect.isawaitable(value) else value
            error = None
        except ignore as exc:
            error = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, last, error, detail() if detail else "")
        await asyncio.sleep(poll)
