"""The relay pump: one thread moving many connections, each handed back to its owner."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from relays.pump import Pump

pytestmark = pytest.mark.timeout(30)
MADE: list[Stream] = []  # closed after each test


class Stream:
    """A connection's round, scripted: counts its rounds, ends or fails when told."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.rounds = 0
        self.end: str | None = None
        self.fail: Exception | None = None
        self.round_thread: str | None = None
        MADE.append(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def step(self) -> str | None:
        self.rounds += 1
        self.round_thread = threading.current_thread().name
        if self.fail is not None:
            raise self.fail
        return self.end

    def ready(self) -> bool:
        return False

    def backed_up(self) -> bool:
        return False


@pytest.fixture
def pump() -> Iterator[Pump]:
    pump = Pump()
    pump.start()
    yield pump
    pump.stop()
    for stream in MADE:
        stream.sock.close()
        stream.peer.close()
    MADE.clear()


def run_in_thread(pump: Pump, stream: Stream) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def owner() -> None:
        try:
            out.append(pump.run(stream))
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=owner, daemon=True)
    thread.start()
    return thread, out


def until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_each_stream_runs_on_the_pump_until_it_ends_or_fails(pump: Pump) -> None:
    ending, failing, going = Stream(), Stream(), Stream()
    owners = {s: run_in_thread(pump, s) for s in (ending, failing, going)}
    until(lambda: all(s.rounds > 0 for s in owners))
    assert {s.round_thread for s in owners} == {"relay-pump"}
    ending.end = "drained"
    failing.fail = ConnectionResetError("reset by peer")
    pump.wake()
    for stream in (ending, failing):
        owners[stream][0].join(5)
    assert owners[ending][1] == ["drained"]
    (error,) = owners[failing][1]
    assert isinstance(error, ConnectionResetError)
    # The third goes on, unaffected, round after round.
    rounds = going.rounds
    pump.wake()
    until(lambda: going.rounds > rounds)
    assert owners[going][1] == []
    going.end = "paused"
    owners[going][0].join(5)
    assert owners[going][1] == ["paused"]


def test_stopping_the_pump_hands_every_stream_back(pump: Pump) -> None:
    stream = Stream()
    thread, out = run_in_thread(pump, stream)
    until(lambda: stream.rounds > 0)
    pump.stop()
    thread.join(5)
    (error,) = out
    assert isinstance(error, RuntimeError)
    with pytest.raises(RuntimeError, match="stopped"):
        pump.run(Stream())
    pump.wake()  # after the stop: harmless
