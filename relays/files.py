"""Local destinations: a recording file or the HLS mirror, resolved and muxed by PyAV.

:func:`output_for` resolves a ``file`` or ``hls`` spec to what PyAV opens (a recording
never overwrites an older file; HLS goes to the state dir); :class:`LocalWriter` writes it.

Local files never block on a network, so PyAV writes them directly, packet by packet,
on the destination's writer thread (muxing releases the GIL).

A recording survives ``kill -9`` (a crash, an OOM kill) with at most one GOP lost: the
muxers write whole units at each keyframe (a Matroska cluster, a fragment of a
fragmented mp4; FLV and MPEG-TS have no units, every packet stands alone) and
``flush_packets`` hands what is muxed to the kernel at once, so the file ends on a
whole unit and plays to its end (:func:`recording_options`; docs/relays.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from orchestrator.event.destination_spec import DestinationSpec
from relays.memory_mux import Rebase
from relays.packet import EncodedPacket, PacketKind

FILE_FORMATS = {".mkv": "matroska", ".flv": "flv", ".mp4": "mp4", ".ts": "mpegts"}
HLS_SEGMENT_SECONDS = 2
HLS_LIST_SIZE = 6
DEFAULT_KEYFRAME_SECONDS = 2.0


@dataclass(frozen=True, slots=True, repr=False)
class Output:
    """A local destination resolved to what PyAV opens."""

    target: str
    format: str
    safe_target: str
    options: dict[str, str] = field(default_factory=dict)
    audio_only: bool = False
    # Keep the program's own timestamps (not counted from the first packet): the
    # renditions of an HLS ladder share one timeline, so players can switch.
    keep_time: bool = False

    def __repr__(self) -> str:
        return f"Output({self.safe_target!r}, format={self.format!r})"


def hls_dir(state_dir: Path, name: str) -> Path:
    return state_dir / "hls" / name


def output_for(spec: DestinationSpec, state_dir: Path, attempt: int = 0) -> Output:
    """Resolve a local ``spec`` (``file`` or ``hls``).

    A recording never overwrites an earlier file: ``name.mkv`` is followed by
    ``name-1.mkv``, ``name-2.mkv``… (nothing recorded is lost to a restart).

    Raises:
        ValueError: ``spec`` is not a local destination.
    """
    if spec.kind == "hls":
        folder = hls_dir(state_dir, spec.name)
        if spec.ladder is not None:  # index.m3u8 is the ladder's master playlist
            return hls_output(folder, "program", "program", attempt)
        return hls_output(folder, "index", "seg", attempt, audio_only=spec.audio_only)
    if spec.kind != "file":
        raise ValueError(f"{spec.kind} is not a local destination")
    path = _free_path(Path(spec.target_url()))
    path.parent.mkdir(parents=True, exist_ok=True)
    return Output(str(path), FILE_FORMATS[path.suffix.lower()], str(path), {}, spec.audio_only)


def hls_output(
    folder: Path, playlist: str, segments: str, attempt: int, *, audio_only: bool = False
) -> Output:
    """One HLS rendition: ``folder/<playlist>.m3u8`` and its ``<segments>-<attempt>-<n>.ts``.

    Segment names never repeat within an event, so a cache may keep each one for good:
    ``n`` starts at the epoch second the output opens (a restart starts above any number
    the last run reached: segments last at least ``HLS_SEGMENT_SECONDS``), and
    ``attempt`` tells a reopened output's from the last one's. A playlist of a ladder
    (``playlist`` other than ``index``) keeps the program's timestamps and carries
    ``EXT-X-PROGRAM-DATE-TIME``, so its renditions line up.
    """
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / f"{playlist}.m3u8"
    ladder = playlist != "index"
    flags = "delete_segments+independent_segments+temp_file"
    options = {
        "hls_time": str(HLS_SEGMENT_SECONDS),
        "hls_list_size": str(HLS_LIST_SIZE),
        "hls_flags": flags + ("+program_date_time" if ladder else ""),
        "hls_segment_filename": str(folder / f"{segments}-{attempt}-%d.ts"),
        "start_number": str(int(time.time())),
        # Several AAC frames per PES packet (up to 0.35 s): one per frame costs a whole
        # 188-byte TS packet for ~130 bytes of 48 kbit/s audio (75 kbit/s on the wire).
        "max_delay": "700000",
    }
    return Output(str(index), "hls", str(index), options, audio_only, keep_time=ladder)


def recording_options(fmt: str, keyframe_seconds: float, audio_only: bool) -> dict[str, str]:
    """libavformat options that keep a recording playable if jalsa is killed mid-write.

    - ``flush_packets=1``: after each packet libavformat hands its buffer to the kernel
      (else it writes blocks of 256 KiB to 1 MiB, and a killed file lost what the block
      held, seconds to minutes of program, and ended in half a packet). Matroska and
      fragmented mp4 hold the current cluster or fragment in memory until it is
      complete, so for them this is one ``write`` per keyframe; FLV and MPEG-TS write
      each packet (about 80 writes a second).
    - Matroska: a cluster per keyframe (libavformat starts one at each video keyframe once
      it holds 4 KiB); ``cluster_time_limit`` bounds clusters that stay smaller (a still
      slate) and those of an audio-only recording (5 s by default) to one GOP.
    - mp4: fragmented (``frag_keyframe``: a fragment per video keyframe; audio only,
      ``frag_duration`` of one GOP), with an empty ``moov`` up front: a classic mp4 has
      its index (``moov``) at the end, and a killed one has none and does not play at all.
      No "faststart" either: it rewrites the whole file at close, too slow for a 5 s stop.
    """
    options = {"flush_packets": "1"}
    if fmt == "matroska":
        options["cluster_time_limit"] = str(round(keyframe_seconds * 1000))  # ms
    elif fmt == "mp4":
        options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        if audio_only:
            options["frag_duration"] = str(round(keyframe_seconds * 1_000_000))  # µs
    return options


def keyframe_seconds(video: Stream) -> float:
    """The GOP of the program's video stream (its encoder's ``gop_size`` at its rate)."""
    if not isinstance(video, VideoStream):
        return DEFAULT_KEYFRAME_SECONDS
    gop, rate = video.codec_context.gop_size, video.codec_context.framerate
    return float(gop / rate) if gop > 0 and rate else DEFAULT_KEYFRAME_SECONDS


def _free_path(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


class LocalWriter:
    """One open local output; see :class:`relays.writer.Writer`."""

    def __init__(self, output: Output, templates: tuple[Stream, Stream]) -> None:
        video_t, audio_t = templates
        options = dict(output.options)
        if output.format in FILE_FORMATS.values():
            gop = keyframe_seconds(video_t)
            options = {**recording_options(output.format, gop, output.audio_only), **options}
        self._container: OutputContainer = av.open(
            output.target, "w", format=output.format, options=options
        )
        container = self._container
        self._video = None if output.audio_only else container.add_stream_from_template(video_t)
        self._audio = self._container.add_stream_from_template(audio_t)
        self._rebase = Rebase(Fraction(0) if output.keep_time else None)
        self._sent_bytes = 0
        self._sent_seconds: float | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return 0

    @property
    def sent_bytes(self) -> int:
        return self._sent_bytes

    @property
    def sent_seconds(self) -> float | None:
        return self._sent_seconds

    def accepts(self) -> tuple[PacketKind, ...]:
        return ("video", "audio")

    def write(self, packet: EncodedPacket) -> None:
        stream = self._video if packet.kind == "video" else self._audio
        out = None if stream is None else self._rebase.packet(packet, stream)
        if out is None:
            return
        self._container.mux(out)
        self._sent_bytes += packet.size
        self._sent_seconds = packet.seconds

    def service(self, timeout: float) -> None:
        return None

    def finish(self, deadline: float) -> None:
        self.abort()

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()
