"""A clip where the show stands: started part-way in (its item was on air before a
restart), paused while its item is held and played on from there. A real clip (3 s
red, then blue), decoded by the real MediaSource."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

from orchestrator.ingest.media_source import MediaSource
from orchestrator.rundown import SourceState

RED_SECONDS = 3


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "red-then-blue.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"color=c=red:s=160x120:r=25:d={RED_SECONDS}",
         "-f", "lavfi", "-i", "color=c=blue:s=160x120:r=25:d=5",
         "-f", "lavfi", "-i", f"sine=f=440:d={RED_SECONDS + 5}",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def colour(source: MediaSource) -> str:
    frame = source.video()
    assert frame is not None
    rgb = frame.to_ndarray(format="rgb24")
    r, g, b = (int(v) for v in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2])
    return "red" if r > 2 * max(g, b) else "blue" if b > 2 * max(r, g) else f"{r, g, b}"


def frames(source: MediaSource) -> int:
    return source.snapshot().frames


def test_a_clip_can_start_part_way_in(clip: Path) -> None:
    source = MediaSource("c", str(clip), width=160, height=120, armed=True, start_at=4.0)
    source.start()
    try:
        wait_for(lambda: source.state is SourceState.READY, 10, "the first picture")
        assert colour(source) == "blue"  # 4 s in: past the red part
        assert frames(source) == 1  # armed on that picture: the seek decoded no more
    finally:
        source.stop()
        source.join(2)


def test_a_paused_clip_goes_on_from_where_it_stood(clip: Path) -> None:
    source = MediaSource("c", str(clip), width=160, height=120, armed=True)
    source.start()
    try:
        wait_for(lambda: source.state is SourceState.READY, 10, "the first picture")
        source.go()
        started = time.monotonic()
        wait_for(lambda: frames(source) >= 25, 5, "a second of the clip")
        source.pause()
        paused = frames(source)
        time.sleep(1.5)  # held: nothing is decoded meanwhile
        assert frames(source) <= paused + 1 and colour(source) == "red"
        source.go()
        wait_for(lambda: frames(source) >= paused + 30, 5, "more of the clip")
        # Played straight on it would be blue by now; paused, it is still in the red part.
        assert time.monotonic() - started > RED_SECONDS
        assert colour(source) == "red"
        wait_for(lambda: colour(source) == "blue", 5, "the blue part, in its turn")
        assert np.abs(source.audio(4800)).max() > 0  # and its tone, to play on
    finally:
        source.stop()
        source.join(2)


def test_a_pulled_stream_is_not_paused() -> None:
    source = MediaSource("p", "rtmp://127.0.0.1:1/live/x", width=160, height=120)
    source.pause()
    assert source._go.is_set()  # live: it cannot wait
