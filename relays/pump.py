"""One thread that moves the media of every live network connection.

A thread per destination woke up for every program frame, once per destination: the
wake-ups (a futex, the GIL, a context switch) cost more than the work. The pump wakes
once per frame (the relay writes a byte into its wake-up pipe after offering a frame's
packets to every queue) and does each connection's round in turn: take what its queue
holds and its writer accepts, write it, send it. One ``select`` covers every socket:
readable ones (the server's acknowledgements, pings, errors), and the writable ones of
connections whose bytes are backed up.

Each destination keeps its own thread for everything that may block or sleep (connecting,
backing off, ending a stream politely). It hands a live connection to the pump with
:meth:`Pump.run`, which blocks that thread until the connection's round says it is over
(a pause, a close, a drained queue) or fails; the destination thread then finishes the
stream or handles the failure itself. Isolation holds: sockets are non-blocking, a round
never waits, so a slow or blocked link only ever delays its own bytes, and an exception in
one connection's round ends only that connection.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from dataclasses import dataclass, field
from typing import Final, Protocol

log = logging.getLogger(__name__)

# The longest the pump sleeps: how soon a pause, a close or a stalled link is noticed.
POLL: Final = 0.1


class PumpStream(Protocol):
    """One live connection's side of the pump; its methods run on the pump thread."""

    def fileno(self) -> int:
        """The connection's socket."""
        ...

    def step(self) -> str | None:
        """Move what can be moved now, never waiting. Returns why the stream is over
        (handed back to its owner), or None to go on.

        Raises:
            Exception: The connection failed (handed back to its owner, re-raised there).
        """
        ...

    def ready(self) -> bool:
        """Packets wait that the writer would take now: call :meth:`step` again soon."""
        ...

    def backed_up(self) -> bool:
        """Bytes wait for the socket: wake the pump when it is writable."""
        ...


@dataclass(eq=False)
class _Entry:
    stream: PumpStream
    done: threading.Event = field(default_factory=threading.Event)
    result: str | BaseException | None = None
    events: int = 0


class Pump:
    """See the module docstring. Start it with :meth:`start`, end it with :meth:`stop`."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        # Sockets, not a pipe: after close, a late wake() fails instead of writing into
        # whatever file reused the descriptor's number.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._arriving: list[_Entry] = []
        self._entries: dict[int, _Entry] = {}
        self._woken = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="relay-pump", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, stream: PumpStream) -> str:
        """Move ``stream`` on the pump until it is over; return why.

        Blocks the calling thread (the destination's own).

        Raises:
            Exception: What the stream's round raised (its connection failed).
            RuntimeError: The pump was stopped.
        """
        entry = _Entry(stream)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the relay pump is stopped")
            self._arriving.append(entry)
        self.wake()
        entry.done.wait()
        if isinstance(entry.result, BaseException):
            raise entry.result
        if entry.result is None:
            raise RuntimeError("the relay pump stopped")
        return entry.result

    def wake(self) -> None:
        """New packets are queued (any thread; cheap when already woken)."""
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):  # full (already woken), or closed
                self._wake_w.send(b"\0")

    def stop(self, timeout: float = 1.0) -> None:
        """End the pump; connections still on it are handed back as stopped."""
        with self._lock:
            self._stopped = True
        self.wake()
        self._thread.join(timeout)

    # -- the pump thread ------------------------------------------------------------------
    def _run(self) -> None:
        wake_fd = self._wake_r.fileno()
        try:
            again = False
            while not self._stopped:
                events = self._selector.select(0.0 if again else POLL)
                if any(key.fd == wake_fd for key, _ in events):
                    self._woken = False
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                self._adopt()
                again = False
                for fd, entry in list(self._entries.items()):
                    again = self._round(fd, entry) or again
        except Exception:  # a bug in the pump itself: its connections are handed back
            log.exception("the relay pump failed")
        finally:
            self._release_all()

    def _adopt(self) -> None:
        with self._lock:
            arriving, self._arriving = self._arriving, []
        for entry in arriving:
            try:
                fd = entry.stream.fileno()
                entry.events = selectors.EVENT_READ
                self._selector.register(fd, entry.events)
            except (OSError, ValueError, KeyError) as exc:
                self._hand_back(None, entry, exc)
                continue
            self._entries[fd] = entry

    def _round(self, fd: int, entry: _Entry) -> bool:
        """One round of one connection; True if it has more to do at once."""
        stream = entry.stream
        try:
            end = stream.step()
            if end is not None:
                self._hand_back(fd, entry, end)
                return False
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if stream.backed_up() else 0)
            if wanted != entry.events:
                entry.events = wanted
                self._selector.modify(fd, wanted)
            return stream.ready()
        except Exception as exc:  # this connection's failure (or bug): its owner decides
            self._hand_back(fd, entry, exc)
            return False

    def _hand_back(self, fd: int | None, entry: _Entry, result: str | BaseException) -> None:
        if fd is not None:
            self._entries.pop(fd, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)
        entry.result = result
        entry.done.set()

    def _release_all(self) -> None:
        with self._lock:
            self._stopped = True
            arriving, self._arriving = self._arriving, []
        for entry in [*self._entries.values(), *arriving]:
            entry.done.set()  # result None: "the pump stopped"
        self._entries.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
