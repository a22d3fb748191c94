"""Event files for the tests that run ``jalsa``: one builder instead of TOML pasted in each.

``event_toml`` writes the tables in the order an operator would ([event], [program],
[[speakers]], [[rundown]], [[destinations]], [[ice_servers]], [monitoring]) from plain
dicts; a dict inside an item becomes its sub-table (``listeners`` of a destination →
``[destinations.listeners]``). Values are written as TOML: strings quoted and escaped
(``${VAR}`` placeholders pass through for jalsa to fill in), paths as strings, numbers,
booleans and lists as they are. Nothing is validated here: a test of ``jalsa check`` may
build a file that is wrong on purpose.

Example::

    event.write_text(
        event_toml(
            "Stop Test",
            speakers=[speaker("host", source="testsrc")],
            rundown=[slot("host", "10m")],
            destinations=[{"name": "mkv", "url": "out/show.mkv"}],
        )
    )
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

# The small program most end-to-end tests encode: cheap on a shared CI core.
SMALL_PROGRAM: Mapping[str, Any] = {"width": 320, "height": 180, "fps": 15, "preset": "ultrafast"}


def program(**changes: Any) -> dict[str, Any]:
    """The small program, with ``changes``."""
    return {**SMALL_PROGRAM, **changes}


def speaker(id: str, name: str | None = None, **keys: Any) -> dict[str, Any]:
    """A ``[[speakers]]`` item; the name defaults to the id, capitalised."""
    return {"id": id, "name": name if name is not None else id.capitalize(), **keys}


def slot(speaker: str, duration: str, **keys: Any) -> dict[str, Any]:
    """A ``[[rundown]]`` item."""
    return {"speaker": speaker, "duration": duration, **keys}


def value(v: Any) -> str:
    """``v`` as a TOML value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, PurePath):
        v = str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, Sequence):
        return "[" + ", ".join(value(item) for item in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def _table(header: str, keys: Mapping[str, Any]) -> list[str]:
    lines = [header] if header else []
    nested = {k: v for k, v in keys.items() if isinstance(v, Mapping)}
    lines += [f"{k} = {value(v)}" for k, v in keys.items() if k not in nested]
    name = header.strip("[]")
    for k, sub in nested.items():
        lines += _table(f"[{name}.{k}]", sub)
    return lines


def event_toml(
    name: str | None = "Test Jalsa",
    *,
    event: Mapping[str, Any] | None = None,
    program: Mapping[str, Any] | None = SMALL_PROGRAM,
    speakers: Sequence[Mapping[str, Any]] = (),
    rundown: Sequence[Mapping[str, Any]] = (),
    destinations: Sequence[Mapping[str, Any]] = (),
    ice_servers: Sequence[Mapping[str, Any]] = (),
    monitoring: Mapping[str, Any] | None = None,
) -> str:
    """An event file's text. ``name`` (None: no ``[event]`` table) and ``event`` make
    ``[event]``; ``program=None`` leaves ``[program]`` out (jalsa's defaults)."""
    lines: list[str] = []
    info = {**({"name": name} if name is not None else {}), **(event or {})}
    if info:
        lines += _table("[event]", info)
    if program is not None:
        lines += _table("[program]", program)
    for array, items in (
        ("speakers", speakers),
        ("rundown", rundown),
        ("destinations", destinations),
        ("ice_servers", ice_servers),
    ):
        for item in items:
            lines += _table(f"[[{array}]]", item)
    if monitoring is not None:
        lines += _table("[monitoring]", monitoring)
    return "\n".join(lines) + "\n"
