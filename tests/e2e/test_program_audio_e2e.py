"""Program audio on a real ``jalsa run``: the level a real scrape reports, mute and gain
over the operator API (and its refusals), settings that survive ``kill -9``, and the
silence in the recording where the speaker was muted."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from event_toml import event_toml, program, slot, speaker
from jalsa_run import JalsaRun
from media import make_clip

pytestmark = [pytest.mark.media, pytest.mark.timeout(240)]

LEVEL = "jalsa_program_audio_level_dbfs"


def call(
    run: JalsaRun, method: str, path: str, body: bytes | None = None, token: str | None = ""
) -> tuple[int, Any]:
    """An API call; ``token=""`` means the operator's token, None means no token."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.http_port}{path}",
        method=method,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token or run.token()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def set_audio(run: JalsaRun, speaker: str, **fields: Any) -> dict[str, Any]:
    status, answer = call(
        run, "POST", f"/api/speakers/{speaker}/audio", json.dumps(fields).encode()
    )
    assert status == 200, answer
    assert answer["saved"] is True
    return dict(answer)


def peak_dbfs(path: Path) -> float:
    """The clip's own peak level, decoded: ffmpeg's sine is at 1/8 of full scale, -3 dB
    once made stereo (about -21 dBFS)."""
    with av.open(str(path)) as container:
        peak = max(float(np.abs(f.to_ndarray()).max()) for f in container.decode(audio=0))
    return float(20 * np.log10(peak))


def level_near(run: JalsaRun, dbfs: float, what: str, within: float = 1.0) -> float:
    """Until the scraped program level is within ``within`` dB of ``dbfs``."""
    return run.wait_for(
        lambda: (v := run.metric(LEVEL)) is not None and abs(v - dbfs) <= within and v,
        20,
        what,
    )


def refusals(run: JalsaRun) -> None:
    """The operator API's guard rails: token first, size, JSON, fields, speaker."""
    assert call(run, "GET", "/api/audio", token=None)[0] == 401
    # The token is checked before the body is read: a huge body without one is 401.
    huge = b'{"muted": true, "pad": "' + b"x" * (70 * 1024) + b'"}'
    assert call(run, "POST", "/api/speakers/host/audio", huge, token=None)[0] == 401
    assert (
        call(run, "POST", "/api/speakers/host/audio", b'{"muted": true}', token="wrong")[0] == 401
    )
    assert call(run, "POST", "/api/speakers/host/audio", huge)[0] == 413
    assert call(run, "POST", "/api/speakers/nobody/audio", b'{"muted": true}')[0] == 404
    assert call(run, "POST", "/api/speakers/host/audio", b"{muted}")[0] == 400
    for body, field in (
        (b'{"gain_db": 30}', "gain_db"),
        (b'{"gain_db": -20.5}', "gain_db"),
        (b'{"gain_db": "6"}', "gain_db"),
        (b'{"muted": "yes"}', "muted"),
        (b'{"volume": 3}', "volume"),
        (b"[true]", "body"),
        (b"{}", "body"),
    ):
        status, answer = call(run, "POST", "/api/speakers/host/audio", body)
        assert (status, answer["detail"][0]["key"]) == (422, field), (body, answer)
    # Nothing changed.
    assert call(run, "GET", "/api/audio")[1]["speakers"]["host"]["gain_db"] == 0.0


def recorded_audio(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(start time, peak) of each decoded audio frame of the recording (left channel)."""
    times, peaks = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            times.append(float(frame.time or 0.0))
            peaks.append(float(np.abs(frame.to_ndarray()[0]).max()))
    return np.array(times), np.array(peaks)


def silent_stretches(times: np.ndarray, peaks: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) of each run of frames below -60 dBFS."""
    quiet = peaks < 1e-3
    runs, start = [], None
    for t, q in zip(times, quiet, strict=True):
        if q and start is None:
            start = t
        elif not q and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, float(times[-1])))
    return runs


