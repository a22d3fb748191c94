"""deploy/: Prometheus, Alertmanager and Grafana configs, judged by the real tools.

promtool and amtool (Debian packages ``prometheus`` and ``prometheus-alertmanager``) must
be installed: these tests fail, not skip, without them.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import wait_for

from monitoring.outage import Check, Outage, ProbeResult, ThroughputSample, classify

ROOT: Final = Path(__file__).resolve().parents[2]
PROMETHEUS: Final = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG: Final = PROMETHEUS / "prometheus.yml"
ALERTS: Final = PROMETHEUS / "alerts.yml"
ALERTS_TEST: Final = PROMETHEUS / "alerts_test.yml"
ALERTMANAGER_CONFIG: Final = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DASHBOARD: Final = ROOT / "deploy" / "grafana" / "jalsa-dashboard.json"

# The contract (docs/architecture.md, "Contracts": the alert names and the metric names).
CONTRACT_ALERTS: Final = frozenset(
    {
        "ProgramDown",
        "RelayDown",
        "SpeakerDisconnected",
        "PlatformUnreachable",
        "NationalDisruption",
        "PlatformThrottled",
        "UplinkDown",
        "ListenerCollapse",
    }
)
CONTRACT_METRICS: Final = frozenset(
    {
        "jalsa_program_up",
        "jalsa_on_air",
        "jalsa_speaker_connected",
        "jalsa_speaker_bitrate_bps",
        "jalsa_speaker_packet_loss_ratio",
        "jalsa_speaker_rtt_seconds",
        "jalsa_relay_up",
        "jalsa_relay_sent_bytes_total",
        "jalsa_relay_reconnects_total",
        "jalsa_relay_dropped_packets_total",
        "jalsa_relay_lag_seconds",
        "jalsa_listeners",
        "jalsa_probe_success",
        "jalsa_probe_duration_seconds",
        "jalsa_probe_throughput_bytes_per_second",
        "jalsa_outage",
    }
)
# Metrics jalsa exports beyond the contract's table (documented in the README).
EXTENSION_METRICS: Final = frozenset(
    {
        "jalsa_relay_state",
        "jalsa_program_media_seconds_total",
        "jalsa_program_late_resets_total",
        "jalsa_event_end_timestamp_seconds",
        "jalsa_program_audio_level_dbfs",
        "jalsa_speaker_audio_level_dbfs",
        "jalsa_uplink_throughput_bps",
        "jalsa_uplink_saturated",
        "jalsa_uplink_lagging_destinations",
        "jalsa_agent_rounds_total",
        "jalsa_agent_rejected_total",
        "jalsa_agent_last_round_timestamp_seconds",
        "jalsa_agent_last_upload_timestamp_seconds",
        "jalsa_agent_clock_skew_seconds",
        "jalsa_agent_backlog_rounds",
        "jalsa_agent_info",
    }
)
# Alerts beyond the contract's list (documented in the README).
EXTENSION_ALERTS: Final = frozenset({"ProgramLate", "ProgramSilent", "UplinkSaturated"})
# Series Prometheus makes itself, which the alert rules may read.
PROMETHEUS_SERIES: Final = frozenset({"up", "ALERTS"})


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: prometheus / prometheus-alertmanager)")
    return path


def run(*args: str) -> str:
    """Run a tool from the repository root; fail with its output unless it exits 0."""
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr


def load_yaml(path: Path) -> Any:
    # PyYAML, imported by name: its type stubs (types-PyYAML) are not installed.
    yaml = importlib.import_module("yaml")
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def recording_rules() -> set[str]:
    groups = load_yaml(ALERTS)["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


# --- the real tools ----------------------------------------------------------------------


def test_promtool_check_config() -> None:
    # Also checks the rule files, relative to prometheus.yml.
    out = run(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert "1 rule files found" in out


def test_promtool_check_rules() -> None:
    run(tool("promtool"), "check", "rules", str(ALERTS))


def test_promtool_test_rules() -> None:
    run(tool("promtool"), "test", "rules", str(ALERTS_TEST))


def test_amtool_check_config() -> None:
    run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=ProgramDown"], "operator-pager"),
        (["severity=warning", "alertname=UplinkDown"], "ops-channel"),
        (["alertname=Unlabelled"], "ops-channel"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    out = run(
        tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels
    )
    assert out.split()[0] == receiver


# --- the alert contract ------------------------------------------------------------------


def test_alert_names_are_the_contract_and_the_documented_extensions() -> None:
    assert {rule["alert"] for rule in alert_rules()} == CONTRACT_ALERTS | EXTENSION_ALERTS


def test_every_alert_has_for_severity_and_annotations() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert "for" in rule, name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name


def test_alert_rules_read_only_contract_metrics_and_recording_rules() -> None:
    known = CONTRACT_METRICS | EXTENSION_METRICS | recording_rules() | PROMETHEUS_SERIES
    groups = load_yaml(ALERTS)["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


@pytest.mark.parametrize("alertname", sorted(CONTRACT_ALERTS | EXTENSION_ALERTS))
def test_every_alert_is_tested_firing_and_quiet(alertname: str) -> None:
    cases = [
        case
        for test in load_yaml(ALERTS_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alertname
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{alertname} never fires in a test"
    assert any("exp_alerts" in case and case["exp_alerts"] == [] for case in cases), (
        f"{alertname} is never tested quiet (exp_alerts: [])"
    )


# --- the classifier and the rules agree ---------------------------------------------------

POOL: Final = (
    ("lahore-1", "lahore", "ptcl"),
    ("lahore-2", "lahore", "jazz"),
    ("karachi-1", "karachi", "stormfiber"),
    ("islamabad-1", "islamabad", "nayatel"),
    ("peshawar-1", "peshawar", "telenor"),
)
ISP: Final = {name: isp for name, _, isp in POOL}


PLATFORMS: Final = ("youtube", "x", "facebook")
SLOW: Final = (500, 8_000, 20_000, 31_000, 40_000)
SPEEDS: Final = (*SLOW, 100_000, 1_000_000, 10_000_000)
mostly = st.sampled_from((True, True, True, False))
rarely = st.sampled_from((False, False, False, True))


@st.composite
def rounds(draw: st.DrawFn) -> tuple[list[ProbeResult], list[ThroughputSample]]:
    """One probe round from some vantages, each (vantage, platform, check) once.

    Platforms are blocked or throttled per city or everywhere, with flaky checks, lost
    uplinks and missing controls on top, so that every kind of outage turns up."""
    members = draw(st.lists(st.sampled_from(POOL), min_size=2, unique=True))
    blocked = {(c, p): draw(st.booleans()) for _, c, _ in members for p in PLATFORMS}
    throttled = {p: draw(rarely) for p in PLATFORMS}
    results: list[ProbeResult] = []
    samples: list[ThroughputSample] = []
    for name, city, isp in members:
        uplink = draw(st.sampled_from(("up", "up", "up", "up", "down", "no control")))
        targets = ["control"] if uplink != "no control" else []
        targets += [p for p in PLATFORMS if draw(mostly)]
        for platform in targets:
            ok = uplink == "up" if platform == "control" else not blocked[city, platform]
            checks: list[Check] = draw(
                st.lists(st.sampled_from(("dns", "tls", "http")), min_size=1, unique=True)
            )
            for check in checks:
                flaky = draw(rarely)
                results.append(ProbeResult(name, city, isp, platform, check, ok != flaky, 0.0))
        for platform in ("control", *PLATFORMS):
            if draw(mostly):
                slow = platform != "control" and throttled[platform]
                bps = float(draw(st.sampled_from(SLOW if slow else SPEEDS)))
                samples.append(ThroughputSample(name, city, isp, platform, bps, 0.0))
    return results, samples


def alert_labels(outage: Outage) -> dict[str, str]:
    """The labels of the alert alerts.yml raises for what the classifier judges."""
    alertname, severity = {
        "platform": ("PlatformUnreachable", "warning"),
        "national": ("NationalDisruption", "critical"),
        "throttling": ("PlatformThrottled", "warning"),
        "uplink": ("UplinkDown", "warning"),
    }[outage.scope]
    labels = {
        "alertname": alertname,
        "alertstate": "firing",
        "severity": severity,
        "scope": outage.scope,
        "platform": outage.platform,
    }
    if outage.scope == "uplink":
        (vantage,) = outage.vantages
        (city,) = outage.cities
        labels |= {"vantage": vantage, "city": city, "isp": ISP[vantage]}
    return labels


def promql_labels(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenario=rounds())
def test_alert_rules_raise_what_the_classifier_judges(
    scenario: tuple[list[ProbeResult], list[ThroughputSample]], tmp_path: Path
) -> None:
    """Held for 2 minutes, a probe round fires exactly the alerts matching the outages
    monitoring.outage.classify finds in it."""
    results, samples = scenario
    expected = [
        {"labels": promql_labels("ALERTS", alert_labels(o)), "value": 1}
        for o in classify(results, samples, now=0.0)
    ]
    series = [
        {
            "series": promql_labels(
                "jalsa_probe_success",
                {"vantage": r.vantage, "city": r.city, "isp": r.isp}
                | {"platform": r.platform, "check": r.check},
            ),
            "values": f"{int(r.success)}x3",
        }
        for r in results
    ] + [
        {
            "series": promql_labels(
                "jalsa_probe_throughput_bytes_per_second",
                {"vantage": s.vantage, "city": s.city, "isp": s.isp, "platform": s.platform},
            ),
            "values": f"{int(s.bytes_per_second)}x3",
        }
        for s in samples
    ]
    unit_test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": "2m",
                        "exp_samples": expected,
                    }
                ],
            }
        ],
    }
    path = tmp_path / "agreement_test.yml"
    path.write_text(json.dumps(unit_test, indent=1))  # JSON is YAML
    run(tool("promtool"), "test", "rules", str(path))


# --- Alertmanager inhibitions, on a real Alertmanager ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or tool("alertmanager")
    url = f"http://127.0.0.1:{free_port()}"
    log_path = tmp_path / "alertmanager.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"alertmanager exited:\n{log_path.read_text()}")
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return response.status == 200

    try:
        wait_for(ready, 15, "alertmanager to start", ignore=(OSError,), detail=log_path.read_text)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_alertmanager_inhibitions(alertmanager: str) -> None:
    alerts = [
        {"alertname": "ProgramDown", "instance": "jalsa-a:9108", "severity": "critical"},
        {"alertname": "RelayDown", "instance": "jalsa-a:9108", "destination": "yt"},
        {"alertname": "RelayDown", "instance": "jalsa-b:9108", "destination": "yt"},
        {"alertname": "NationalDisruption", "platform": "*", "scope": "national"},
        {"alertname": "PlatformUnreachable", "platform": "youtube", "scope": "platform"},
        {"alertname": "UplinkDown", "vantage": "lahore-1", "city": "lahore", "platform": "control"},
        {"alertname": "PlatformThrottled", "platform": "x", "scope": "throttling"},
        {"alertname": "PlatformThrottled", "platform": "facebook", "vantage": "lahore-1"},
    ]
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    def key(labels: dict[str, str]) -> tuple[str, str]:
        return labels["alertname"], labels.get("instance") or labels.get("platform") or ""

    expected = {
        ("ProgramDown", "jalsa-a:9108"): "active",
        # ProgramDown mutes the relays of its own instance only.
        ("RelayDown", "jalsa-a:9108"): "suppressed",
        ("RelayDown", "jalsa-b:9108"): "active",
        ("NationalDisruption", "*"): "active",
        ("PlatformUnreachable", "youtube"): "suppressed",
        # A "*" disruption is no shutdown: the uplink alert stays.
        ("UplinkDown", "control"): "active",
        # An uplink-down vantage mutes only alerts carrying its vantage label.
        ("PlatformThrottled", "x"): "active",
        ("PlatformThrottled", "facebook"): "suppressed",
    }

    def states() -> dict[tuple[str, str], str]:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
            return {key(a["labels"]): a["status"]["state"] for a in json.load(response)}

    seen = wait_for(lambda: (now := states()) == expected and now, 10, "the inhibitions")
    assert seen == expected


# --- the Grafana dashboard ---------------------------------------------------------------

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "atan2", "inf", "nan"}
)
_LABEL_VALUES = re.compile(r"label_values\(\s*(.+?)\s*,\s*\w+\s*\)")


def metric_names(expr: str) -> set[str]:
    """The metric (and recording rule) names a PromQL expression reads."""
    expr = _LABEL_VALUES.sub(r"\1", expr)  # Grafana's label_values(metric, label)
    expr = _STRINGS.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = _GROUPING.sub(" ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        word, call = match.groups()
        if not call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def test_metric_names_finds_every_metric_and_nothing_else() -> None:
    expr = (
        'sum by (platform) (rate(jalsa_relay_sent_bytes_total{platform=~"$platform"}'
        "[$__rate_interval])) * 8e3 > bool 0 and on (city) group_left jalsa:city_probe_ok:max"
        " unless up offset 5m"
    )
    assert metric_names(expr) == {"jalsa_relay_sent_bytes_total", "jalsa:city_probe_ok:max", "up"}
    assert metric_names("label_values(jalsa_listeners, platform)") == {"jalsa_listeners"}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["query"]["query"])
    return exprs


def test_dashboard_loads() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    assert len(dashboard_exprs()) >= 20


def test_dashboard_reads_only_documented_metrics_and_recording_rules() -> None:
    known = CONTRACT_METRICS | EXTENSION_METRICS | recording_rules()
    read: set[str] = set()
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= known, f"{expr!r} reads {names - known}"
        read |= names
    # Every metric of the contract is on the dashboard.
    assert read >= CONTRACT_METRICS


def test_dashboard_exprs_are_valid_promql(tmp_path: Path) -> None:
    grafana_variables = {
        "$__rate_interval": "1m",
        "$__interval": "15s",
        "$__range": "1h",
        "$platform": ".*",
        "$city": ".*",
    }
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        if expr.startswith("label_values("):
            continue
        for variable, value in grafana_variables.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:panel_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    run(tool("promtool"), "check", "rules", str(path))


def test_grafana_provisioning_points_at_prometheus() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"].endswith(":9090")
    (provider,) = load_yaml(provisioning / "dashboards" / "jalsa.yml")["providers"]
    assert provider["type"] == "file"
