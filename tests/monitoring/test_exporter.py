"""The monitoring collectors: values read from snapshots, lint-clean under promtool."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.listeners import DestinationListeners, ListenersSnapshot
from monitoring.metrics import (
    ListenerCollector,
    OutageCollector,
    ProbeCollector,
    ShowCollector,
    SpeakerCollector,
)
from monitoring.outage import Outage
from monitoring.outage_watch import OutagesSnapshot
from monitoring.probe_round import CheckResult, Download, ProbeRound, ResolverResult, Vantage
from monitoring.uplink import UplinkEstimate

LISTENERS = ListenersSnapshot(
    (
        DestinationListeners("yt", "youtube", 1200, 990.0, 10.0, 5, (("timeout", 2),), None),
        DestinationListeners("yt2", "youtube", 300, 995.0, 5.0, 5, (("quota", 1),), "quota: x"),
        DestinationListeners("fb", "facebook", None, None, None, 3, (("auth", 3),), "auth: x"),
        DestinationListeners("mirror", "hls", 4, 1000.0, 0.0, 0, (), None),
    )
)
ROUND = ProbeRound(
    Vantage("lahore-1", "Lahore", "PTCL"),
    100.0,
    104.5,
    (
        CheckResult("control", "web", "www.debian.org", "dns", True, 0.01),
        CheckResult("control", "web", "www.debian.org", "tcp", True, 0.05),
        CheckResult("youtube", "web", "www.youtube.com", "tls", False, 5.0, "timeout"),
        CheckResult("youtube", "ingest", "a.rtmp.youtube.com", "tcp", True, 0.1),
    ),
    (
        ResolverResult("youtube", "www.youtube.com", "system", False, 0.2, (), "NXDOMAIN"),
        ResolverResult("youtube", "www.youtube.com", "control", True, 0.1, ("1.2.3.4",)),
    ),
    (Download("control", "speed", 1_000_000, 2.0),),
)
OUTAGES = OutagesSnapshot(
    (Outage("platform", "youtube", frozenset({"a", "b"}), frozenset({"Lahore", "Karachi"}), 50.0),),
    (),
    ("youtube", "x"),
)


@dataclass(frozen=True)
class Program:
    up: bool = True
    seconds: float = 12.5
    late_resets: int = 0
    audio_peak_dbfs: float = -18.2
    input_speaker: str = "host"
    input_peak_dbfs: float = -17.5


@dataclass(frozen=True)
class Destination:
    name: str = "yt"
    platform: str = "youtube"
    kind: str = "rtmp"
    state: str = "live"
    sent_bytes: int = 1000
    reconnects: int = 0
    dropped_video: int = 0
    dropped_audio: int = 0
    lag_seconds: float = 0.1


@dataclass(frozen=True)
class Browser:
    """A live speaker's feed (a SpeakerLinkView)."""

    speaker: str
    connected: bool
    level_dbfs: float
    bitrate_bps: float | None = 800_000.0
    packet_loss_ratio: float | None = 0.01
    rtt_seconds: float | None = 0.05
    concealed_seconds: float = 0.0


SATURATED = UplinkEstimate(2_400_000.0, 3, ("fb", "x"), True)


@dataclass(frozen=True)
class Show:
    event: str = "Test"
    on_air: str = "host"
    on_air_kind: str = "speaker"
    ends_at: float | None = None
    speakers: tuple[str, ...] = ("host", "guest", "away", "clip")
    live_speakers: tuple[str, ...] = ("guest", "away")
    program: Program = field(default_factory=Program)
    destinations: tuple[Destination, ...] = (Destination(),)
    sources: tuple[object, ...] = (
        Browser("guest", True, -31.0, concealed_seconds=1.5),
        Browser("away", False, -100.0),  # a session that has ended: no level
        object(),  # a clip's source: no link
    )
    uplink: UplinkEstimate | None = SATURATED


SHOW = Show()


