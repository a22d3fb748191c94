"""A network destination's writer: our own client owns the socket (no network in PyAV).

:class:`Publisher` is the I/O shell around a sans-I/O session
(:class:`~relays.rtmp.session.RtmpPublishSession` or
:class:`~relays.icecast.IcecastSourceSession`), the connection's
:class:`~relays.framing.Framing` and a :class:`~relays.link.Link`, all on the
destination's writer thread. It keeps what is in flight small: it takes a
new packet of a kind only while fewer than :data:`LOW_WATER` bytes of its lane wait to be
sent, so on a slow link packets stay in the destination's queue, where the drop policy
decides what goes. Audio has its own lane, sent first, so it never waits behind the
rest of a large video frame: a link too slow for the video still carries the audio.

Failure detection: the connection's own errors (refused, reset, TLS, closed by the
server), the server's refusals (raised by the session), and a blackhole: bytes waiting
with no progress for ``stall_timeout`` seconds.
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from relays.errors import ConnectFailed, LinkStalled, RelayError
from relays.framing import Framing
from relays.link import MAX_SEND, POLL, Link
from relays.outbox import Outbox
from relays.packet import EncodedPacket, PacketKind

LOW_WATER: Final = 16 * 1024  # per lane: bytes waiting before no more packets are taken
# Taken from the session at a time while the link is backed up, so urgent bytes jump the
# queue; while it takes everything, up to MAX_SEND at a time (fewer system calls).
REFILL: Final = 8 * 1024
# How often a writer that never waits (it always has media to send) looks for what the
# server sent (acknowledgements, pings, errors).
READ_EVERY: Final = 0.1
KINDS: Final[tuple[PacketKind, ...]] = ("video", "audio")


class Session(Protocol):
    """The sans-I/O protocol state a :class:`Publisher` drives."""

    @property
    def state(self) -> str: ...

    @property
    def live(self) -> bool: ...

    @property
    def outbox(self) -> Outbox: ...

    def lane_of(self, kind: str) -> str: ...

    def initiate(self) -> None: ...

    def receive_data(self, data: bytes) -> None: ...

    def data_to_send(self, limit: int | None = None) -> bytes: ...

    def finish(self) -> None: ...


class Publisher:
    """One live connection: see the module docstring. Make one with :meth:`connect`."""

    def __init__(
        self,
        link: Link,
        session: Session,
        framing: Callable[[], Framing],
        *,
        stall_timeout: float,
    ) -> None:
        self._link = link
        self._session = session
        self._new_framing = framing
        self._framing: Framing | None = None
        self._stall_timeout = stall_timeout
        self._out = bytearray()  # taken from the session, being sent
        self._flowing = True  # the last send took all it was given
        self._read_due = 0.0
        self._sent = 0  # bytes ever sent
        self._progress = time.monotonic()
        # Per lane, (the lane's queued total after a packet, its program seconds, kind):
        # packets whose bytes have not all left the session yet.
        self._marks: dict[str, deque[tuple[int, float, PacketKind]]] = {}
        self._sent_by_kind: dict[PacketKind, float] = {}

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        session: Session,
        framing: Callable[[], Framing],
        *,
        tls: ssl.SSLContext | None,
        deadline: float,
        cancelled: Callable[[], bool],
        stall_timeout: float,
    ) -> Publisher:
        """Connect, run the protocol until the server accepts the stream, then start the
        media (the framing's header goes out first).

        Raises:
            ConnectFailed: The link could not be set up, or the server did not accept
                the stream before ``deadline``.
            RelayError: The server refused (with its reason), or broke the protocol.
            OSError: The connection failed.
        """
        link = Link.open(host, port, tls=tls, deadline=deadline, cancelled=cancelled)
        publisher = cls(link, session, framing, stall_timeout=stall_timeout)
        try:
            publisher._until_live(deadline, cancelled)
        except BaseException:
            link.close(abort=True)
            raise
        return publisher

    def _until_live(self, deadline: float, cancelled: Callable[[], bool]) -> None:
        session = self._session
        session.initiate()
        while not session.live:
            if cancelled():
                raise ConnectFailed(f"stopped while connecting to {self._link.peer}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectFailed(
                    f"{self._link.peer} accepted the connection but did not accept the stream "
                    f"in time (stuck at {session.state!r}): a blocked or overloaded ingest"
                )
            self._pump(min(POLL, left), stall=False)
        self._framing = self._new_framing()
        self._framing.start()
        self._progress = time.monotonic()

    # -- Writer ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._out) + self._session.outbox.pending()

    @property
    def sent_bytes(self) -> int:
        return self._sent

    @property
    def sent_seconds(self) -> float | None:
        """The kind furthest behind decides: audio sent first does not hide video that
        a slow link carries late."""
        return min(self._sent_by_kind.values()) if self._sent_by_kind else None

    @property
    def backed_up(self) -> bool:
        """Bytes wait for the socket to take them."""
        return bool(self._out)

    def fileno(self) -> int:
        return self._link.fileno()

    def accepts(self) -> tuple[PacketKind, ...]:
        session = self._session
        return tuple(
            kind for kind in KINDS if session.outbox.pending(session.lane_of(kind)) < LOW_WATER
        )

    def write(self, packet: EncodedPacket) -> None:
        assert self._framing is not None
        self._framing.write(packet)
        lane = self._session.lane_of(packet.kind)
        marks = self._marks.setdefault(lane, deque())
        marks.append((self._session.outbox.queued(lane), packet.seconds, packet.kind))
        self._settle()

    def service(self, timeout: float) -> None:
        self._pump(timeout, stall=True)

    def finish(self, deadline: float) -> None:
        try:
            if self._framing is not None:
                self._framing.end()
            self._session.finish()
            while self.pending and time.monotonic() < deadline:
                self._pump(min(POLL, max(0.0, deadline - time.monotonic())), stall=True)
        except (RelayError, OSError, ValueError):
            pass  # going away anyway: a failure here only means no clean goodbye
        finally:
            self._link.close(abort=bool(self.pending))

    def abort(self) -> None:
        if self._framing is not None:
            self._framing.abort()
        self._link.close(abort=True)

    # -- inside ---------------------------------------------------------------------------
    def _refill(self) -> None:
        limit = MAX_SEND if self._flowing else REFILL
        if len(self._out) < limit:
            self._out += self._session.data_to_send(limit - len(self._out))
            self._settle()

    def _pump(self, timeout: float, *, stall: bool) -> None:
        now = time.monotonic()
        if not self.pending:
            self._progress = now  # the stall clock starts with the bytes
        self._refill()
        if timeout > 0 or now >= self._read_due:
            self._read_due = now + READ_EVERY
            readable, writable = self._link.wait(write=bool(self._out), timeout=timeout)
            if readable:
                data = self._link.recv()
                if data:
                    self._session.receive_data(data)
                    self._refill()
        else:
            writable = True  # no need to ask: a full socket takes nothing
        if writable and self._out:
            self._send()
        if stall and self.pending and time.monotonic() - self._progress > self._stall_timeout:
            raise LinkStalled(
                f"{self._link.peer} has taken no data for {self._stall_timeout:g} s "
                "(the link is blocked)"
            )

    def _send(self) -> None:
        """Send while the socket takes whole pieces: one wait, several sends."""
        while self._out:
            size = min(len(self._out), MAX_SEND)
            sent = self._link.send(self._out)
            if not sent:
                self._flowing = False
                return
            del self._out[:sent]
            self._sent += sent
            self._progress = time.monotonic()
            self._flowing = sent == size
            self._refill()
            if not self._flowing:
                return  # the socket is full for now

    def _settle(self) -> None:
        """Note the newest packet whose bytes have all left the session."""
        outbox = self._session.outbox
        for lane, marks in self._marks.items():
            emitted = outbox.emitted(lane)
            while marks and marks[0][0] <= emitted:
                _, seconds, kind = marks.popleft()
                self._sent_by_kind[kind] = max(seconds, self._sent_by_kind.get(kind, seconds))
