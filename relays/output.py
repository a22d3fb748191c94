"""How each kind of destination is written: container format, URL and muxer options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.destination_spec import DestinationSpec

FILE_FORMATS = {".mkv": "matroska", ".flv": "flv", ".mp4": "mp4", ".ts": "mpegts"}
HLS_SEGMENT_SECONDS = 2
HLS_LIST_SIZE = 6


@dataclass(frozen=True, slots=True, repr=False)
class Output:
    """A destination resolved to what the muxer opens. ``target`` may hold a key."""

    target: str
    format: str
    safe_target: str
    options: dict[str, str] = field(default_factory=dict)
    audio_only: bool = False

    def __repr__(self) -> str:
        return f"Output({self.safe_target!r}, format={self.format!r})"


def hls_dir(state_dir: Path, name: str) -> Path:
    return state_dir / "hls" / name


def output_for(spec: DestinationSpec, state_dir: Path, attempt: int = 0) -> Output:
    """Resolve ``spec``; ``attempt`` > 0 is a reconnect (a file gets a new name).

    A recording never overwrites an earlier file: ``name.mkv`` is followed by
    ``name-1.mkv``, ``name-2.mkv``… (nothing recorded is lost to a restart).
    """
    if spec.kind == "rtmp":
        options = {"flvflags": "no_duration_filesize"}
        if spec.target_url().startswith("rtmps"):
            options["tls_verify"] = "1" if spec.verify_tls else "0"
        return Output(spec.target_url(), "flv", spec.safe_url(), options, spec.audio_only)
    if spec.kind == "icecast":
        options = {"content_type": "audio/aac", "ice_name": spec.name}
        return Output(spec.target_url(), "adts", spec.safe_url(), options, audio_only=True)
    if spec.kind == "hls":
        folder = hls_dir(state_dir, spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        index = folder / "index.m3u8"
        options = {
            "hls_time": str(HLS_SEGMENT_SECONDS),
            "hls_list_size": str(HLS_LIST_SIZE),
            "hls_flags": "delete_segments+independent_segments+temp_file",
            "hls_segment_filename": str(folder / f"seg-{attempt}-%05d.ts"),
        }
        return Output(str(index), "hls", str(index), options, spec.audio_only)
    path = _free_path(Path(spec.target_url()))
    path.parent.mkdir(parents=True, exist_ok=True)
    # No mp4 "faststart": it rewrites the whole file at close, too slow for a 5 s stop.
    return Output(str(path), FILE_FORMATS[path.suffix.lower()], str(path), {}, spec.audio_only)


def _free_path(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
