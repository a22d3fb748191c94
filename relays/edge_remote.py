"""The studio's hands on an edge's destinations (the edge's control routes:
orchestrator/edge/control.py), so that they show and obey as the studio's own.

:class:`EdgeRemote` polls ``GET <edge>/destinations`` once a second (:meth:`run`, a task
the show owns) and keeps the latest snapshots, each marked ``via`` the edge; the
operator's pause, resume, add and remove of such a destination are passed on by
:meth:`call`. Requests are made with the stdlib on a worker thread, bounded by a timeout
(never on the event loop), over the contribution's TLS settings and with its key; the key
is never in a log line, a snapshot or an error. An edge that does not answer keeps its
last snapshots, marked stale in ``last_error``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import quote, urljoin

from orchestrator.event.edge_spec import EdgeSpec
from relays.destination import DestinationSnapshot
from relays.output import tls_context

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0
TIMEOUT_SECONDS: Final = 5.0
MAX_ANSWER: Final = 1024 * 1024  # an edge's answer is read up to this
_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(DestinationSnapshot)) - {"via"}


class EdgeUnreachable(Exception):
    """The edge did not answer (the message names the edge, never its key)."""


def control_url(contribution_url: str) -> str:
    """The edge's control routes beside its contribution route:
    ``https://h/contribute`` → ``https://h/destinations`` (a path prefix is kept)."""
    return urljoin(contribution_url, "destinations")


def parse_snapshots(answer: Any, edge: str) -> tuple[DestinationSnapshot, ...]:
    """The edge's ``GET /destinations`` answer as snapshots ``via`` ``edge``; items that
    are not snapshots are left out."""
    if not isinstance(answer, list):
        return ()
    snapshots = []
    for item in answer:
        if not isinstance(item, dict):
            continue
        try:
            fields = {k: item[k] for k in _FIELDS if k in item}
            snapshots.append(DestinationSnapshot(**fields, via=edge))
        except TypeError:
            continue
    return tuple(snapshots)


class EdgeRemote:
    """One ``[[edges]]`` item's destinations; see the module docstring."""

    def __init__(self, spec: EdgeSpec) -> None:
        self.name = spec.name
        self._base = control_url(spec.url)
        self._key = spec.key
        self._tls: ssl.SSLContext | None = (
            tls_context(spec.contribution()) if self._base.startswith("https:") else None
        )
        self._snapshots: tuple[DestinationSnapshot, ...] = ()
        self._failing = False

    def snapshots(self) -> tuple[DestinationSnapshot, ...]:
        return self._snapshots

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self._snapshots)

    async def run(self) -> None:
        """Poll the edge until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(POLL_SECONDS)

    async def refresh(self) -> None:
        try:
            status, answer = await self.call("GET", "")
        except EdgeUnreachable as exc:
            if not self._failing:
                log.warning("%s", exc)
            self._failing = True
            stale = f"the edge {self.name} does not answer: last known state"
            self._snapshots = tuple(
                dataclasses.replace(s, last_error=stale) for s in self._snapshots
            )
            return
        if status == 200:
            if self._failing:
                log.info("the edge %s answers again", self.name)
            self._failing = False
            self._snapshots = parse_snapshots(answer, self.name)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``method`` on ``/destinations<path>`` of the edge: (status, JSON answer).

        Raises:
            EdgeUnreachable: No HTTP answer in time.
        """
        return await asyncio.to_thread(self._request, method, path, body)

    def path_of(self, name: str, action: str = "") -> str:
        return f"/{quote(name, safe='')}" + (f"/{action}" if action else "")

    def _request(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._key.reveal()}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(
                request, timeout=TIMEOUT_SECONDS, context=self._tls
            ) as response:
                return response.status, _json(response.read(MAX_ANSWER))
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _json(error.read(MAX_ANSWER))
        except (OSError, ValueError) as exc:
            reason = type(exc).__name__
            raise EdgeUnreachable(f"the edge {self.name} does not answer ({reason})") from None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
