"""The event file's relay options: YouTube's backup ingest and a CA file for RTMPS."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator.event.destination_spec import (
    YOUTUBE_BACKUP_INGEST,
    DestinationSpec,
    parse_destinations,
)
from orchestrator.event.problems import EventError, Problems
from orchestrator.event.reader import Table
from relays.destination import CONTRIBUTION_RETRY, Destination, retry_delay
from relays.output import tls_context
from relays.rtmp.session import rtmp_target

KEY = "yt-key-abcd-1234"


def parse(*tables: dict[str, object], base: Path = Path("/")) -> tuple[DestinationSpec, ...]:
    problems = Problems()
    specs = parse_destinations(
        [Table(t, f"destinations[{i}]", problems) for i, t in enumerate(tables)], base
    )
    problems.raise_if_any()
    return specs


def test_youtube_backup_adds_a_second_destination_with_the_same_key() -> None:
    primary, backup = parse({"name": "yt", "platform": "youtube", "key": KEY, "backup": True})
    assert (backup.name, backup.url, backup.key) == (
        "yt-backup",
        YOUTUBE_BACKUP_INGEST,
        primary.key,
    )
    assert backup.target_url() == f"rtmps://b.rtmps.youtube.com:443/live2/{KEY}?backup=1"
    assert backup.safe_url() == "rtmps://b.rtmps.youtube.com:443/live2/***?backup=1"
    target = rtmp_target(backup.url, KEY)
    assert (target.app, target.stream) == ("live2?backup=1", KEY)
    assert (target.host, target.port, target.tls) == ("b.rtmps.youtube.com", 443, True)
    assert target.tc_url == "rtmps://b.rtmps.youtube.com:443/live2?backup=1"
    assert primary.cleartext_warning() is None and backup.cleartext_warning() is None


@pytest.mark.parametrize(
    ("tables", "key", "message"),
    [
        ([{"name": "f", "platform": "facebook", "key": KEY, "backup": True}], "backup", "YouTube"),
        ([{"name": "y", "platform": "youtube", "key": KEY, "backup": "y"}], "backup", "true or"),
        (
            [
                {"name": "yt", "platform": "youtube", "key": KEY, "backup": True},
                {"name": "yt-backup", "url": "out/x.mkv"},
            ],
            "name",
            "already used",
        ),
    ],
)  # fmt: skip
def test_backup_problems_name_their_key(
    tables: list[dict[str, object]], key: str, message: str
) -> None:
    with pytest.raises(EventError) as caught:
        parse(*tables)
    assert any(p.key.endswith(key) and message in p.message for p in caught.value.problems)


def test_ca_file_is_read_relative_to_the_event_file(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not used here")
    (spec,) = parse(
        {"name": "x", "url": "rtmps://ingest.example/app", "key": KEY, "ca_file": "ca.pem"},
        base=tmp_path,
    )
    assert spec.ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(EventError, match="does not exist"):
        parse(
            {"name": "x", "url": "rtmps://h/app", "key": KEY, "ca_file": "nope.pem"}, base=tmp_path
        )
    with pytest.raises(EventError, match="only applies to an rtmps"):
        parse({"name": "x", "url": "rtmp://h/app", "key": KEY, "ca_file": "ca.pem"}, base=tmp_path)


def test_tls_verification_is_on_unless_turned_off() -> None:
    strict = DestinationSpec("x", "custom", "rtmp", "rtmps://h/app")
    assert tls_context(strict).check_hostname
    loose = DestinationSpec("x", "custom", "rtmp", "rtmps://h/app", verify_tls=False)
    assert not tls_context(loose).check_hostname


def test_a_destination_warns_once_at_start_when_its_key_would_go_in_cleartext(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (cleartext,) = parse({"name": "plain", "url": "rtmp://ingest.example/app", "key": KEY})
    (secure,) = parse({"name": "yt", "platform": "youtube", "key": KEY})
    for spec in (cleartext, secure):
        destination = Destination(spec, cast(Any, (None, None)), tmp_path, pump=cast(Any, None))
        destination._thread = threading.Thread(target=lambda: None)  # connect nowhere
        with caplog.at_level("WARNING", logger="relays.destination"):
            destination.start()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "plain" in warnings[0] and "cleartext" in warnings[0]
    assert KEY not in warnings[0] and "rtmp://ingest.example/app/***" in warnings[0]


def test_a_cut_contribution_is_tried_again_within_a_second_a_refused_one_backs_off() -> None:
    """The studio's link to its edge retries within CONTRIBUTION_RETRY all through a cut
    (the program back about a second after the uplink); a platform, and a contribution
    the edge refused (a wrong key), wait the backoff's delay."""
    edge = DestinationSpec(name="e", platform="custom", kind="edge", url="https://vm/contribute")
    platform = DestinationSpec(name="yt", platform="youtube", kind="rtmp", url="rtmp://h/a")
    assert retry_delay(edge, refused=False, backoff_delay=17.0) == CONTRIBUTION_RETRY == 1.0
    assert retry_delay(edge, refused=False, backoff_delay=0.3) == 0.3
    assert retry_delay(edge, refused=True, backoff_delay=17.0) == 17.0
    assert retry_delay(platform, refused=False, backoff_delay=17.0) == 17.0
