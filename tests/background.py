"""A test's helper thread: runs ``tick`` over and over while a ``with`` block lasts."""

from __future__ import annotations

import threading
from typing import Self


class BackgroundLoop:
    """Calls :meth:`tick` every ``period`` seconds on a daemon thread, from ``__enter__``
    until ``__exit__`` (which waits up to 5 s for the thread)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
