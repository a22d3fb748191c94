"""Cloud edges: the studio's ``[[edges]]`` and an edge's own file (``jalsa edge EDGE_FILE``).

A studio sends ONE contribution (the program as FLV, in an HTTP/1.1 chunked PUT it dials
out) to each edge that some destination names with ``via = "<edge>"``; the edge fans it
out to the destinations of its own file (docs/edge.md). Destinations without ``via``
stay direct.

Pure: this is the event model's leaf layer.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from orchestrator.event.destination_spec import (
    NAME_PATTERN,
    DestinationSpec,
    parse_destinations,
)
from orchestrator.event.problems import EventError, Problem, Problems
from orchestrator.event.reader import Table, check_readable, quote, resolve_path, substitute_env
from orchestrator.event.secret import Secret

EDGE_KEYS: Final = ("name", "url", "key", "ca_file", "verify_tls")
_EDGE_FILE_KEYS: Final = ("edge", "destinations")
_EDGE_TABLE_KEYS: Final = ("name", "key", "tls_cert", "tls_key")
MIN_KEY_LENGTH: Final = 16
_KEY_FIX: Final = 'add key = "${EDGE_KEY}" and export EDGE_KEY (at least 16 characters)'


@dataclass(frozen=True, slots=True, repr=False)
class EdgeSpec:
    """One ``[[edges]]`` item of a studio's event file: where its contribution goes.

    Attributes:
        name: the edge's name, which ``via`` on a destination refers to.
        url: ``http(s)://host[:port]/path`` of the edge's contribution route.
        key: the contribution key (``Authorization: Bearer``), never shown.
        ca_file: an extra CA certificate (PEM) for an https:// edge.
        verify_tls: check the edge's certificate.
    """

    name: str
    url: str
    key: Secret
    ca_file: str | None = None
    verify_tls: bool = True

    def contribution(self) -> DestinationSpec:
        """The studio's one output towards this edge, run like any destination."""
        return DestinationSpec(
            name=self.name,
            platform="custom",
            kind="edge",
            url=self.url,
            key=self.key,
            verify_tls=self.verify_tls,
            ca_file=self.ca_file,
        )

    def __repr__(self) -> str:
        return f"EdgeSpec(name={self.name!r}, url={self.url!r}, key={self.key!r})"


def parse_edges(tables: Sequence[Table], base_dir: Path) -> tuple[EdgeSpec, ...]:
    """Read every ``[[edges]]`` table; problems go to each table's collector."""
    seen: set[str] = set()
    edges = []
    for table in tables:
        table.check_keys(EDGE_KEYS)
        name = table.string("name", required='add name = "karachi-vm"')
        if name is not None and not NAME_PATTERN.fullmatch(name):
            table.problem("name", f"{quote(name)} is not a valid name: use lowercase letters, - _")
            name = None
        elif name is not None and name in seen:
            table.problem("name", f"{quote(name)} is already used by another edge")
            name = None
        url = table.string("url", required='add url = "https://edge.example.org/contribute"')
        if url is not None and not _contribution_url(url):
            table.problem("url", f"{quote(url)} is not an http:// or https:// URL with a host")
            url = None
        key = read_key(table)
        ca_file = table.string("ca_file")
        if ca_file is not None:
            path = resolve_path(ca_file, base_dir)
            check_readable(table, "ca_file", ca_file, path, "the CA file")
            ca_file = str(path)
        verify_tls = table.boolean("verify_tls", True)
        if name is None or url is None or key is None:
            continue
        seen.add(name)
        edges.append(EdgeSpec(name, url, key, ca_file, verify_tls))
    return tuple(edges)