def test_level_mute_gain_restart_and_the_recording(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "tone.mp4",
        colour="red",
        seconds=60,
        size="320x180",
        rate=15,
        tone=440,
        sample_rate=48000,
        channels=2,
    )
    tone_dbfs = peak_dbfs(clip)
    assert -22 < tone_dbfs < -17
    event = tmp_path / "event.toml"
    event.write_text(
        event_toml(
            "Audio Test",
            program=program(keyframe_seconds=1),
            speakers=[speaker("host", source=clip), speaker("guest", source=clip)],
            rundown=[slot("host", "10m"), slot("guest", "1m")],
            destinations=[{"name": "recording", "platform": "custom", "url": "out/show.mkv"}],
        )
    )
    state = tmp_path / "state"

    # -- the first run: the tone's level, the refusals, a gain; then a crash ----------------
    with JalsaRun(event, state) as run:
        run.wait_ready()
        run.wait_for(lambda: run.metric("jalsa_on_air", speaker="host") == 1, 20, "host on air")
        level = level_near(run, tone_dbfs, "the tone's level on /metrics")
        host_in = run.metric("jalsa_speaker_audio_level_dbfs", speaker="host")
        assert host_in is not None and abs(host_in - tone_dbfs) <= 1.0, host_in
        assert run.metric("jalsa_speaker_audio_level_dbfs", speaker="guest") is None  # off air
        status, audio = call(run, "GET", "/api/audio")
        assert status == 200
        assert abs(audio["program"]["peak"] - level) <= 1.0
        assert audio["program"]["rms"] < audio["program"]["peak"]
        assert audio["speakers"]["guest"] == {"muted": False, "gain_db": 0.0, "level_dbfs": None}
        assert audio["speakers"]["host"]["muted"] is False
        refusals(run)
        answer = set_audio(run, "host", gain_db=-6)
        assert (answer["speaker"], answer["muted"], answer["gain_db"]) == ("host", False, -6.0)
        level_near(run, tone_dbfs - 6, "the level 6 dB down")
        saved = json.loads((state / "audio.json").read_text())
        assert saved["speakers"] == {"host": {"muted": False, "gain_db": -6.0}}
        assert run.process is not None
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(10)

    # -- the restart: the gain is back; mute and unmute; a clean stop -----------------------
    with JalsaRun(event, state) as run:
        run.wait_ready()
        assert call(run, "GET", "/api/audio")[1]["speakers"]["host"]["gain_db"] == -6.0
        level_near(run, tone_dbfs - 6, "the saved gain applied after the restart")
        set_audio(run, "host", gain_db=0)
        level_near(run, tone_dbfs, "unity gain")
        run.media_flows(1.5)

        muted_from = run.media_seconds()
        assert set_audio(run, "host", muted=True)["muted"] is True
        muted_by = run.media_seconds()
        run.wait_for(lambda: (run.metric(LEVEL) or 0) < -90, 10, "the program silent")
        # The input meter still hears the speaker: the mute is in the program's mix.
        host_in = run.metric("jalsa_speaker_audio_level_dbfs", speaker="host")
        assert host_in is not None and host_in > tone_dbfs - 1.0
        audio = call(run, "GET", "/api/audio")[1]
        assert audio["program"]["peak"] == -100.0 and audio["speakers"]["host"]["muted"] is True
        run.media_flows(2)

        unmuted_from = run.media_seconds()
        set_audio(run, "host", muted=False)
        unmuted_by = run.media_seconds()
        level_near(run, tone_dbfs, "the tone back after unmuting")
        run.media_flows(1.5)
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.logs

    # -- the recording of the restart: tone, silence exactly while muted, tone --------------
    (recording,) = [p for p in (tmp_path / "out").glob("show-*.mkv")]  # the restart's file
    times, peaks = recorded_audio(recording)
    loud = peaks[peaks > 1e-3]
    assert abs(20 * np.log10(np.percentile(loud, 90)) - tone_dbfs) <= 1.0
    muted = [(a, b) for a, b in silent_stretches(times, peaks) if b - a > 1.0]
    assert len(muted) == 1, silent_stretches(times, peaks)
    start, end = muted[0]
    # The recording's clock starts at its first keyframe, some media seconds into the
    # program: both edges of the silence sit at the same offset from the API calls.
    start_offset = (muted_from - start, muted_by - start)
    end_offset = (unmuted_from - end, unmuted_by - end)
    offset = (start_offset[0] + start_offset[1]) / 2
    assert start_offset[0] - 0.25 <= offset <= start_offset[1] + 0.25
    assert end_offset[0] - 0.3 <= offset <= end_offset[1] + 0.3, (start_offset, end_offset)
    assert -0.3 <= offset <= 3.0  # the recording began with the program
    assert peaks[times > end + 0.1].min() > 0.05  # the tone again to the end
    assert times[-1] - end >= 1.0
