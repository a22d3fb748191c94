"""ffmpeg and ffprobe as the judge: what a platform would see in what we sent it."""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Probe:
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    duration: float
    video_times: list[float]
    keyframe_times: list[float]
    audio_times: list[float]

    @property
    def largest_video_gap(self) -> float:
        times = sorted(self.video_times)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    @property
    def video_seconds(self) -> float:
        return (max(self.video_times) - min(self.video_times)) if self.video_times else 0.0

    @property
    def audio_seconds(self) -> float:
        return (max(self.audio_times) - min(self.audio_times)) if self.audio_times else 0.0


def ffprobe(path: Path | str) -> Probe:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
            "-show_entries",
            "packet=stream_index,pts_time,dts_time,flags",
            "-show_packets",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    streams = {s["index"]: s for s in data.get("streams", [])}
    video = next((s for s in streams.values() if s["codec_type"] == "video"), None)
    audio = next((s for s in streams.values() if s["codec_type"] == "audio"), None)
    video_times: list[float] = []
    keyframes: list[float] = []
    audio_times: list[float] = []
    for packet in data.get("packets", []):
        stamp = packet.get("pts_time") or packet.get("dts_time")
        if stamp is None:
            continue
        kind = streams[packet["stream_index"]]["codec_type"]
        if kind == "video":
            video_times.append(float(stamp))
            if "K" in packet.get("flags", ""):
                keyframes.append(float(stamp))
        elif kind == "audio":
            audio_times.append(float(stamp))
    return Probe(
        video_codec=video["codec_name"] if video else None,
        audio_codec=audio["codec_name"] if audio else None,
        width=video.get("width") if video else None,
        height=video.get("height") if video else None,
        duration=float(data.get("format", {}).get("duration", 0.0)),
        video_times=video_times,
        keyframe_times=keyframes,
        audio_times=audio_times,
    )


def decode_errors(path: Path | str) -> str:
    """What ffmpeg complains about while decoding the whole file ('' when clean)."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.stderr.strip()


def centre_colour(path: Path | str, at: float) -> tuple[int, int, int]:
    """The mean RGB colour of a small square at the centre of the frame at ``at`` s."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{at:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            "crop=16:16:(iw-16)/2:(ih-16)/2,scale=1:1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    r, g, b = result.stdout[:3]
    return r, g, b


def dominant(rgb: tuple[int, int, int]) -> str:
    """'red', 'green', 'blue' when one channel clearly leads, else 'dark' or 'mixed'."""
    r, g, b = rgb
    if max(rgb) < 70:
        return "dark"
    for name, value, others in (("red", r, (g, b)), ("green", g, (r, b)), ("blue", b, (r, g))):
        if value > 1.6 * max(others) + 20:
            return name
    return "mixed"


def make_clip(
    path: Path,
    *,
    colour: str,
    seconds: float,
    size: str = "640x360",
    rate: int = 30,
    tone: int = 440,
    sample_rate: int = 44100,
    channels: int = 1,
) -> Path:
    """A solid-colour clip with a tone (H.264 + AAC), made by ffmpeg's own lavfi."""
    layout = "mono" if channels == 1 else "stereo"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c={colour}:s={size}:r={rate}:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=f={tone}:r={sample_rate}:d={seconds},aformat=channel_layouts={layout}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path