def check_via(
    tables: Sequence[Table], destinations: Sequence[DestinationSpec], edges: Sequence[EdgeSpec]
) -> None:
    """``via`` on each destination names an edge, and only network destinations go via one.

    ``tables`` are the ``[[destinations]]`` items, in file order (a YouTube ``backup``
    goes the way of its primary).
    """
    names = {edge.name for edge in edges}
    by_name = {spec.name: spec for spec in destinations}
    for table in tables:
        if table.raw("name") in names:
            table.problem("name", f"{quote(table.raw('name'))} is also an edge's name: rename one")
        via = table.raw("via")
        if not isinstance(via, str):
            continue  # absent, or its problem is already reported
        if via not in names:
            known = ", ".join(sorted(names)) or "none: add an [[edges]] table"
            table.problem("via", f"unknown edge {quote(via)} (edges: {known})")
            continue
        spec = by_name.get(str(table.raw("name")))
        if spec is not None and spec.kind in ("file", "hls"):
            table.problem(
                "via",
                f"a {'recording' if spec.kind == 'file' else 'HLS mirror'} stays at the "
                "studio: remove via here (an edge runs RTMP(S) and Icecast destinations)",
            )


def studio_outputs(
    destinations: Sequence[DestinationSpec], edges: Sequence[EdgeSpec]
) -> tuple[DestinationSpec, ...]:
    """What the studio runs itself: its direct destinations, then one contribution per
    edge that a destination goes via (an edge nothing goes via is not dialled)."""
    used = {spec.via for spec in destinations if spec.via is not None}
    direct = tuple(spec for spec in destinations if spec.via is None)
    return direct + tuple(edge.contribution() for edge in edges if edge.name in used)


def read_key(table: Table) -> Secret | None:
    """A contribution key: required, from the environment as ``${VAR}``, not too short."""
    key = table.string("key", required=_KEY_FIX, secret=True)
    if key is None:
        return None
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
        table.problem("key", f"is too short or has spaces: {_KEY_FIX}")
        return None
    return Secret(key)


def _contribution_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True, slots=True)
class EdgeFile:
    """``jalsa edge EDGE_FILE``: who this edge is and where it sends the program."""

    name: str
    key: Secret
    destinations: tuple[DestinationSpec, ...]
    tls_cert: str | None = None
    tls_key: str | None = None


def load_edge_file(path: Path, env: Mapping[str, str] | None = None) -> EdgeFile:
    """Read and validate an edge file.

    Raises:
        EventError: unreadable, not TOML, or with problems (each naming its key).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EventError(
            [Problem("<file>", f"{path} cannot be read as TOML: {exc}")], path
        ) from None
    try:
        return parse_edge_file(
            data, Path(os.path.abspath(path.parent)), os.environ if env is None else env
        )
    except EventError as exc:
        raise EventError(exc.problems, path) from None


def parse_edge_file(data: Mapping[str, Any], base_dir: Path, env: Mapping[str, str]) -> EdgeFile:
    """Validate an edge file's data (as :mod:`tomllib` returns it).

    Raises:
        EventError: with every problem found.
    """
    problems = Problems()
    top = Table(substitute_env(data, "", env, problems), "", problems)
    top.check_keys(_EDGE_FILE_KEYS)
    edge = top.table("edge")
    edge.check_keys(_EDGE_TABLE_KEYS)
    name = edge.string("name", required='add name = "karachi-vm"')
    key = read_key(edge)
    tls = [edge.string(k) for k in ("tls_cert", "tls_key")]
    for field_name, text in zip(("tls_cert", "tls_key"), tls, strict=True):
        if text is not None:
            check_readable(edge, field_name, text, resolve_path(text, base_dir), "the file")
    if (tls[0] is None) != (tls[1] is None):
        edge.problem("tls_cert", "tls_cert and tls_key go together: set both, or neither")
    tables = top.tables("destinations")
    destinations = parse_destinations(tables, base_dir)
    if not tables:
        problems.add("destinations", "none defined: add a [[destinations]] table")
    for table in tables:
        if table.has("via"):
            table.problem("via", "an edge sends its destinations directly: remove via")
    problems.raise_if_any()
    assert name is not None and key is not None
    cert, private = (str(resolve_path(t, base_dir)) if t else None for t in tls)
    return EdgeFile(name, key, destinations, cert, private)
