"""Destinations against real servers, in process: nginx-rtmp behind the FaultProxy, a
TLS-terminating proxy, a real Icecast. The program is a replay of pre-encoded packets
(cheap on CPU); ffprobe judges what each server received.

One fault run (about 25 s) covers isolation, detection, backoff, recovery and audio-only
RTMP at once, so the suite stays lean.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from background import BackgroundLoop
from faults import FaultProxy
from icecast_server import Icecast
from media import Probe, decode_errors, ffprobe
from nginx_rtmp import NginxRtmp
from program_replay import Replay, encode_loop, tiny_spec
from tls_terminator import Certificates, TlsTerminator, make_certificates
from waiting import wait_for

from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.event.secret import Secret
from relays.backoff import Backoff
from relays.destination import DestinationSnapshot, _OnPump
from relays.framing import FlvFraming
from relays.packet import EncodedPacket
from relays.relay import Relay

pytestmark = [pytest.mark.media, pytest.mark.timeout(120)]

THROTTLE = 30_000  # bytes/s: below the ~95 KB/s of the stream, above its audio (~17 KB/s)
FAULT_SECONDS = 11.0


def quick_backoff() -> Backoff:
    # The production schedule (1 s doubling to 30 s) would make recovery take up to 30 s.
    return Backoff(base=0.5, cap=2.0, reset_after=60.0)


@pytest.fixture(scope="module")
def program() -> tuple[tuple[object, object], list[EncodedPacket]]:
    encoder, packets = encode_loop(tiny_spec(), gops=2)
    return (encoder.video_stream, encoder.audio_stream), packets


def rtmp(
    name: str,
    port: int,
    key: str,
    *,
    tls: bool = False,
    verify_tls: bool = True,
    ca_file: str | None = None,
    audio_only: bool = False,
) -> DestinationSpec:
    url = f"{'rtmps' if tls else 'rtmp'}://127.0.0.1:{port}/rec"
    return DestinationSpec(
        name,
        "custom",
        "rtmp",
        url,
        key=Secret(key),
        audio_only=audio_only,
        verify_tls=verify_tls,
        ca_file=ca_file,
    )


class Watchdog(BackgroundLoop):
    """A thread that measures how late its 50 ms sleeps wake: a process-wide freeze (the
    GIL held by a blocked call) shows as one very late wake."""

    def __init__(self) -> None:
        super().__init__(0.05)
        self.worst = 0.0

    def tick(self) -> None:
        before = time.monotonic()
        time.sleep(self.period)
        self.worst = max(self.worst, time.monotonic() - before - self.period)


@dataclass
class Timeline:
    """Snapshots of every destination, sampled every 0.2 s."""

    relay: Relay
    samples: list[tuple[float, dict[str, DestinationSnapshot]]] = field(default_factory=list)

    def sample(self) -> dict[str, DestinationSnapshot]:
        snaps = {s.name: s for s in self.relay.snapshots()}
        self.samples.append((time.monotonic(), snaps))
        return snaps

    def sample_for(self, seconds: float) -> None:
        """Media flows for ``seconds``, sampled (a scenario's length, not a wait)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            time.sleep(0.2)

    def sample_until(
        self, test: Callable[[dict[str, DestinationSnapshot]], bool], timeout: float, what: str
    ) -> None:
        wait_for(lambda: test(self.sample()), timeout, what, poll=0.2)

    def first(self, name: str, since: float, test: Callable[[DestinationSnapshot], bool]) -> float:
        for at, snaps in self.samples:
            if at >= since and name in snaps and test(snaps[name]):
                return at - since
        return float("inf")

    def last(self, name: str) -> DestinationSnapshot:
        return self.samples[-1][1][name]

    def last_went_live(self, name: str) -> float:
        """When ``name`` last turned live (a sample's time). A reconnect quicker than the
        sampling (backoff jitter can be a few ms) shows only in the reconnect count."""
        went = self.samples[0][0]
        previous: DestinationSnapshot | None = None
        for at, snaps in self.samples:
            snap = snaps[name]
            again = previous is None or previous.state != "live"
            if snap.state == "live" and (again or snap.reconnects > previous.reconnects):
                went = at
            previous = snap
        return went


@dataclass
class FaultRun:
    nginx: NginxRtmp
    timeline: Timeline
    fault_at: float
    healed_at: float
    started: float
    closed: float
    worst_freeze: float
    live_again: dict[str, float]
    forwarded_after_heal: dict[str, int]
    pump_rounds_during_faults: int

    def probe(self, key: str) -> Probe:
        path = self.nginx.recording(key)
        assert path.exists(), f"nothing recorded for {key}: {self.nginx.errors()[-2000:]}"
        return ffprobe(path)


FAULTS = ("blackhole", "throttle", "reset", "refuse")


class Counter:
    """Counts the calls of a wrapped function (from any thread)."""

    def __init__(self) -> None:
        self.count = 0

    def counting(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: object) -> Any:
            self.count += 1
            return function(*args)

        return wrapper


@pytest.fixture(scope="module")
def fault_run(
    program: tuple[tuple[object, object], list[EncodedPacket]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultRun]:
    templates, packets = program
    work = tmp_path_factory.mktemp("faults")
    rounds = Counter()
    with NginxRtmp(work / "nginx") as nginx, pytest.MonkeyPatch.context() as patch:
        patch.setattr(_OnPump, "step", rounds.counting(_OnPump.step))
        proxies = {m: FaultProxy("127.0.0.1", nginx.port) for m in FAULTS}
        for proxy in proxies.values():
            proxy.start()
        try:
            relay = Relay(templates, work / "state", backoff=quick_backoff)  # type: ignore[arg-type]
            relay.add(rtmp("healthy", nginx.port, "key-healthy"))
            relay.add(rtmp("audio", nginx.port, "key-audio", audio_only=True))
            for mode, proxy in proxies.items():
                relay.add(rtmp(mode, proxy.port, f"key-{mode}"))
            relay.add(
                DestinationSpec(
                    "nowhere", "custom", "rtmp", "rtmp://nowhere.invalid/app", Secret("k")
                )
            )
            timeline = Timeline(relay)
            with Watchdog() as watchdog, Replay(packets, relay.publish):
                started = time.monotonic()
                on = ("healthy", "audio", *FAULTS)
                timeline.sample_until(
                    lambda snaps: all(snaps[name].state == "live" for name in on),
                    10,
                    "every reachable destination live before the faults",
                )
                fault_at = time.monotonic()
                proxies["blackhole"].set_mode("blackhole")
                proxies["throttle"].set_mode("throttle", rate_bytes_per_s=THROTTLE)
                proxies["reset"].set_mode("reset", reset_after_bytes=20_000)
                proxies["refuse"].set_mode("refuse")
                rounds_at_fault = rounds.count
                timeline.sample_for(FAULT_SECONDS)
                rounds_during_faults = rounds.count - rounds_at_fault
                healed_at = time.monotonic()
                at_heal = {m: p.bytes_forwarded for m, p in proxies.items()}
                for proxy in proxies.values():
                    proxy.set_mode("pass")
                timeline.sample_for(7.0)
                closed = time.monotonic()
                forwarded = {m: p.bytes_forwarded - at_heal[m] for m, p in proxies.items()}
                stuck = relay.close(4.0)
            assert stuck == []
            live_again = {
                m: timeline.first(m, healed_at, lambda s: s.state == "live") for m in FAULTS
            }
            nginx.wait_recorded()
            yield FaultRun(
                nginx,
                timeline,
                fault_at,
                healed_at,
                started,
                closed,
                watchdog.worst,
                live_again,
                forwarded,
                rounds_during_faults,
            )
        finally:
            for proxy in proxies.values():
                proxy.stop()


def test_healthy_destinations_get_every_second_while_others_fail(fault_run: FaultRun) -> None:
    wall = fault_run.closed - fault_run.started
    probe = fault_run.probe("key-healthy")
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    assert probe.video_seconds >= wall - 1.0
    assert probe.largest_video_gap <= 0.2
    assert decode_errors(fault_run.nginx.recording("key-healthy")) == ""
    # No process-wide freeze while a blackhole was being connected to (PyAV never opens
    # the network: it would hold the GIL until the connection timed out).
    assert fault_run.worst_freeze < 1.0
    healthy = fault_run.timeline.last("healthy")
    assert (healthy.state, healthy.reconnects, healthy.dropped_video) == ("live", 0, 0)


def test_audio_only_rtmp_carries_aac_and_no_video(fault_run: FaultRun) -> None:
    probe = fault_run.probe("key-audio")
    assert (probe.video_codec, probe.audio_codec) == (None, "aac")
    assert probe.audio_seconds >= fault_run.closed - fault_run.started - 1.0


def test_each_failure_is_detected_within_10_seconds(fault_run: FaultRun) -> None:
    t = fault_run.timeline

    def failing(s: DestinationSnapshot) -> bool:
        return s.state != "live" and s.last_error is not None

    for mode in ("blackhole", "reset", "refuse"):
        assert t.first(mode, fault_run.fault_at, failing) < 10.0, mode
    assert t.first("nowhere", fault_run.started, failing) < 10.0
    assert "cannot resolve 'nowhere.invalid'" in (t.last("nowhere").last_error or "")
    assert "no data for" in _errors(t, "blackhole")
    assert "refused" in _errors(t, "refuse")
    assert "reset" in _errors(t, "reset")


def _errors(t: Timeline, name: str) -> str:
    return " | ".join(dict.fromkeys(s[name].last_error or "" for _, s in t.samples if name in s))


def test_failed_destinations_back_off_and_recover_after_the_heal(fault_run: FaultRun) -> None:
    for mode in ("blackhole", "reset", "refuse"):
        snap = fault_run.timeline.last(mode)
        assert snap.state == "live", (mode, snap)
        assert snap.reconnects >= 1
        assert fault_run.live_again[mode] < 6.0, mode
        # The stream flows again: about 95 KB/s for the seconds since it went live.
        since_live = fault_run.closed - fault_run.timeline.last_went_live(mode)
        assert fault_run.forwarded_after_heal[mode] >= 40_000 * since_live, mode
    for mode in ("reset", "refuse"):
        # nginx records each publish afresh: the file holds what came after the last
        # (re)connect. (Not for the blackhole: its stuck connection from before the fault
        # stays nginx's publisher until the heal lets it close, and nginx-rtmp then
        # writes that one's last frame into the same file, over the new recording.)
        probe = fault_run.probe(f"key-{mode}")
        since_live = fault_run.closed - fault_run.timeline.last_went_live(mode)
        assert probe.video_seconds >= since_live - 1.5, mode
        assert probe.keyframe_times and probe.keyframe_times[0] == probe.video_times[0]
        assert decode_errors(fault_run.nginx.recording(f"key-{mode}")) == "", mode
    refused = fault_run.timeline.last("refuse")
    # Full jitter from 0.5 s doubling to 2 s over 11 s of refusals: several attempts.
    assert refused.reconnects >= 4


def test_the_throttled_destination_keeps_its_audio_and_drops_whole_gops(
    fault_run: FaultRun,
) -> None:
    snap = fault_run.timeline.last("throttle")
    assert snap.reconnects == 0, snap.last_error  # slow is not dead
    assert snap.dropped_video > 0
    probe = fault_run.probe("key-throttle")
    wall = fault_run.closed - fault_run.started
    assert probe.audio_seconds >= 0.9 * wall
    audio_gap = max(b - a for a, b in itertools.pairwise(sorted(probe.audio_times)))
    assert audio_gap < 0.5
    # Video came through in whole GOPs: every run after a gap starts with a keyframe,
    # and the whole recording decodes cleanly.
    times, keys = sorted(probe.video_times), set(probe.keyframe_times)
    for before, after in itertools.pairwise(times):
        if after - before > 0.1:
            assert after in keys
    assert decode_errors(fault_run.nginx.recording("key-throttle")) == ""
    lags = [s["throttle"].lag_seconds for _, s in fault_run.timeline.samples]
    assert max(lags) > 1.0  # it fell behind, and the snapshot says so


def test_a_backed_up_link_does_not_spin_the_pump(fault_run: FaultRun) -> None:
    # The pump runs a connection's round when woken (each published packet), when a
    # backed-up socket turns writable and every POLL: about 1,100 rounds a second for
    # these connections. A round that says "ready" but moves nothing (a throttled
    # link's video lane full, video queued) makes it spin: 24,000 a second measured, a
    # core burnt, the program starved.
    per_second = fault_run.pump_rounds_during_faults / FAULT_SECONDS
    assert per_second < 4000


def test_keys_never_appear_in_snapshots(fault_run: FaultRun) -> None:
    for _, snaps in fault_run.timeline.samples:
        for snap in snaps.values():
            assert "key-" not in repr(snap)


def test_a_bug_that_breaks_a_connection_is_retried_not_fatal(
    program: tuple[tuple[object, object], list[EncodedPacket]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    templates, packets = program
    real_write = FlvFraming.write
    writes = itertools.count()

    def buggy_write(feed: FlvFraming, packet: EncodedPacket) -> None:
        if next(writes) == 40:  # about half a second into the first connection
            raise RuntimeError("a bug, with the key key-buggy in its message")
        real_write(feed, packet)

    monkeypatch.setattr(FlvFraming, "write", buggy_write)
    with NginxRtmp(tmp_path / "nginx") as nginx:
        relay = Relay(templates, tmp_path / "state", backoff=quick_backoff)  # type: ignore[arg-type]
        relay.add(rtmp("buggy", nginx.port, "key-buggy"))
        timeline = Timeline(relay)
        with caplog.at_level(logging.WARNING, "relays.destination"), Replay(packets, relay.publish):
            timeline.sample_for(6.0)
            relay.close(3.0)
        nginx.wait_recorded("key-buggy")
        last = timeline.last("buggy")
        assert (last.state, last.reconnects) == ("live", 1)
        assert "internal error" in (last.last_error or "")
        assert "RuntimeError" in (last.last_error or "")
        assert "Traceback" in caplog.text
        assert "key-buggy" not in caplog.text + repr(last)
        probe = ffprobe(nginx.recording("key-buggy"))  # the second connection's stream
        assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
        assert probe.video_seconds >= 3.0


# --- RTMPS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def test_rtmps_verifies_certificates_by_default(
    program: tuple[tuple[object, object], list[EncodedPacket]],
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    templates, packets = program
    with (
        NginxRtmp(tmp_path / "nginx") as nginx,
        TlsTerminator(certificates, ("127.0.0.1", nginx.port)) as tls,
    ):
        relay = Relay(templates, tmp_path / "state", backoff=quick_backoff)  # type: ignore[arg-type]
        relay.add(rtmp("strict", tls.port, "key-strict", tls=True))
        ca = str(certificates.ca)
        relay.add(rtmp("trusted", tls.port, "key-trusted", tls=True, ca_file=ca))
        relay.add(rtmp("unchecked", tls.port, "key-unchecked", tls=True, verify_tls=False))
        timeline = Timeline(relay)
        with Replay(packets, relay.publish):
            timeline.sample_for(5.0)
            relay.close(3.0)
        nginx.wait_recorded("key-trusted", "key-unchecked")
        strict = timeline.last("strict")
        assert strict.state != "live"
        assert "TLS certificate verification failed" in (strict.last_error or "")
        assert not nginx.recording("key-strict").exists()
        for key in ("key-trusted", "key-unchecked"):
            probe = ffprobe(nginx.recording(key))
            assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
            assert probe.video_seconds >= 3.0
            assert decode_errors(nginx.recording(key)) == ""


# --- Icecast -----------------------------------------------------------------------------


def test_icecast_gets_adts_audio_a_listener_can_play(
    program: tuple[tuple[object, object], list[EncodedPacket]], tmp_path: Path
) -> None:
    templates, packets = program
    with Icecast(tmp_path / "icecast") as icecast:
        relay = Relay(templates, tmp_path / "state", backoff=quick_backoff)  # type: ignore[arg-type]
        for name, password in (("radio", icecast.password), ("wrongpw", "not-the-password")):
            url = f"icecast://source@127.0.0.1:{icecast.port}/{name}.aac"
            relay.add(
                DestinationSpec(
                    name, "custom", "icecast", url, audio_only=True, password=Secret(password)
                )
            )
        timeline = Timeline(relay)
        with Replay(packets, relay.publish):
            timeline.sample_for(2.0)
            pulled = tmp_path / "pulled.aac"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", icecast.listen_url("radio.aac"),
                 "-t", "3", "-c", "copy", str(pulled)],
                check=True, timeout=30,
            )  # fmt: skip
            relay.close(3.0)
        probe = ffprobe(pulled)
        assert (probe.video_codec, probe.audio_codec) == (None, "aac")
        assert probe.audio_seconds >= 2.5
        assert decode_errors(pulled) == ""
        assert timeline.last("radio").state == "live"
        wrong = timeline.last("wrongpw")
        assert wrong.state != "live"
        assert "401" in (wrong.last_error or "")
        assert "not-the-password" not in (wrong.last_error or "")
