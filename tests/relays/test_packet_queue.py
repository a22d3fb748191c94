"""PacketQueue with real producer and consumer threads; every wait is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from fractions import Fraction

import pytest
from waiting import blocked_in_wait, wait_for

from relays.packet import EncodedPacket
from relays.packet_queue import PacketQueue, QueueStats

TB = Fraction(1, 90_000)


def stream(n: int, *, gop: int = 10, size: int = 100) -> list[EncodedPacket]:
    """``n`` packets: 30 fps video in GOPs of ``gop`` with an audio packet after each."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(EncodedPacket("video", bytes(size), i, i * 1500, TB, i // 2 % gop == 0))
        else:
            out.append(EncodedPacket("audio", bytes(size // 10), i, i * 1500, TB, True))
    return out


def run_thread(target: Callable[..., object], *args: object) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def test_producer_and_consumer_threads_keep_order_and_lose_nothing() -> None:
    q = PacketQueue(1e6, 10**9)
    pkts = stream(5000)
    received: list[EncodedPacket] = []

    def consume() -> None:
        while (pkt := q.get(timeout=5.0)) is not None:
            received.append(pkt)
            if len(received) == len(pkts):
                return

    def produce() -> None:
        for p in pkts:
            q.put(p)

    consumer = run_thread(consume)
    producer = run_thread(produce)
    producer.join(10)
    consumer.join(10)
    assert not consumer.is_alive()
    assert received == pkts
    assert q.stats() == QueueStats(0, 0.0, 0, 0, 0, None)


def test_get_times_out_with_none() -> None:
    q = PacketQueue(10, 10_000)
    start = time.monotonic()
    assert q.get(timeout=0.2) is None
    elapsed = time.monotonic() - start
    assert 0.15 <= elapsed < 5
    assert q.get(timeout=0) is None


def test_get_wakes_when_a_packet_arrives() -> None:
    q = PacketQueue(10, 10_000)
    result: list[EncodedPacket | None] = []
    consumer = run_thread(lambda: result.append(q.get(timeout=10)))
    wait_for(lambda: blocked_in_wait(consumer), 5, "the consumer blocked in get")
    key = stream(1)[0]
    q.put(key)
    consumer.join(5)
    assert result == [key]


def test_close_wakes_a_blocked_get_which_returns_none() -> None:
    q = PacketQueue(10, 10_000)
    result: list[EncodedPacket | None] = []
    consumer = run_thread(lambda: result.append(q.get(timeout=30)))
    wait_for(lambda: blocked_in_wait(consumer), 5, "the consumer blocked in get")
    start = time.monotonic()
    q.close()
    consumer.join(5)
    assert not consumer.is_alive()
    assert time.monotonic() - start < 2
    assert result == [None]
    assert q.closed


def test_closed_queue_drains_then_returns_none_and_ignores_puts() -> None:
    q = PacketQueue(10, 10_000)
    pkts = stream(4)
    q.put(pkts[0])
    q.put(pkts[1])
    q.close()
    q.put(pkts[2])
    assert not q.drained
    start = time.monotonic()
    assert q.get(timeout=5) is pkts[0]
    assert q.get(timeout=5) is pkts[1]
    assert q.drained
    assert q.get(timeout=5) is None
    assert time.monotonic() - start < 2  # a closed queue never waits
    s = q.stats()
    assert (s.queued_bytes, s.dropped_video, s.dropped_audio) == (0, 0, 0)


def test_close_with_discard_drops_and_counts_what_is_queued() -> None:
    q = PacketQueue(10, 10_000)
    for p in stream(4):
        q.put(p)
    q.close(discard=True)
    assert q.drained
    assert q.get(timeout=5) is None
    s = q.stats()
    assert not q.has_packets()
    assert (s.queued_bytes, s.dropped_video, s.dropped_audio) == (0, 2, 2)


def test_put_never_blocks_without_a_consumer() -> None:
    q = PacketQueue(2.0, 50_000)
    pkts = stream(20_000, size=1000)
    start = time.monotonic()
    for p in pkts:
        q.put(p)
    assert time.monotonic() - start < 10
    s = q.stats()
    assert s.queued_bytes <= 50_000
    assert s.span_seconds <= 2.0
    assert s.dropped_video > 0
    q.close()  # what is left drains without waiting
    left = list(iter(lambda: q.get(timeout=0), None))
    assert len(left) + s.dropped_video + s.dropped_audio == len(pkts)


def test_concurrent_slow_consumer_counts_add_up() -> None:
    q = PacketQueue(0.5, 20_000)
    pkts = stream(6000, size=500)
    received: list[EncodedPacket] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or q.has_packets():
            pkt = q.get(timeout=0.05)
            if pkt is not None:
                received.append(pkt)
                time.sleep(0.0001)

    def produce() -> None:
        for p in pkts:
            q.put(p)
            s = q.stats()
            assert s.queued_bytes <= 20_000
        done.set()

    consumer = run_thread(consume)
    producer = run_thread(produce)
    producer.join(20)
    consumer.join(20)
    assert done.is_set()
    assert not consumer.is_alive()
    s = q.stats()
    assert not q.has_packets()
    assert len(received) + s.dropped_video + s.dropped_audio == len(pkts)
    assert [p.pts for p in received] == sorted(p.pts for p in received)
    assert received[0].keyframe


def test_clear_to_keyframe_restarts_at_a_keyframe() -> None:
    q = PacketQueue(10, 100_000)
    pkts = stream(10, gop=3)  # video keyframes at pts 0 and 6
    for p in pkts[:4]:
        q.put(p)
    q.clear_to_keyframe()
    assert not q.has_packets()
    for p in pkts[4:]:
        q.put(p)
    first = q.get(timeout=1)
    assert first is not None
    assert first.pts == 6
    assert first.keyframe
    s = q.stats()
    assert (s.dropped_video, s.dropped_audio) == (3, 3)


def test_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        PacketQueue(0, 100)


def test_get_by_kind_takes_audio_ahead_of_older_video() -> None:
    q = PacketQueue(10, 100_000)
    pkts = stream(6)  # video, audio, video, audio, ...
    for p in pkts:
        q.put(p)
    assert q.get(timeout=1, kind="audio") is pkts[1]
    assert q.get(timeout=1, kind="audio") is pkts[3]
    assert q.get(timeout=1) is pkts[0]  # no kind: push order again
    start = time.monotonic()
    assert q.get(timeout=0.2, kind="audio") is pkts[5]
    assert q.get(timeout=0.2, kind="audio") is None  # only video left: it waited, then None
    assert time.monotonic() - start >= 0.15
    assert q.get(timeout=1, kind="video") is pkts[2]
