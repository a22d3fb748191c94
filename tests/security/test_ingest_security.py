"""Ingest, uploads and destinations under attack (issue 12): WHIP offers that aim jalsa's
STUN at other hosts, upload chunks to made-up ids, secrets in pulled-source URLs, stream
keys in cleartext, unauthenticated probe agents."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from event_toml import event_toml, slot, speaker
from jalsa_run import JalsaRun, free_port
from waiting import wait_for

from orchestrator.event.secret import redact, sanitize_source_url, source_secrets
from orchestrator.ingest.media_source import MediaSource

SECRETS = ("SECRETPATH", "APIKEY1234", "SESSION987", "STREAMKEY55", "PASSWORD42")


# --- item 8: pulled-source URLs ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://cdn.example/live/SECRETPATH/index.m3u8",
            "https://cdn.example/live/***/***",
        ),
        (
            "https://cdn.example:8443/hls/stream.m3u8?apikey=APIKEY1234&session=SESSION987",
            "https://cdn.example:8443/hls/***?apikey=***&session=***",
        ),
        ("rtmp://media.example/app/STREAMKEY55", "rtmp://media.example/app/***"),
        ("rtmp://media.example:1936/app/STREAMKEY55?x", "rtmp://media.example:1936/app/***?***"),
        ("rtsp://cam:PASSWORD42@10.0.0.2/stream", "rtsp://cam:***@10.0.0.2/stream"),
        ("http://h.example/a/b#SECRETPATH", "http://h.example/a/***#***"),
        ("/srv/clips/host.mp4", "/srv/clips/host.mp4"),
    ],
)
def test_a_pulled_url_is_shown_up_to_its_app(url: str, shown: str) -> None:
    assert sanitize_source_url(url) == shown


def test_an_error_quoting_parts_of_a_pulled_url_shows_none_of_them() -> None:
    url = "https://cdn.example/live/SECRETPATH/index.m3u8?apikey=APIKEY1234"
    message = (
        "HTTP error 403 for 'https://cdn.example/live/SECRETPATH/seg-1.ts?apikey=APIKEY1234' "
        "(path SECRETPATH/index.m3u8, key APIKEY1234)"
    )
    text = redact(message, source_secrets(url), sanitize=sanitize_source_url)
    assert "SECRETPATH" not in text and "APIKEY1234" not in text
    assert "https://cdn.example/live/***" in text


def test_a_source_snapshot_and_its_log_mask_the_url(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nobody listens: the pull fails at once
    url = f"http://127.0.0.1:{port}/live/SECRETPATH/index.m3u8?apikey=APIKEY1234"
    source = MediaSource("pulled", url, width=320, height=180)
    with caplog.at_level(logging.WARNING, logger="orchestrator.ingest.media_source"):
        source.start()
        try:
            wait_for(lambda: source.snapshot().last_error, 20, "the pull to fail")
        finally:
            source.stop()
            source.join(5)
    snapshot = source.snapshot()
    shown = f"{snapshot.location} {snapshot.last_error} {caplog.text}"
    assert snapshot.location == f"http://127.0.0.1:{port}/live/***/***?apikey=***"
    assert "SECRETPATH" not in shown and "APIKEY1234" not in shown


@pytest.mark.media
def test_api_state_and_the_log_of_a_run_show_no_secret_of_a_pulled_source(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/live/SECRETPATH/index.m3u8?apikey=APIKEY1234&session=SESSION987"
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            speakers=[speaker("pulled", source=url), speaker("host", source="testsrc")],
            rundown=[slot("pulled", "10m"), slot("host", "1m")],
            destinations=[{"name": "mkv", "url": "out/show.mkv"}],
        )
    )
    with JalsaRun(event, tmp_path / "state") as run:
        run.wait_ready()

        def state_with_error() -> str | None:
            status, body = run.http("/api/state", run.token())
            text = body.decode()
            return text if status == 200 and "Error" in text and "pulled" in text else None

        state = run.wait_for(state_with_error, 40, "the pulled source's error in /api/state")
        run.wait_for(lambda: "source pulled" in run.logs, 20, "the source's log line")
        run.stop()
    logs = run.logs
    for secret in ("SECRETPATH", "APIKEY1234", "SESSION987"):
        assert secret not in state, state
        assert secret not in logs, logs
    assert f"http://127.0.0.1:{port}/live/***" in json.dumps(json.loads(state))
