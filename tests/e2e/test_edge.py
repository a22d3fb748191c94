"""A cloud edge for real: a ``jalsa run`` studio sends ONE contribution (FLV in an
HTTPS PUT) to a ``jalsa edge`` process, which fans it out to two nginx-rtmp "platforms".

One run (module-scoped): ffprobe judges what the platforms got through the edge; a
forged and a missing key are refused (401) and logged without the key; the edge is
killed (-9) and started again on the same port: the studio reconnects by itself (with
backoff) and the platforms get the program again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edge_process import EDGE_KEY, STREAMS, EdgeProcess, edge_file, studio_file
from jalsa_run import JalsaRun, free_port
from media import Probe, decode_errors, ffprobe
from nginx_rtmp import NginxRtmp
from playwright.sync_api import Browser, expect
from test_console import confirm, open_console
from test_relay_control import call, state_of, wait_state
from tls_terminator import Certificates, make_certificates
from waiting import wait_for

pytestmark = [pytest.mark.media, pytest.mark.timeout(240)]

FORGED = "forged-contribution-key-000000"
ADDED = "edge-tw-77d0"  # the stream key of a destination the operator adds via the edge
CLICKED = "edge-tw2-5e1a"  # ... and of one the operator adds in the console
RUN_SECONDS = 20.0


def contribute(port: int, ca: Path, key: str | None) -> int:
    """A PUT to the edge's contribution route as a stranger would try it: the status."""
    import ssl

    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/contribute", data=b"FLV\x01", method="PUT"
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()  # its socket, else closed by the GC in another test
        return error.code


@dataclass
class Run:
    first: dict[str, Probe]
    first_errors: dict[str, str]
    first_wall: float
    second: dict[str, Probe]
    refused: tuple[int, int]
    edge_logs: str
    studio_logs: str
    reconnects: float
    edge_metrics: str
    studio_metrics: str
    studio_state: dict[str, Any]
    steered: dict[str, Any]
    clicked: dict[str, Any]


def _keep(nginx: NginxRtmp, folder: Path) -> dict[str, Path]:
    folder.mkdir()
    return {s: Path(shutil.copy(nginx.recording(s), folder / f"{s}.flv")) for s in STREAMS}


