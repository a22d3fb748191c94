"""The monitoring collectors: values read from snapshots, lint-clean under promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.listeners import DestinationListeners, ListenersSnapshot
from monitoring.metrics import ListenerCollector, OutageCollector, ProbeCollector
from monitoring.outage import Outage
from monitoring.outage_watch import OutagesSnapshot
from monitoring.probe_round import CheckResult, Download, ProbeRound, ResolverResult, Vantage

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


def scrape() -> str:
    registry = CollectorRegistry(auto_describe=True)
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
