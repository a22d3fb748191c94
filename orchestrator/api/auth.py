"""The operator token: every /api endpoint needs ``Authorization: Bearer <token>``.

Guessing is rate-limited per client address (:class:`Guesses`): after
:data:`MAX_BAD_TOKENS` wrong tokens within :data:`GUESS_WINDOW` seconds, every request
from that address that needs the token is answered 429 (``Retry-After``) for
:data:`BLOCK_SECONDS`, the right token included (else a guess would still tell). The
live channel's first message counts the same. Behind a reverse proxy on the same host
the address is the one the proxy forwards (uvicorn trusts ``X-Forwarded-For`` from
127.0.0.1).
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Final

from fastapi import HTTPException, Request, status

from orchestrator.event.secret import Secret, stored_secret

TOKEN_ENV = "JALSA_OPERATOR_TOKEN"
TOKEN_FILE = "operator-token"
MIN_TOKEN_LENGTH = 16
MAX_BAD_TOKENS: Final = 10
GUESS_WINDOW: Final = 60.0  # seconds
BLOCK_SECONDS: Final = 60.0
MAX_ADDRESSES: Final = 10_000  # addresses remembered (the oldest are forgotten first)


def operator_token(state_dir: Path, env: dict[str, str] | None = None) -> tuple[Secret, bool]:
    """The token from ``JALSA_OPERATOR_TOKEN``, or the one kept in the state dir.

    Returns the token and whether it was created just now (so it is shown once).

    Raises:
        SecretError: the environment's token is shorter than 16 characters.
    """
    return stored_secret(state_dir, TOKEN_FILE, TOKEN_ENV, env, min_length=MIN_TOKEN_LENGTH)


class Guesses:
    """Wrong guesses per client address; an address with ``limit`` of them within
    ``window`` seconds is blocked for ``block`` seconds (the operator token's by default;
    the speakers' links have their own, :mod:`orchestrator.api.link_guesses`).

    Memory is bounded: at most ``max_addresses`` addresses counted, each with at most
    ``limit`` timestamps, and at most ``max_addresses`` blocked (past that, the blocks
    that end soonest are lifted first).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        limit: int = MAX_BAD_TOKENS,
        window: float = GUESS_WINDOW,
        block: float = BLOCK_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self._clock = clock
        self._limit, self._window, self._block = limit, window, block
        self._max_addresses = max_addresses
        self._bad: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}  # address -> until (clock), in blocking order

    def retry_after(self, address: str) -> float | None:
        """Seconds ``address`` is still blocked for, or None."""
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return None
        return left

    def failed(self, address: str) -> None:
        now = self._clock()
        times = self._bad.pop(address, None) or deque(maxlen=self._limit)
        times.append(now)
        self._bad[address] = times  # the most recent last
        while len(self._bad) > self._max_addresses:
            self._bad.popitem(last=False)
        if len(times) == self._limit and now - times[0] <= self._window:
            self._blocked[address] = now + self._block
            del self._bad[address]
            if len(self._blocked) > self._max_addresses:  # drop the ones that have expired
                self._blocked = {a: u for a, u in self._blocked.items() if u > now}
                while len(self._blocked) > self._max_addresses:  # every block lasts as
                    del self._blocked[next(iter(self._blocked))]  # long: the oldest ends first


class TooManyGuesses(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong operator tokens: retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class RequireOperator:
    """A FastAPI dependency: 401 unless the request carries the operator token (429 for
    an address that guessed wrong too often)."""

    def __init__(self, token: Secret, guesses: Guesses | None = None) -> None:
        self._token = token.reveal().encode()
        self.guesses = guesses or Guesses()

    def check(self, given: str | None, address: str) -> bool:
        """Whether ``given`` is the token (compared in constant time), counting a wrong one.

        Raises:
            TooManyGuesses: ``address`` is blocked (nothing was compared).
        """
        blocked = self.guesses.retry_after(address)
        if blocked is not None:
            raise TooManyGuesses(blocked)
        if not given:  # no token at all is not a guess
            return False
        if hmac.compare_digest(given.encode(), self._token):
            return True
        self.guesses.failed(address)
        return False

    def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        address = request.client.host if request.client else ""
        try:
            ok = self.check(value.strip() if scheme.lower() == "bearer" else None, address)
        except TooManyGuesses as blocked:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=str(blocked),
                headers={"Retry-After": str(math.ceil(blocked.retry_after))},
            ) from None
        if not ok:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="operator token required: send 'Authorization: Bearer <token>' "
                "(the token is in JALSA_OPERATOR_TOKEN or <state dir>/operator-token)",
                headers={"WWW-Authenticate": "Bearer"},
            )
