"""One destination: its own bounded queue, thread and reconnect loop.

Isolation is the point: the program thread only ever calls :meth:`Destination.offer`,
which never blocks. Whatever the destination's link does (refuse, reset, stall,
throttle), only its own queue fills, and the queue's drop policy keeps what is left
decodable. The destination's thread connects, backs off and ends streams, never waiting
on anything unbounded; while a network connection is live, the relay's
:class:`~relays.pump.Pump` moves its media in non-blocking rounds (:meth:`_step`), so a
dead link is detected (and a stop is noticed) in time. Recordings and the HLS mirror run
their rounds on the destination's own thread.

States: ``connecting`` → ``live`` → (a failure) ``retrying`` → ``connecting`` …;
``paused`` while an operator has paused it; ``stopped`` once closed. A bug that breaks a
connection (not the link) is retried the same way, its traceback logged: the program
keeps going out rather than one destination stopping for good.

What the platform says about the broadcast (``live_check``) is not asked here: the
listener poller of ``monitoring`` asks (one client per platform API), and the wiring hands
its verdict to :meth:`Destination.note_platform_verdict`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias, get_args

import av.error
from av.stream import Stream

from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.secret import redact
from orchestrator.event.states import RelayState
from relays.backoff import Backoff
from relays.errors import PublishRefused, RelayError
from relays.output import open_writer
from relays.packet import EncodedPacket, PacketKind
from relays.packet_queue import PacketQueue
from relays.publisher import Publisher
from relays.pump import Pump
from relays.writer import Writer

log = logging.getLogger(__name__)

QUEUE_SECONDS = 6.0
QUEUE_BYTES = 8 * 1024 * 1024
# DNS, TCP, TLS, the RTMP handshake and the publish, all within this.
CONNECT_TIMEOUT = 8.0
# Bytes waiting and none taken by the link for this long: a blocked link (blackhole).
STALL_TIMEOUT = 5.0
# The contribution to the team's own edge tries again within this all through a cut
# uplink, so the program is back at the edge about a second after the link is (the
# edge takes a try for a key check; a platform gets the backoff, a refused key too).
CONTRIBUTION_RETRY = 1.0
# How long a pause waits to end the stream politely before closing anyway.
PAUSE_GOODBYE = 1.0
IDLE = 0.1
# Packets written between two services of the link, when that many are queued.
BATCH = 8

_FAILURES = (RelayError, OSError, av.error.FFmpegError, ValueError)

StreamEnd: TypeAlias = Literal["paused", "deadline", "drained"]
"""Why a stream is over (:meth:`Destination._step`): a pause, a close that ran out of
time, a close that sent everything."""
_STREAM_ENDS: Final[dict[str, StreamEnd]] = {end: end for end in get_args(StreamEnd)}


@dataclass(frozen=True, slots=True)
class DestinationSnapshot:
    """What the console, the API and /metrics know about one destination.

    Attributes:
        target: The URL with keys and passwords masked.
        state: ``connecting``, ``live``, ``retrying``, ``paused`` or ``stopped``.
        sent_bytes: Bytes handed to the link (or file), all connections together.
        sent_packets: Packets written.
        reconnects: Failed connections (each is followed by a reconnect attempt).
        dropped_video, dropped_audio: Packets the drop policy (or a reconnect) dropped.
        lag_seconds: Program time of the newest packet offered minus that of the newest
            packet handed to the link.
        last_error: The latest failure, sanitised; kept after a recovery.
        live_check: What the platform's API says about the broadcast, if it is checked
            (``None``: not checked, or no answer yet): ``live``, ``ended: ...``,
            ``not started: ...``, ``gone: ...``, ``unknown: ...``.
        via: The edge that sends this destination (the studio sees it through the
            edge's control routes: relays/edge_remote.py); None for the studio's own.
    """

    name: str
    platform: str
    kind: str
    target: str
    state: RelayState
    sent_bytes: int
    sent_packets: int
    reconnects: int
    dropped_video: int
    dropped_audio: int
    lag_seconds: float
    last_error: str | None
    live_check: str | None = None
    via: str | None = None


def retry_delay(spec: DestinationSpec, refused: bool, backoff_delay: float) -> float:
    """How long a destination waits before it tries again: the backoff's delay, at most
    :data:`CONTRIBUTION_RETRY` for an edge contribution whose link failed (not refused)."""
    if spec.kind == "edge" and not refused:
        return min(backoff_delay, CONTRIBUTION_RETRY)
    return backoff_delay


class Destination:
    """One output of the program; see the module docstring.

    Args:
        spec: What and where.
        templates: The encoder's (video, audio) streams.
        state_dir: Where recordings and the HLS mirror go.
        connect_timeout: Bound on setting up a connection.
        stall_timeout: Bound on a link taking no bytes while some wait.
        backoff: The reconnect schedule (1 s doubling to 30 s, reset after a healthy
            minute, if None).
        pump: Moves live network connections (the relay's, shared by all).
        keyframe: Asks the encoder for a keyframe now. An edge contribution calls it as
            it connects: the edge ends its blip slate at the first live keyframe, so the
            program is back a frame after the link rather than up to a GOP (a platform
            does not: one that reconnects often would cost every destination bitrate).
    """

    def __init__(
        self,
        spec: DestinationSpec,
        templates: tuple[Stream, Stream],
        state_dir: Path,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        stall_timeout: float = STALL_TIMEOUT,
        backoff: Backoff | None = None,
        pump: Pump,
        keyframe: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self._pump = pump
        self._templates = templates
        self._state_dir = state_dir
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._backoff = backoff or Backoff(base=1.0, cap=30.0, reset_after=60.0)
        self._keyframe = keyframe if spec.kind == "edge" else None
        self._queue = PacketQueue(QUEUE_SECONDS, QUEUE_BYTES, audio_only=spec.audio_only)
        self._thread = threading.Thread(target=self._run, name=f"dest-{spec.name}", daemon=True)
        self._wake = threading.Event()
        self._paused = False
        self._closing = False
        self._deadline = math.inf
        # Masked in every error message. (A "secret" of 1-3 characters is no real key,
        # and masking it would only garble the text, as in "not ***nown" for "k".)
        self._secrets = tuple(
            s.reveal() for s in (spec.key, spec.password) if s is not None and len(s.reveal()) >= 4
        )
        self._safe_target = spec.safe_url()
        # Written by the writer thread, read by anyone (plain attribute reads).
        self._state: RelayState = "connecting"
        self._sent_bytes = 0
        self._sent_packets = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._refused = False  # the last connection's failure was a refusal (a wrong key)
        self._sent_at: float | None = None  # program time of the newest packet sent
        self._newest = 0.0  # program time of the newest packet offered (program thread)
        self._live_check: str | None = None  # the platform's verdict, from the wiring

    # -- the program thread's side ------------------------------------------------------
    def offer(self, packets: list[EncodedPacket]) -> None:
        """Queue packets for this destination. Never blocks."""
        if self._paused:
            return
        if self.spec.audio_only:
            packets = [packet for packet in packets if packet.kind != "video"]
        if not packets:
            return
        self._queue.put_many(packets)
        self._newest = packets[-1].seconds

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        if (warning := self.spec.cleartext_warning()) is not None:
            log.warning("%s", warning)
        self._thread.start()

    def pause(self) -> None:
        """End the stream (politely) and hold it until :meth:`resume`; others go on."""
        self._paused = True
        self._queue.clear_to_keyframe()
        self._wake.set()

    def resume(self) -> None:
        """Reconnect a paused destination at once (at the next keyframe)."""
        self._paused = False
        self._wake.set()

    @property
    def state(self) -> RelayState:
        return self._state

    def note_platform_verdict(self, text: str | None) -> None:
        """What the platform's API says about the broadcast now (shown as ``live_check``;
        None: not checked). Any thread."""
        self._live_check = text

    def close(self, deadline: float | None = None, *, drain: bool = True) -> None:
        """Stop taking packets and end the stream by ``deadline`` (``time.monotonic()``).

        With ``drain`` the writer first sends what is queued; whatever is not done by
        the deadline is abandoned (a blocked link gets no trailer, and no wait).
        """
        self._deadline = deadline if deadline is not None else time.monotonic() + 4.0
        self._closing = True
        self._queue.close(discard=not drain)
        self._wake.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    def snapshot(self) -> DestinationSnapshot:
        stats = self._queue.stats()
        sent_at = self._sent_at
        lag = max(0.0, self._newest - sent_at) if sent_at is not None else 0.0
        return DestinationSnapshot(
            name=self.spec.name,
            platform=self.spec.platform,
            kind=self.spec.kind,
            target=self._safe_target,
            state=self._state,
            sent_bytes=self._sent_bytes,
            sent_packets=self._sent_packets,
            reconnects=self._reconnects,
            dropped_video=stats.dropped_video,
            dropped_audio=stats.dropped_audio,
            lag_seconds=lag,
            last_error=self._last_error,
            live_check=self._live_check,
        )

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        try:
            while not self._closing:
                if self._paused:
                    self._state = "paused"
                    self._sleep(1.0)
                    continue
                self._state = "connecting"
                # A new connection starts at a keyframe with fresh headers: what was
                # queued for the old one is stale.
                self._queue.clear_to_keyframe()
                if not self._connection(attempt) or self._closing or self._paused:
                    continue
                self._backoff.failed()
                self._state = "retrying"
                self._reconnects += 1
                attempt += 1
                self._sleep(retry_delay(self.spec, self._refused, self._backoff.next_delay()))
        except Exception:  # a bug outside a connection: say so, and stop this one only
            log.exception("destination %s: writer failed", self.spec.name)
        finally:
            self._state = "stopped"

    def _cancelled(self) -> bool:
        return self._closing or self._paused

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early for a pause, a resume or a close."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _connection(self, attempt: int) -> bool:
        """One connection, until it fails (True) or a pause or close ends it (False)."""
        writer: Writer | None = None
        try:
            writer = open_writer(
                self.spec,
                self._templates,
                self._state_dir,
                attempt,
                deadline=time.monotonic() + self._connect_timeout,
                cancelled=self._cancelled,
                stall_timeout=self._stall_timeout,
            )
            self._backoff.succeeded(time.monotonic())
            if self._keyframe is not None:
                self._keyframe()
            self._state = "live"
            if attempt:
                log.info("destination %s (%s) is live again", self.spec.name, self._safe_target)
            base = self._sent_bytes
            if isinstance(writer, Publisher):
                end = _stream_end(self._pump.run(_OnPump(self, writer, base)))
            else:
                end = self._stream(writer, base)
            self._end(writer, end, base)
            return False
        except Exception as exc:  # the link's failures, and bugs: both are retried
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.abort()
            if self._cancelled():
                return False
            self._refused = isinstance(exc, PublishRefused)
            self._last_error = redact(_describe(exc), self._secrets)
            # A bug gets its traceback in the log (secrets masked there too).
            trace = "" if isinstance(exc, _FAILURES) else "\n" + traceback.format_exc()
            log.warning(
                "destination %s (%s): %s",
                self.spec.name,
                self._safe_target,
                redact(self._last_error + trace, self._secrets),
            )
            return True

    def _stream(self, writer: Writer, base: int) -> StreamEnd:
        """A local output's rounds on this thread (waiting up to :data:`IDLE` in each)
        until one ends it."""
        while True:
            end = self._step(writer, base, IDLE)
            if end is not None:
                return end

    def _step(self, writer: Writer, base: int, wait: float) -> StreamEnd | None:
        """One round: write what is queued and the writer takes, move bytes (waiting up to
        ``wait`` for something to do). Returns ``"paused"``, ``"deadline"`` (a close ran
        out of time) or ``"drained"`` (a close sent everything) when the stream is over."""
        if self._paused:
            return "paused"
        if self._closing and time.monotonic() >= self._deadline:
            return "deadline"
        queue = self._queue
        kinds = writer.accepts()
        if kinds:
            packet = queue.get(wait if writer.pending == 0 else 0.0, _only(kinds))
            if packet is not None:
                writer.write(packet)
                self._sent_packets += 1
                self._write_ready(writer)
                writer.service(0.0)
            elif queue.drained:
                return "drained"
            else:
                writer.service(wait if writer.pending else 0.0)
        else:
            writer.service(wait)
        self._account(writer, base)
        self._backoff.healthy(time.monotonic())
        return None

    def _end(self, writer: Writer, end: StreamEnd, base: int) -> None:
        """End the stream as ``end`` (from :meth:`_step`) says."""
        if end == "paused":
            writer.finish(time.monotonic() + PAUSE_GOODBYE)
        elif end == "drained":
            writer.finish(self._deadline)
            self._account(writer, base)
        else:
            writer.abort()

    def _write_ready(self, writer: Writer) -> None:
        """Write what else is queued already (up to :data:`BATCH` packets, while the
        writer takes them), so that one service sends them together."""
        queue = self._queue
        for _ in range(BATCH - 1):
            kinds = writer.accepts()
            if not kinds:
                return
            packet = queue.get(0.0, _only(kinds))
            if packet is None:
                return
            writer.write(packet)
            self._sent_packets += 1

    def _ready(self, writer: Writer) -> bool:
        """Packets are queued that ``writer`` would take now (of a kind it accepts: a
        backed-up video lane with video waiting is not work, and must not spin the pump)."""
        kinds = writer.accepts()
        return bool(kinds) and self._queue.has_packets(_only(kinds))

    def _account(self, writer: Writer, base: int) -> None:
        self._sent_bytes = base + writer.sent_bytes
        sent = writer.sent_seconds
        if sent is not None:
            self._sent_at = sent


class _OnPump:
    """A destination's live network connection, as the relay's pump moves it."""

    __slots__ = ("_base", "_destination", "_writer")

    def __init__(self, destination: Destination, writer: Publisher, base: int) -> None:
        self._destination = destination
        self._writer = writer
        self._base = base

    def fileno(self) -> int:
        return self._writer.fileno()

    def step(self) -> StreamEnd | None:
        return self._destination._step(self._writer, self._base, 0.0)

    def ready(self) -> bool:
        return self._destination._ready(self._writer)

    def backed_up(self) -> bool:
        return self._writer.backed_up


def _stream_end(value: str) -> StreamEnd:
    """What :meth:`Pump.run` handed back: the :class:`StreamEnd` our round returned."""
    try:
        return _STREAM_ENDS[value]
    except KeyError:
        raise RuntimeError(f"the pump handed back an unknown end {value!r}") from None


def _only(kinds: tuple[PacketKind, ...]) -> PacketKind | None:
    """The one kind a writer that accepts ``kinds`` may be given, or None for any."""
    return None if len(kinds) > 1 else kinds[0]


def _describe(exc: BaseException) -> str:
    """An operator's account of a failure (the caller redacts secrets)."""
    if isinstance(exc, RelayError):
        return str(exc)
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, BrokenPipeError):
        return "the connection was closed by the other side"
    if isinstance(exc, OSError) and exc.strerror:
        return f"connection failed: {exc.strerror}"
    if not isinstance(exc, _FAILURES):
        return f"internal error (retrying): {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
