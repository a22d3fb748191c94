"""Problems found in the event file, and the error that reports them all at once.

Each :class:`Problem` names the key that is wrong (``program.fps``,
``speakers[1].source``, ``destinations[0].key``: 0-based indexes in file order) and says
what is wrong and how to fix it. :class:`Problems` collects them while the whole file is
read, then raises one :class:`EventError` listing every one, in file order, with secrets
scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_PARENT: Final = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")
# Secrets shorter than this are not scrubbed from messages: a 1-3 character "secret"
# would only garble the text, and it is not a real stream key or password anyway.
_MIN_SCRUB: Final = 4


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the event file: ``key`` names where, ``message`` what and how to fix."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class EventError(Exception):
    """The event file is invalid; :attr:`problems` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem], path: Path | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.path = path
        super().__init__(str(self))

    def __reduce__(self) -> tuple[type[EventError], tuple[tuple[Problem, ...], Path | None]]:
        return (EventError, (self.problems, self.path))

    def __str__(self) -> str:
        prefix = f"{self.path}: " if self.path is not None else ""
        return "\n".join(f"{prefix}{problem}" for problem in self.problems)


class Problems:
    """Collects problems; :meth:`raise_if_any` raises them all as one :class:`EventError`.

    Values registered with :meth:`secret` (stream keys, passwords, credentials, values
    from the environment) are scrubbed from every message as a last line of defence.
    """

    def __init__(self) -> None:
        self._problems: list[Problem] = []
        self._secrets: set[str] = set()
        # Key path -> position in the document, to report problems in file order.
        self._order: dict[str, int] = {}

    def mark(self, key: str) -> None:
        """Note that ``key`` comes next in the document (see :func:`substitute_env`)."""
        self._order.setdefault(key, len(self._order))

    def add(self, key: str, message: str) -> None:
        self._problems.append(Problem(key, message))

    def secret(self, value: str) -> None:
        if len(value) >= _MIN_SCRUB:
            self._secrets.add(value)

    def __len__(self) -> int:
        return len(self._problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._problems)

    def raise_if_any(self) -> None:
        """Raises:
        EventError: at least one problem was recorded.
        """
        if not self._problems:
            return
        # Longest first, so a secret that contains another is masked whole.
        secrets = sorted(self._secrets, key=len, reverse=True)
        scrubbed = []
        for problem in sorted(self._problems, key=self._position):
            message = problem.message
            for value in secrets:
                message = message.replace(value, "***")
            scrubbed.append(Problem(problem.key, message))
        raise EventError(scrubbed)

    def _position(self, problem: Problem) -> int:
        """Where ``problem.key`` (or its nearest parent present in the file) appears.

        Keys absent from the file (a missing table) sort last; sorting is stable.
        """
        key = problem.key
        while key in self._order or _PARENT.search(key):
            if key in self._order:
                return self._order[key]
            key = _PARENT.sub("", key)
        return len(self._order)
