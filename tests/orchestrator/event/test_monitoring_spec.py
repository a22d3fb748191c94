"""``[monitoring]``: optional, validated with the event, every problem naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.event import EventError, parse_event
from orchestrator.event.monitoring_spec import MonitoringSpec

HOOK = "https://hooks.slack.com/services/T0/B0/SECRETPART1"


def event(monitoring: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
        "rundown": [{"speaker": "host", "duration": "1m"}],
        "destinations": [{"name": "m", "url": "hls"}],
    }
    if monitoring is not None:
        data["monitoring"] = monitoring
    return data


def parse(data: dict[str, Any], base_dir: Path = Path("/srv")) -> MonitoringSpec:
    return parse_event(data, base_dir=base_dir, env={"HOOK": HOOK}, check_files=False).monitoring


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(EventError) as info:
        parse_event(data, base_dir=Path("/srv"), env={"HOOK": HOOK}, check_files=False)
    assert "SECRETPART1" not in str(info.value)
    return {p.key: p.message for p in info.value.problems}


def test_absent_means_no_probes() -> None:
    spec = parse(event(None))
    assert spec == MonitoringSpec()
    assert not spec.probes and spec.webhook is None and spec.agents == ()


def test_a_full_table() -> None:
    spec = parse(
        event(
            {
                "probes": True,
                "city": "Lahore",
                "isp": "PTCL",
                "vantage": "hq",
                "targets": "targets.toml",
                "control_resolver": "9.9.9.9:5353",
                "probe_seconds": 15,
                "agents": ["http://probe-karachi:9109/metrics"],
                "webhook": "${HOOK}",
                "sample_seconds": 5,
                "outage_for_seconds": 30,
                "outage_clear_seconds": 60,
            }
        )
    )
    assert (spec.vantage, spec.city, spec.isp) == ("hq", "Lahore", "PTCL")
    assert spec.targets == Path("/srv/targets.toml")
    assert spec.control_resolver == ("9.9.9.9", 5353)
    assert spec.webhook is not None and spec.webhook.reveal() == HOOK
    assert "SECRETPART1" not in repr(spec)
    assert (spec.probe_seconds, spec.sample_seconds) == (15.0, 5.0)
    assert parse(event({"control_resolver": ""})).control_resolver is None


def test_every_problem_names_its_key() -> None:
    found = problems(
        event(
            {
                "probes": True,
                "city": "Lahore/Punjab",
                "probe_seconds": 1,
                "agents": ["probe-karachi:9109"],
                "webhook": "slack",
                "control_resolver": "dns.google",
                "sample_second": 5,
            }
        )
    )
    assert set(found) == {
        "monitoring.city",
        "monitoring.isp",
        "monitoring.probe_seconds",
        "monitoring.agents[0]",
        "monitoring.webhook",
        "monitoring.control_resolver",
        "monitoring.sample_second",
    }
    assert "is missing" in found["monitoring.isp"]
    assert "did you mean 'sample_seconds'" in found["monitoring.sample_second"]
    assert "${JALSA_WEBHOOK}" in found["monitoring.webhook"]


def test_the_targets_file_must_exist(tmp_path: Path) -> None:
    data = event({"probes": True, "city": "c", "isp": "i", "targets": "missing.toml"})
    with pytest.raises(EventError) as info:
        parse_event(data, base_dir=tmp_path, env={}, check_files=True)
    assert [p.key for p in info.value.problems] == ["monitoring.targets"]
