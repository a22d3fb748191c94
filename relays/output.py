"""How each kind of destination is written, and how a writer for it is opened.

- ``rtmp``: our RTMP(S) client publishes the packets' shared FLV tags
  (:mod:`relays.framing`, :mod:`relays.rtmp.session`, :mod:`relays.publisher`).
- ``icecast``: PyAV muxes ADTS into memory; our Icecast source client sends it.
- ``file`` and ``hls``: PyAV writes straight to disk (:mod:`relays.files`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from av.stream import Stream

from orchestrator.event.destination_spec import DestinationSpec
from relays.files import LocalWriter
from relays.framing import AdtsFeed, FlvFeed
from relays.icecast import IcecastSourceSession, icecast_target
from relays.publisher import Publisher
from relays.rtmp.session import RtmpPublishSession, rtmp_target
from relays.writer import Writer

FILE_FORMATS = {".mkv": "matroska", ".flv": "flv", ".mp4": "mp4", ".ts": "mpegts"}
HLS_SEGMENT_SECONDS = 2
HLS_LIST_SIZE = 6


@dataclass(frozen=True, slots=True, repr=False)
class Output:
    """A local destination resolved to what PyAV opens."""

    target: str
    format: str
    safe_target: str
    options: dict[str, str] = field(default_factory=dict)
    audio_only: bool = False

    def __repr__(self) -> str:
        return f"Output({self.safe_target!r}, format={self.format!r})"


def hls_dir(state_dir: Path, name: str) -> Path:
    return state_dir / "hls" / name


def open_writer(
    spec: DestinationSpec,
    templates: tuple[Stream, Stream],
    state_dir: Path,
    attempt: int,
    *,
    deadline: float,
    cancelled: Callable[[], bool],
    stall_timeout: float,
) -> Writer:
    """Open ``spec``'s output; for a network destination, connect and start the stream.

    ``attempt`` > 0 is a reconnect (a recording then gets a new file name).

    Raises:
        RelayError: The connection or the server's acceptance failed (a clear reason).
        OSError: The socket or the file failed.
        av.error.FFmpegError: PyAV could not open a local output.
        ValueError: The URL cannot be used.
    """
    if spec.kind == "rtmp":
        target = rtmp_target(spec.url, spec.key.reveal() if spec.key is not None else None)
        rtmp = RtmpPublishSession(target)
        return Publisher.connect(
            target.host,
            target.port,
            rtmp,
            lambda: FlvFeed(rtmp, templates, audio_only=spec.audio_only),
            tls=tls_context(spec) if target.tls else None,
            deadline=deadline,
            cancelled=cancelled,
            stall_timeout=stall_timeout,
        )
    if spec.kind == "icecast":
        ice = icecast_target(spec.target_url())
        icecast = IcecastSourceSession(ice, name=spec.name)
        return Publisher.connect(
            ice.host,
            ice.port,
            icecast,
            lambda: AdtsFeed(icecast, templates),
            tls=None,
            deadline=deadline,
            cancelled=cancelled,
            stall_timeout=stall_timeout,
        )
    return LocalWriter(output_for(spec, state_dir, attempt), templates)


def tls_context(spec: DestinationSpec) -> ssl.SSLContext:
    """The TLS settings of an rtmps:// destination.

    Verification is on by default against the system's CAs (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` replace them, as everywhere in OpenSSL); ``ca_file`` adds a CA
    for this destination; ``verify_tls = false`` turns checking off.
    """
    context = ssl.create_default_context()
    if spec.ca_file:
        context.load_verify_locations(cafile=spec.ca_file)
    if not spec.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def output_for(spec: DestinationSpec, state_dir: Path, attempt: int = 0) -> Output:
    """Resolve a local ``spec`` (``file`` or ``hls``).

    A recording never overwrites an earlier file: ``name.mkv`` is followed by
    ``name-1.mkv``, ``name-2.mkv``… (nothing recorded is lost to a restart).

    Raises:
        ValueError: ``spec`` is not a local destination.
    """
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
    if spec.kind != "file":
        raise ValueError(f"{spec.kind} is not a local destination")
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