@pytest.fixture(scope="module")
def finished(
    nginx: NginxRtmp, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("edge")
    certs = make_certificates(work / "certs")
    edge_port, edge_metrics = free_port(), free_port()
    edge_toml = edge_file(work / "edge.toml", nginx, certs)
    studio = studio_file(work / "studio.toml", nginx, certs, edge_port)
    with EdgeProcess(edge_toml, work / "edge-state", edge_port, edge_metrics) as edge:
        wait_for(edge.metrics, 30, "the edge to serve", ignore=(OSError,))
        # The studio starts once the edge serves: its first contribution then carries the
        # program's very first packets (the AAC priming frame at -21 ms among them).
        with JalsaRun(studio, work / "studio-state", env={"EDGE_KEY": EDGE_KEY}) as run:
            yield from _run(edge, run, nginx, browser, work, certs, edge_port)


def _run(
    edge: EdgeProcess,
    run: JalsaRun,
    nginx: NginxRtmp,
    browser: Browser,
    work: Path,
    certs: Certificates,
    edge_port: int,
) -> Iterator[Run]:
    run.wait_ready()
    for stream in STREAMS:
        nginx.wait_published(stream, timeout=30)
    published = time.monotonic()
    refused = (contribute(edge_port, certs.ca, FORGED), contribute(edge_port, certs.ca, None))
    run.media_flows(RUN_SECONDS)
    edge_metrics_text = edge.metrics()
    studio_metrics = run.metrics_text()
    studio_state = json.loads(run.http("/api/state", token=run.token())[1])
    steered = _steer(run, edge, nginx)
    clicked = _add_in_the_console(run, edge, nginx, browser, work)
    edge.kill()
    killed = time.monotonic()
    nginx.wait_recorded(*STREAMS, timeout=20)
    first = _keep(nginx, work / "first")
    label = {"destination": "test-edge", "platform": "custom"}
    run.wait_for(lambda: run.metric("jalsa_edge_up", edge="test-edge") == 0, 30, "edge down")
    run.wait_for(
        lambda: (run.metric("jalsa_relay_reconnects_total", **label) or 0) >= 2,
        60,
        "the studio to retry the killed edge",
    )
    for stream in STREAMS:
        (nginx.published_dir / stream).unlink()
    edge.start()
    for stream in STREAMS:
        run.wait_for(lambda s=stream: (nginx.published_dir / s).exists(), 60, "back")
    reconnects = run.metric("jalsa_relay_reconnects_total", **label) or 0
    run.media_flows(6.0)
    run.stop()
    wait_for(lambda: edge.process is not None and edge.process.poll() is None, 5, "edge up")
    assert edge.stop() == 0, edge.logs[-3000:]
    nginx.wait_recorded(*STREAMS, timeout=20)
    second = _keep(nginx, work / "second")
    yield Run(
        first={s: ffprobe(p) for s, p in first.items()},
        first_errors={s: decode_errors(p) for s, p in first.items()},
        first_wall=killed - published,
        second={s: ffprobe(p) for s, p in second.items()},
        refused=refused,
        edge_logs=edge.logs,
        studio_logs=run.logs,
        reconnects=reconnects,
        edge_metrics=edge_metrics_text,
        studio_metrics=studio_metrics,
        studio_state=studio_state,
        steered=steered,
        clicked=clicked,
    )


def _steer(run: JalsaRun, edge: EdgeProcess, nginx: NginxRtmp) -> dict[str, Any]:
    """The operator adds, pauses, resumes and removes a destination of the edge's from
    the studio's API, as the console does; what each step answered and showed."""
    rec = f"rtmp://127.0.0.1:{nginx.port}/rec"
    table = {"name": "tw", "platform": "twitch", "url": rec, "key": ADDED, "via": "test-edge"}
    steps: dict[str, Any] = {"add": call(run, "POST", "/api/destinations", table)}
    steps["again"] = call(run, "POST", "/api/destinations", table)[0]
    nginx.wait_published(ADDED, timeout=30)
    wait_state(run, "tw", "live", 30)
    steps["pause"] = call(run, "POST", "/api/destinations/tw/pause")
    wait_state(run, "tw", "paused")
    paused = {"destination": "tw", "platform": "twitch", "state": "paused"}
    wait_for(lambda: edge.metric("jalsa_relay_state", **paused) == 1, 10, "paused at the edge")
    steps["resume"] = call(run, "POST", "/api/destinations/tw/resume")
    wait_state(run, "tw", "live", 30)
    steps["remove"] = call(run, "DELETE", "/api/destinations/tw")
    run.wait_for(lambda: state_of(run, "tw") is None, 10, "tw gone from the studio")
    steps["edge_after"] = edge.metric("jalsa_relay_up", destination="tw", platform="twitch")
    return steps


def _add_in_the_console(
    run: JalsaRun, edge: EdgeProcess, nginx: NginxRtmp, browser: Browser, work: Path
) -> dict[str, Any]:
    """The operator adds a destination in the console's form, sent by the edge, sees its
    card, and removes it there; the screenshot goes to $JALSA_SCREENSHOTS (docs/)."""
    page = open_console(run, browser)
    try:
        page.locator("#add-destination summary").click()
        form = page.locator("#destination-form")
        sent_by = form.get_by_label("Sent by")
        choices = sent_by.locator("option").all_text_contents()
        form.get_by_label("Name").fill("tw2")
        form.get_by_label("Platform").select_option("twitch")
        form.get_by_label("URL").fill(f"rtmp://127.0.0.1:{nginx.port}/rec")
        form.get_by_label("Stream key").fill(CLICKED)
        sent_by.select_option(label="the edge test-edge")
        shots = Path(os.environ.get("JALSA_SCREENSHOTS", work))
        page.locator("#destinations-panel").screenshot(path=str(shots / "console-edge.png"))
        form.get_by_role("button", name="Add destination").click()
        nginx.wait_published(CLICKED, timeout=30)
        card = page.locator('#destinations li[data-key="tw2"]')
        expect(card.locator(".pill")).to_have_text("live", timeout=30_000)
        shown = card.inner_text()
        at_edge = edge.metric("jalsa_relay_up", destination="tw2", platform="twitch")
        page.get_by_role("button", name="Remove tw2").click()
        confirm(page, "Remove")
        expect(card).to_have_count(0, timeout=10_000)
        gone = edge.metric("jalsa_relay_up", destination="tw2", platform="twitch")
    finally:
        page.context.close()
    return {"choices": choices, "card": shown, "at_edge": at_edge, "gone": gone}


def test_platforms_get_the_program_through_the_edge(finished: Run) -> None:
    for stream, probe in finished.first.items():
        assert probe.video_codec == "h264" and probe.audio_codec == "aac", stream
        assert (probe.width, probe.height) == (320, 180)
        assert not finished.first_errors[stream], finished.first_errors[stream][:2000]
        ratio = probe.video_seconds / finished.first_wall
        print(f"{stream}: {probe.video_seconds:.2f} s of media in {finished.first_wall:.2f} s")
        assert ratio >= 0.97, (stream, probe.video_seconds, finished.first_wall)
        assert probe.largest_video_gap < 0.5, stream


def test_a_forged_or_missing_key_is_refused_and_not_logged(finished: Run) -> None:
    assert finished.refused == (401, 401)
    assert finished.edge_logs.count("refused: wrong or missing key") >= 2
    for logs in (finished.edge_logs, finished.studio_logs):
        assert FORGED not in logs and EDGE_KEY not in logs and ADDED not in logs
    assert 'jalsa_edge_contributions_refused_total{edge="test-edge"} 2.0' in finished.edge_metrics


def test_the_studio_reconnects_after_the_edge_restarts(finished: Run) -> None:
    assert finished.reconnects >= 2
    for stream, probe in finished.second.items():
        assert probe.video_codec == "h264" and probe.video_seconds >= 4.0, stream


def test_the_studio_steers_the_edges_destinations(finished: Run) -> None:
    """Add, pause, resume, remove through the studio's API: each answered as for a
    destination of the studio's own (marked via the edge), and the edge obeyed."""
    steps = finished.steered
    status, added = steps["add"]
    assert status == 201 and added[0]["name"] == "tw" and added[0]["via"] == "test-edge"
    assert ADDED not in json.dumps(added)  # the key went to the edge, not back
    assert steps["again"] == 409  # the name is taken
    assert steps["pause"][0] == 200 and steps["pause"][1]["via"] == "test-edge"
    assert steps["resume"][0] == 200  # (the states were waited for: paused, then live)
    assert steps["remove"] == (200, {"removed": "tw", "closed_cleanly": True})
    assert steps["edge_after"] is None  # gone from the edge's /metrics too


def test_the_console_adds_and_removes_a_destination_sent_by_the_edge(finished: Run) -> None:
    clicked = finished.clicked
    assert clicked["choices"] == ["this machine (direct)", "the edge test-edge"]
    assert "tw2 (twitch)" in clicked["card"] and "via test-edge" in clicked["card"]
    assert CLICKED not in clicked["card"]
    assert clicked["at_edge"] == 1 and clicked["gone"] is None
    for logs in (finished.edge_logs, finished.studio_logs):
        assert CLICKED not in logs


def test_the_edge_exports_its_destinations(finished: Run) -> None:
    for name in ("yt", "fb"):
        assert f'jalsa_relay_up{{destination="{name}",platform="custom"}} 1.0' in (
            finished.edge_metrics
        )
    assert 'jalsa_edge_contribution_up{edge="test-edge"} 1.0' in finished.edge_metrics


def test_the_studio_shows_the_contribution_link(finished: Run) -> None:
    """/api/state and the jalsa_edge_* family: the link's state and lag; the studio
    sends the local recording and the link, and shows the edge's destinations via it."""
    via = {d["name"]: d["via"] for d in finished.studio_state["destinations"]}
    assert via == {"local": None, "test-edge": None, "yt": "test-edge", "fb": "test-edge"}
    for name in ("yt", "fb"):
        shown = next(d for d in finished.studio_state["destinations"] if d["name"] == name)
        assert shown["state"] == "live" and shown["sent_bytes"] > 0, shown
        assert f'jalsa_relay_up{{destination="{name}",platform="custom"}} 1.0' in (
            finished.studio_metrics
        )
    link = next(d for d in finished.studio_state["destinations"] if d["name"] == "test-edge")
    assert link["state"] == "live" and link["lag_seconds"] < 2.0, link
    metrics = finished.studio_metrics
    assert 'jalsa_edge_up{edge="test-edge"} 1.0' in metrics
    assert 'jalsa_edge_lag_seconds{edge="test-edge"}' in metrics
    sent = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('jalsa_edge_sent_bytes_total{edge="test-edge"}')
    )
    received = next(
        float(line.split()[-1])
        for line in finished.edge_metrics.splitlines()
        if line.startswith('jalsa_edge_contribution_received_bytes_total{edge="test-edge"}')
    )
    print(f"contribution: studio sent {sent:.0f} B, edge received {received:.0f} B")
    assert sent > 0 and received > 0
