"""When to ask a platform again: the poll interval, backoff, 429s and quotas.

Sans-I/O: :class:`PollSchedule` gets each outcome and returns the wait before the next
poll. Invariants (property-tested):

- never sooner than ``every`` (the configured interval), never later than ``max_wait``;
- a wait the platform asked for (``Retry-After`` and the like) is honoured, up to
  ``max_wait``;
- after a good answer the wait is exactly ``every``;
- consecutive failures back off exponentially: ordinary errors from ``every`` up to
  ``max_backoff``; quota errors (a daily budget is spent) from ``quota_wait`` up to
  ``max_wait``, since asking again soon only spends more of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from monitoring.platform_apis import Count, Outcome


class PollSchedule:
    """Args:
        every: the interval between polls while all is well (seconds, > 0).
        max_backoff: the longest wait after ordinary errors.
        quota_wait: the first wait after a quota error.
        max_wait: the longest wait of all (a platform's reset time is capped to it).
        jitter: up to this fraction is added to backoff waits, so pollers spread out.
        rng: a ``random.random`` stand-in in [0, 1).

    Raises:
        ValueError: for non-positive intervals or ``every > max_wait``.
    """

    def __init__(
        self,
        every: float,
        *,
        max_backoff: float = 300.0,
        quota_wait: float = 300.0,
        max_wait: float = 3600.0,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if every <= 0 or max_backoff <= 0 or quota_wait <= 0 or every > max_wait:
            raise ValueError("intervals must be positive and every <= max_wait")
        self.every = every
        self.max_backoff = max(every, min(max_backoff, max_wait))
        self.quota_wait = max(every, min(quota_wait, max_wait))
        self.max_wait = max_wait
        self.jitter = jitter
        self._rng = rng
        self.failures = 0  # consecutive, of any kind

    def next_delay(self, outcome: Outcome) -> float:
        """The wait after ``outcome``, in seconds."""
        if isinstance(outcome, Count):
            self.failures = 0
            return self.every
        self.failures += 1
        exponent = min(self.failures - 1, 30)
        if outcome.reason == "quota":
            wait = min(self.quota_wait * 2.0**exponent, self.max_wait)
        else:
            wait = min(self.every * 2.0**exponent, self.max_backoff)
        wait *= 1 + self.jitter * self._rng()
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        return min(max(wait, self.every), self.max_wait)
