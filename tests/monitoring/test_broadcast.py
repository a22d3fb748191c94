"""The broadcast verdict: YouTube's documented answers judged, and a push into a broadcast
that is not live logged once per change (the poller side is in test_listeners.py, the
whole path to /api/state in tests/e2e/test_live_check.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from monitoring.broadcast import Broadcasts, Verdict, unreachable, youtube_verdict

VIDEO = "AbCdEfGhIj0"


def video(content: str, **details: str) -> dict[str, Any]:
    item = {"id": VIDEO, "snippet": {"liveBroadcastContent": content}}
    item["liveStreamingDetails"] = {"actualStartTime": "2026-12-17T20:30:00Z", **details}
    return {"kind": "youtube#videoListResponse", "items": [item]}


ENDED = video("none", actualEndTime="2026-12-17T21:00:00Z")


@pytest.mark.parametrize(
    ("status", "body", "live", "starts"),
    [
        (200, video("live"), True, "live"),
        (200, ENDED, False, "ended"),
        (200, video("upcoming"), False, "not started"),
        (200, video("none"), False, "not live"),
        (200, {"items": []}, False, "gone"),
        (403, {"error": {"errors": [{"reason": "quotaExceeded"}]}}, None, "unknown"),
        (500, None, None, "unknown"),
    ],
)
def test_verdicts(status: int, body: Any, live: bool | None, starts: str) -> None:
    verdict = youtube_verdict(status, body, VIDEO)
    assert verdict.live is live
    assert verdict.text.startswith(starts)


def test_the_wording_operators_see() -> None:
    assert youtube_verdict(200, ENDED, VIDEO).text == (
        f"ended: broadcast {VIDEO} ended at 2026-12-17T21:00:00Z; what is pushed now "
        "reaches no viewer (start a new broadcast for this stream key)"
    )
    assert youtube_verdict(403, {"error": {"errors": [{"reason": "quotaExceeded"}]}}, VIDEO) == (
        Verdict(None, "unknown: the YouTube API answered 403 quotaExceeded")
    )
    assert unreachable("no answer within 10s") == Verdict(
        None, "unknown: the YouTube API could not be reached (no answer within 10s)"
    )


def flagged(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records]
    return [line for line in lines if "is pushing, but YouTube says" in line]


def test_each_verdict_is_handed_on_and_a_push_into_a_dead_broadcast_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "monitoring.broadcast")
    broadcasts = Broadcasts()
    live = youtube_verdict(200, video("live"), VIDEO)
    ended = youtube_verdict(200, ENDED, VIDEO)
    upcoming = youtube_verdict(200, video("upcoming"), VIDEO)
    broadcasts.note("yt", upcoming)  # before the wiring connects: kept, not logged
    notes: list[tuple[str, str | None]] = []
    pushing = {"yt": False}
    broadcasts.connect(lambda name, text: notes.append((name, text)), pushing.__getitem__)
    assert notes == [("yt", upcoming.text)]  # what was known is handed on at once

    broadcasts.note("yt", upcoming)  # not pushing yet: nothing to flag
    assert flagged(caplog) == []
    pushing["yt"] = True
    broadcasts.note("yt", upcoming)  # pushing into a broadcast not started: flagged
    broadcasts.note("yt", upcoming)
    broadcasts.note("yt", unreachable("no answer within 10s"))  # no news
    broadcasts.note("yt", upcoming)
    assert flagged(caplog) == [f"destination yt is pushing, but YouTube says {upcoming.text}"]

    broadcasts.note("yt", live)
    assert "destination yt: YouTube says the broadcast is live" in caplog.text
    for _ in range(3):
        broadcasts.note("yt", ended)  # one line per change, not one per poll
    assert len(flagged(caplog)) == 2 and "YouTube says ended" in flagged(caplog)[-1]
    assert [text for _, text in notes[-3:]] == [ended.text] * 3  # every poll reaches the row

    broadcasts.forget("yt")  # removed; one added again under the name starts afresh
    broadcasts.note("yt", ended)
    assert len(flagged(caplog)) == 3
