"""``jalsa probe --join LINK``: an agent that dials out, signs what it sends, keeps what it
could not send.

Each round is first stored in the backlog (:class:`Backlog`: one small file per round in
``--backlog DIR``, written whole, bounded to ``max_age`` seconds and ``max_rounds``
rounds, oldest dropped first), then delivered by :class:`Uploader`: the newest round
first (the live view wants it), then the rest oldest first, each signed when it is sent
(``sent_at`` is the clock then, so jalsa can tell the skew). A round leaves the backlog
when jalsa accepted it (200), already had it (409: a retry whose answer was lost), or
refused it for good (any other 4xx but 401/403/429, logged). Unreachable, 5xx, 429,
401/403 (revoked?): it stays, and delivery is tried again after the next round. The
measuring never waits for delivery. The sequence number is kept in ``<backlog>/sequence``
so a restarted agent never reuses one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import aiohttp

from monitoring.agent_link import SIGNATURE_HEADER, AgentLink, sign_body
from monitoring.probe_cadence import Cadence
from monitoring.probe_round import log_changes
from monitoring.probes import USER_AGENT, Prober
from monitoring.round_wire import Context, body_bytes, encode_round

log = logging.getLogger(__name__)

MAX_AGE: Final = 86400.0
MAX_ROUNDS: Final = 10_000
TIMEOUT: Final = 10.0
_PENDING: Final = ".json"


def _write_whole(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
    os.replace(temporary, path)


class Backlog:
    """Rounds not yet delivered, on disk. Blocking: call from a worker thread."""

    def __init__(
        self, folder: Path, *, max_age: float = MAX_AGE, max_rounds: int = MAX_ROUNDS
    ) -> None:
        self.folder = folder
        self.max_age = max_age
        self.max_rounds = max_rounds
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sequence = folder / "sequence"

    def next_seq(self) -> int:
        try:
            seq = int(self._sequence.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            seq = max((int(p.stem) for p in self._files()), default=-1) + 1
        _write_whole(self._sequence, f"{seq + 1}\n".encode())
        return seq

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob(f"*{_PENDING}") if p.stem.isdigit())

    def put(self, seq: int, stored: dict[str, Any]) -> None:
        _write_whole(self.folder / f"{seq:012d}{_PENDING}", json.dumps(stored).encode())

    def pending(self, now: float) -> list[tuple[Path, dict[str, Any]]]:
        """Oldest first; rounds past ``max_age`` or ``max_rounds`` are dropped here."""
        found = []
        files = self._files()
        for path in files[: max(0, len(files) - self.max_rounds)]:
            path.unlink(missing_ok=True)
        for path in files[max(0, len(files) - self.max_rounds) :]:
            try:
                stored = json.loads(path.read_bytes())
                measured = float(stored["finished_at"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # half a file of a crash: nothing to send
                continue
            if now - measured > self.max_age:
                path.unlink(missing_ok=True)
                continue
            found.append((path, stored))
        return found

    def drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)


class Uploader:
    """Delivers the backlog to jalsa over one HTTP session."""

    def __init__(
        self,
        link: AgentLink,
        backlog: Backlog,
        *,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.backlog = backlog
        self.timeout = timeout
        self._clock = clock
        self.delivered = 0
        self._problem: str | None = "unseen"

    def _state(self, problem: str | None) -> None:
        if problem != self._problem:
            if problem is None:
                log.info("delivering rounds to %s", self.link.base_url)
            else:
                log.warning("cannot deliver rounds to %s: %s (kept)", self.link.base_url, problem)
        self._problem = problem

    async def flush(self, session: aiohttp.ClientSession) -> int:
        """Send what the backlog holds; the number of rounds still held after."""
        pending = await asyncio.to_thread(self.backlog.pending, self._clock())
        if pending:
            pending = [pending[-1], *pending[:-1]]  # the newest first
        left = len(pending)
        for path, stored in pending:
            body = body_bytes(stored, sent_at=self._clock(), backlog=left - 1)
            headers = {
                SIGNATURE_HEADER: sign_body(self.link, body),
                "Content-Type": "application/json",
            }
            try:
                async with session.post(
                    self.link.rounds_url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                self._state(type(error).__name__)
                return left
            if status in (200, 409) or (400 <= status < 500 and status not in (401, 403, 429)):
                if status not in (200, 409):
                    log.warning("jalsa refused round %s for good (HTTP %d)", path.stem, status)
                await asyncio.to_thread(self.backlog.drop, path)
                self.delivered += status == 200
                left -= 1
                continue
            self._state(f"HTTP {status}" + (" (was this agent revoked?)" if status == 403 else ""))
            return left
        self._state(None)
        return left


class PushAgent:
    """Measures every ``interval`` seconds (``calm_interval`` while everything answers:
    :mod:`monitoring.probe_cadence`) and delivers through the backlog."""

    def __init__(
        self,
        prober: Prober,
        link: AgentLink,
        backlog: Backlog,
        *,
        interval: float = 30.0,
        calm_interval: float = 0.0,
        context: Context | None = None,
    ) -> None:
        self.prober = prober
        self.link = link
        self.backlog = backlog
        self.interval = interval
        self.cadence = Cadence(interval, calm_interval)
        self.next_in = interval
        self.context = context or Context()
        self.uploader = Uploader(link, backlog)
        self._wake = asyncio.Event()
        self._seen: dict[str, bool] = {}

    async def measure_once(self) -> None:
        found = await self.prober.round()
        log_changes(found, self._seen)
        next_in = self.cadence.after(found)
        if next_in != self.next_in:
            calm = next_in > self.interval
            log.info("every %gs from now (%s)", next_in, "all clear" if calm else "not all clear")
        self.next_in = next_in
        found = dataclasses.replace(found, next_in=next_in)
        seq = await asyncio.to_thread(self.backlog.next_seq)
        stored = encode_round(
            found,
            agent=self.link.agent,
            generation=self.link.generation,
            seq=seq,
            context=self.context,
        )
        await asyncio.to_thread(self.backlog.put, seq, stored)
        self._wake.set()

    async def _measure(self) -> None:
        while True:
            started = time.monotonic()
            await self.measure_once()
            await asyncio.sleep(max(0.0, self.next_in - (time.monotonic() - started)))

    async def _deliver(self, session: aiohttp.ClientSession) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.uploader.flush(session)

    async def run(self) -> int:
        """Until SIGINT/SIGTERM; returns the exit code."""
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "probe agent %s: %d targets every %gs (%gs while all is clear), delivered to %s; "
            "backlog in %s",
            self.prober.vantage,
            len(self.prober.targets.targets),
            self.interval,
            max(self.interval, self.cadence.calm_interval),
            self.link.base_url,
            self.backlog.folder,
        )
        code = 0
        try:
            async with (
                aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session,
                asyncio.TaskGroup() as group,
            ):
                group.create_task(self._measure(), name="probes")
                group.create_task(self._deliver(session), name="delivery")
                await stop.wait()
                raise _Stopped
        except* _Stopped:
            pass
        except* Exception as failed:
            log.error("the probe agent failed", exc_info=failed.exceptions[0])
            code = 1
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        return code


class _Stopped(Exception):
    """Raised in the task group to end it on a signal."""


def system_resolver(path: Path = Path("/etc/resolv.conf")) -> str:
    """The first ``nameserver`` of the system's resolver configuration ("" if none)."""
    try:
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1][:64]
    except OSError:
        pass
    return ""
