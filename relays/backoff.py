"""The reconnect schedule of a destination: exponential backoff with full jitter.

Pure logic with an injected clock: the caller passes the times in (``time.monotonic()``
in production, plain numbers in tests) and sleeps itself.

The writer loop uses it like this::

    while running:
        try:
            connect()
            backoff.succeeded(now())
            while sending:
                write(...)
                backoff.healthy(now())
        except OSError:
            backoff.failed()
        sleep(backoff.next_delay())
"""

from __future__ import annotations

import random


class Backoff:
    """Full-jitter exponential backoff that resets after a healthy connection.

    The n-th delay (n counted from 0 since the last reset) is uniform in
    ``[0, min(cap, base * 2**n)]``. The attempt count goes back to 0 only once a
    connection has stayed up for ``reset_after`` seconds, so a destination that accepts
    and then drops at once keeps backing off instead of reconnecting in a tight loop.

    Args:
        base: The ceiling of the first delay, in seconds.
        cap: The largest ceiling, in seconds.
        reset_after: How long a connection must stay up to count as healthy, in seconds.
        rng: The source of jitter (seed one in tests); a fresh ``random.Random`` if None.

    Raises:
        ValueError: If ``base`` or ``cap`` is not positive, ``cap < base``, or
            ``reset_after`` is negative.
    """

    __slots__ = ("_attempt", "_base", "_cap", "_connected_since", "_reset_after", "_rng")

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 30.0,
        reset_after: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if not base > 0:
            raise ValueError(f"base must be positive, got {base!r}")
        if not cap >= base:
            raise ValueError(f"cap must be at least base ({base!r}), got {cap!r}")
        if not reset_after >= 0:
            raise ValueError(f"reset_after must not be negative, got {reset_after!r}")
        self._base = float(base)
        self._cap = float(cap)
        self._reset_after = float(reset_after)
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0
        self._connected_since: float | None = None

    @property
    def attempt(self) -> int:
        """Delays handed out since the last reset."""
        return self._attempt

    def ceiling(self) -> float:
        """The upper bound of the next delay: ``min(cap, base * 2**attempt)``."""
        # Past 2**1023 the float power overflows; the cap has long been reached anyway.
        if self._attempt >= 1023:
            return self._cap
        return min(self._cap, self._base * 2.0**self._attempt)

    def next_delay(self) -> float:
        """Return the next delay in seconds (full jitter) and count the attempt."""
        delay = self._rng.uniform(0.0, self.ceiling())
        self._attempt += 1
        return delay

    def succeeded(self, at: float) -> None:
        """Mark a connection established at time ``at``."""
        self._connected_since = at

    def healthy(self, now: float) -> bool:
        """Reset the attempt count if connected for at least ``reset_after`` seconds.

        Call it from the writer loop while the connection is up.

        Returns:
            True if the connection has been up long enough to count as healthy.
        """
        since = self._connected_since
        if since is None or now - since < self._reset_after:
            return False
        self._attempt = 0
        return True

    def failed(self) -> None:
        """End the connected period without resetting the attempt count."""
        self._connected_since = None