def scrape(show: Show = SHOW) -> str:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ShowCollector(lambda: show))  # type: ignore[arg-type]
    registry.register(SpeakerCollector(lambda: show))  # type: ignore[arg-type]
    registry.register(ListenerCollector(lambda: LISTENERS))
    registry.register(ProbeCollector(lambda: ROUND))
    registry.register(OutageCollector(lambda: OUTAGES))
    return generate_latest(registry).decode()


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_values_come_from_the_snapshots() -> None:
    found = values(scrape())
    v = (("city", "Lahore"), ("isp", "PTCL"))
    assert found["jalsa_listeners", (("platform", "youtube"),)] == 1500
    assert found["jalsa_listeners", (("platform", "hls"),)] == 4
    assert ("jalsa_listeners", (("platform", "facebook"),)) not in found  # no value yet
    assert (
        found["jalsa_listener_poll_errors_total", (("platform", "facebook"), ("reason", "auth"))]
        == 3
    )
    assert (
        found["jalsa_listeners_age_seconds", (("destination", "yt"), ("platform", "youtube"))] == 10
    )
    probe = (*v, ("check", "tls"), ("platform", "youtube"), ("vantage", "lahore-1"))
    assert found["jalsa_probe_success", tuple(sorted(probe))] == 0
    assert found["jalsa_probe_duration_seconds", tuple(sorted(probe))] == 5.0
    speed = tuple(sorted((*v, ("platform", "control"), ("vantage", "lahore-1"))))
    assert found["jalsa_probe_throughput_bytes_per_second", speed] == 500_000
    control_dns = tuple(
        sorted((*v, ("platform", "youtube"), ("resolver", "control"), ("vantage", "lahore-1")))
    )
    assert found["jalsa_probe_dns_resolver_success", control_dns] == 1
    assert (
        found["jalsa_probe_round_timestamp_seconds", tuple(sorted((*v, ("vantage", "lahore-1"))))]
        == 104.5
    )
    assert found["jalsa_outage", (("platform", "youtube"), ("scope", "platform"))] == 1
    assert found["jalsa_outage", (("platform", "x"), ("scope", "throttling"))] == 0
    assert found["jalsa_outage", (("platform", "all"), ("scope", "national"))] == 0
    assert found["jalsa_outage", (("platform", "control"), ("scope", "uplink"))] == 0
    concealed = "jalsa_speaker_audio_concealed_seconds_total"
    assert found[concealed, (("speaker", "guest"),)] == 1.5
    assert found[concealed, (("speaker", "away"),)] == 0


def test_program_and_speaker_audio_levels() -> None:
    found = values(scrape())
    assert found["jalsa_program_audio_level_dbfs", ()] == -18.2
    level = "jalsa_speaker_audio_level_dbfs"
    # On air: the program's measure of their input. A connected live speaker: their feed's.
    assert found[level, (("speaker", "host"),)] == -17.5
    assert found[level, (("speaker", "guest"),)] == -31.0
    # Nothing measured: no series (a disconnected speaker, a clip off air).
    assert (level, (("speaker", "away"),)) not in found
    assert (level, (("speaker", "clip"),)) not in found


def test_the_on_air_speakers_level_comes_from_the_program() -> None:
    """A live speaker on air: the program's measure wins over their feed's meter; the
    slate's measure is nobody's."""
    on_air = Show(on_air="guest", program=Program(input_speaker="guest", input_peak_dbfs=-12.0))
    assert values(scrape(on_air))["jalsa_speaker_audio_level_dbfs", (("speaker", "guest"),)] == -12
    slate = Show(on_air="slate", program=Program(input_speaker="slate", input_peak_dbfs=-100.0))
    found = values(scrape(slate))
    assert {labels for name, labels in found if name == "jalsa_speaker_audio_level_dbfs"} == {
        (("speaker", "guest"),)
    }
    silent = Show(program=Program(audio_peak_dbfs=-100.0))
    assert values(scrape(silent))["jalsa_program_audio_level_dbfs", ()] == -100.0


def test_the_uplink_as_the_destinations_see_it() -> None:
    found = values(scrape())
    assert found["jalsa_uplink_throughput_bps", ()] == 2_400_000
    assert found["jalsa_uplink_saturated", ()] == 1
    assert found["jalsa_uplink_lagging_destinations", ()] == 2
    unmeasured = values(scrape(Show(uplink=UplinkEstimate(None, 0, (), False))))
    assert ("jalsa_uplink_throughput_bps", ()) not in unmeasured  # no rate yet: no value
    assert unmeasured["jalsa_uplink_saturated", ()] == 0


def test_nothing_before_the_first_round() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ProbeCollector(lambda: None))
    text = generate_latest(registry).decode()
    assert "jalsa_probe_success{" not in text
    assert "# TYPE jalsa_probe_success gauge" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_finds_nothing_to_lint() -> None:
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape(), capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""
