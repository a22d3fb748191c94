"""Reading the event file's TOML tables while collecting every problem at once.

The event parser never stops at the first mistake: each getter of :class:`Table` records
a problem (the key that is wrong, what is wrong and how to fix it) in a
:class:`~orchestrator.event.problems.Problems` and returns a usable default, so that
``jalsa check`` can list everything in one run.

``${VAR}`` references are substituted into every string before any table is read
(:func:`substitute_env`). A substituted string is an :class:`EnvStr`, which remembers the
text as written: messages quote that text (``'${YT_STREAM_KEY}'``), never the value from
the environment.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final

from orchestrator.event.problems import Problems

# "$${" is an escaped, literal "${"; "${NAME}" is a reference.
_ENV_REF: Final = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EnvStr(str):
    """A string with ``${VAR}`` values substituted in; ``template`` is the text as written."""

    __slots__ = ("template",)
    template: str

    def __new__(cls, value: str, template: str) -> EnvStr:
        self = super().__new__(cls, value)
        self.template = template
        return self


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A string that names an unset variable; its problem is already recorded."""

    template: str


def substitute_env(value: Any, key: str, env: Mapping[str, str], problems: Problems) -> Any:
    """Return ``value`` with ``${VAR}`` substituted in every string, recursively.

    ``$${`` stands for a literal ``${``. A string naming an unset variable becomes
    :class:`Unresolved` after its problem is recorded under ``key``. Every key path is
    marked in document order (:meth:`Problems.mark`).
    """
    problems.mark(key)
    if isinstance(value, str):
        return _substitute_str(value, key, env, problems)
    if isinstance(value, Mapping):
        return {k: substitute_env(v, join(key, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{key}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


def _substitute_str(text: str, key: str, env: Mapping[str, str], problems: Problems) -> Any:
    if "${" not in text:
        return text
    missing: list[str] = []
    used = False

    def replace(match: re.Match[str]) -> str:
        nonlocal used
        name = match.group(1)
        if name is None:
            return "${"
        if name not in env:
            missing.append(name)
            return ""
        used = True
        problems.secret(env[name])
        return env[name]

    result = _ENV_REF.sub(replace, text)
    for name in dict.fromkeys(missing):
        problems.add(
            key,
            f"environment variable {name} is not set: export it before running, "
            "or put the value in the file",
        )
    # The text is not quoted: it may be a key that happens to contain "${".
    if "${" in _ENV_REF.sub("", text):
        problems.add(
            key,
            "has a malformed ${...}: write ${NAME} (letters, digits and _), "
            "or $${ for a literal ${",
        )
        return Unresolved(text)
    if missing:
        return Unresolved(text)
    return EnvStr(result, text) if used else result


def join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def quote(value: Any) -> str:
    """Describe a value for a message; strings from the environment show their template."""
    if isinstance(value, EnvStr):
        return f"{value.template!r} (from the environment)"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return repr(value)


def kind_of(value: Any) -> str:
    """Name a value's TOML type, for messages that must not quote the value itself."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return "a date/time"


def did_you_mean(word: str, options: Collection[str]) -> str:
    """``"did you mean 'x'? "`` when ``word`` is close to one of ``options``, else ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def one_of(options: Collection[str]) -> str:
    return ", ".join(repr(o) for o in options)


class Table:
    """Typed, problem-recording access to one TOML table whose key path is ``key``.

    Every getter returns a value of the right type: the default when the value is
    absent, unresolved or wrong (its problem recorded), so parsing can go on.
    """

    def __init__(self, data: Mapping[str, Any], key: str, problems: Problems) -> None:
        self.data = data
        self.key = key
        self.problems = problems

    def at(self, name: str) -> str:
        return join(self.key, name)

    def problem(self, name: str, message: str) -> None:
        self.problems.add(self.at(name) if name else self.key, message)

    def has(self, name: str) -> bool:
        return name in self.data

    def check_keys(self, allowed: Sequence[str]) -> None:
        for name in self.data:
            if name not in allowed:
                self.problem(
                    name,
                    f"unknown key: {did_you_mean(name, allowed)}"
                    f"the keys allowed here are {one_of(allowed)}",
                )

    def raw(self, name: str) -> Any:
        """The value as written (after substitution), or None if absent or unresolved."""
        value = self.data.get(name)
        return None if isinstance(value, Unresolved) else value

    def string(self, name: str, *, required: str = "", secret: bool = False) -> str | None:
        """A string value, or None when absent/invalid.

        Args:
            name: the key inside this table.
            required: if not empty, the value is required and this is the fix shown when
                it is missing (e.g. ``'add name = "Stage Secretary"'``).
            secret: never quote the value in a message (keys, passwords).
        """
        if name not in self.data:
            if required:
                self.problem(name, f"is missing: {required}")
            return None
        value = self.data[name]
        if isinstance(value, Unresolved):
            return None
        if not isinstance(value, str):
            got = kind_of(value) if secret else quote(value)
            self.problem(name, f"expected a string, got {got}: put the value in quotes")
            return None
        if secret:
            self.problems.secret(value)
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"expected an integer, got {quote(value)}: write it like {default}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"expected true or false, got {quote(value)}")
            return default
        return value

    def choice(self, name: str, options: Sequence[str], default: str | None) -> str | None:
        """One of ``options``; ``default`` when absent (None: required); None when invalid.

        An invalid value gives None rather than the default, so that a mistyped choice
        does not also trigger the problems of a choice the user never made.
        """
        if name not in self.data and default is None:
            self.problem(name, f"is missing: add {name} = one of {one_of(options)}")
            return None
        value = self.string(name)
        if value is None:
            return None if name in self.data else default
        if value not in options:
            self.problem(
                name,
                f"{quote(value)} is not allowed: {did_you_mean(value, options)}"
                f"use one of {one_of(options)}",
            )
            return None
        return value

    def table(self, name: str) -> Table:
        """A sub-table (an empty one when absent or not a table)."""
        value = self.raw(name)
        if value is None:
            return Table({}, self.at(name), self.problems)
        if not isinstance(value, Mapping):
            self.problem(name, f"expected a table, got {quote(value)}: write it as [{name}]")
            return Table({}, self.at(name), self.problems)
        return Table(value, self.at(name), self.problems)

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]``), each with its indexed key path."""
        value = self.raw(name)
        if value is None:
            return []
        if isinstance(value, Mapping):
            self.problem(
                name, f"expected an array of tables: write [[{name}]] (double brackets) per item"
            )
            return []
        if not isinstance(value, list):
            self.problem(name, f"expected an array of tables, got {quote(value)}")
            return []
        result = []
        for index, item in enumerate(value):
            key = f"{self.at(name)}[{index}]"
            if isinstance(item, Mapping):
                result.append(Table(item, key, self.problems))
            elif not isinstance(item, Unresolved):
                self.problems.add(key, f"expected a table, got {quote(item)}")
        return result


def resolve_path(text: str, base_dir: Path) -> Path:
    """An absolute, normalised path: relative ones are taken from ``base_dir``.

    Symlinks are kept as written (no ``resolve()``), so messages show the path the
    user recognises.
    """
    path = Path(text)
    with contextlib.suppress(RuntimeError):  # "~user" of an unknown user: keep it as written
        path = path.expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return Path(os.path.normpath(path.absolute()))


def check_readable(table: Table, name: str, text: str, path: Path, what: str) -> None:
    """Record a problem under ``name`` unless ``path`` (read from ``text``) is a readable file."""
    where = f"{quote(text)} -> {path}" if isinstance(text, EnvStr) else str(path)
    if not path.exists():
        table.problem(
            name,
            f"{what} {where} does not exist: check the path "
            "(a relative path is taken from the event file's folder)",
        )
    elif not path.is_file():
        table.problem(name, f"{what} {where} is not a file: name a file, not a folder")
    elif not os.access(path, os.R_OK):
        table.problem(name, f"{what} {where} is not readable: fix its permissions")
