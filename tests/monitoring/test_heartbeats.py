"""The watch page's heartbeats (pure, injected clock): which count, and what is kept."""

from __future__ import annotations

from monitoring.heartbeats import HeartbeatGate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_address_holds_a_bounded_number_of_sessions_until_they_expire() -> None:
    clock = Clock()
    gate = HeartbeatGate(window=45, per_address=3, clock=clock)
    keys = [gate.admit("198.51.100.1", f"session-{i:012d}") for i in range(4)]
    assert all(keys[:3]) and keys[3] is None
    assert gate.admit("198.51.100.1", "session-000000000000") == keys[0]  # known: kept
    assert gate.admit("198.51.100.2", "session-000000000003") is not None  # another address
    clock.now = 46  # all three expired: room again
    assert gate.admit("198.51.100.1", "session-000000000003") is not None


def test_malformed_ids_do_not_count() -> None:
    gate = HeartbeatGate()
    assert gate.admit("198.51.100.1", "short") is None
    assert gate.admit("198.51.100.1", "a" * 65) is None
    assert gate.admit("198.51.100.1", "bad id with spaces!!") is None


def test_memory_is_bounded_and_keeps_no_address() -> None:
    clock = Clock()
    gate = HeartbeatGate(max_addresses=100, clock=clock)
    for i in range(1000):
        clock.now = i * 0.01
        gate.admit(f"10.0.{i // 256}.{i % 256}", f"listener-{i:010d}")
    assert len(gate._addresses) <= 100
    kept = b"".join(gate._addresses) + b"".join(k for s in gate._addresses.values() for k in s)
    assert b"10.0." not in kept and b"listener-" not in kept  # keyed hashes only
