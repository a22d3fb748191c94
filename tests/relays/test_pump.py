"""The relay pump: one thread moving many connections, each handed back to its owner."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from waiting import wait_for

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


def test_each_stream_runs_on_the_pump_until_it_ends_or_fails(pump: Pump) -> None:
    ending, failing, going = Stream(), Stream(), Stream()
    owners = {s: run_in_thread(pump, s) for s in (ending, failing, going)}
    wait_for(lambda: all(s.rounds > 0 for s in owners), 5, "a round of each stream")
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
    wait_for(lambda: going.rounds > rounds, 5, "another round of the third")
    assert owners[going][1] == []
    going.end = "paused"
    owners[going][0].join(5)
    assert owners[going][1] == ["paused"]


def test_stopping_the_pump_hands_every_stream_back(pump: Pump) -> None:
    stream = Stream()
    thread, out = run_in_thread(pump, stream)
    wait_for(lambda: stream.rounds > 0, 5, "a first round")
    pump.stop()
    thread.join(5)
    (error,) = out
    assert isinstance(error, RuntimeError)
    with pytest.raises(RuntimeError, match="stopped"):
        pump.run(Stream())
    pump.wake()  # after the stop: harmless
