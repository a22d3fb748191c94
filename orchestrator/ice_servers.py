"""``[[ice_servers]]``: STUN/TURN servers offered to speakers' browsers and to aiortc.

Speakers on mobile networks are often behind carrier-grade NAT, where only TURN works;
the TURN credential is held as a :class:`Secret`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, Final

from orchestrator.event_reader import Table, show
from orchestrator.secret import Secret

ICE_SCHEMES: Final = ("stun:", "turn:", "turns:")
_KEYS: Final = ("urls", "username", "credential")


def parse_ice_servers(tables: Sequence[Table]) -> tuple[Mapping[str, Any], ...]:
    """Read every ``[[ice_servers]]`` table into a read-only mapping.

    Each mapping has ``urls`` (a tuple of str) and, when given, ``username`` (str) and
    ``credential`` (:class:`Secret`). Problems go to each table's collector.
    """
    result = []
    for table in tables:
        table.check_keys(_KEYS)
        urls = _urls(table)
        username = table.string("username")
        credential = table.string("credential", secret=True)
        server: dict[str, Any] = {"urls": urls}
        if username is not None:
            server["username"] = str(username)
        if credential is not None:
            server["credential"] = Secret(str(credential))
        if any(url.startswith(("turn:", "turns:")) for url in urls) and not (
            table.has("username") and table.has("credential")
        ):
            table.problem(
                "",
                'TURN servers need username = "..." and credential = "${TURN_PASSWORD}": '
                "add both (from your TURN server's configuration)",
            )
        result.append(types.MappingProxyType(server))
    return tuple(result)


def _urls(table: Table) -> tuple[str, ...]:
    if not table.has("urls"):
        table.problem("urls", 'is missing: add urls = ["stun:stun.l.google.com:19302"]')
        return ()
    value = table.raw("urls")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        table.problem("urls", f"expected a string or an array of strings, got {show(value)}")
        return ()
    if not items:
        table.problem("urls", 'is empty: add at least one, like "stun:stun.l.google.com:19302"')
    urls = []
    for item in items:
        if not item.lower().startswith(ICE_SCHEMES):
            table.problem(
                "urls",
                f"{show(item)} is not an ICE server URL: write stun:host:port, turn:host:port "
                "or turns:host:port",
            )
        else:
            urls.append(str(item))
    return tuple(urls)
