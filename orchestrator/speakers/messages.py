"""Recorded messages: a speaker who cannot hold a live link uploads one; it becomes the
fallback for their slot.

Uploads are resumable, in the manner of tus: ``create`` gives an upload id for a
declared length, ``append`` takes a chunk at the current offset (a café connection that
drops continues from the offset the server confirms), and the last chunk probes the file
with PyAV before accepting it. The offset is the size of the partial file on disk, so an
upload also survives a restart of jalsa. Every method here blocks (file I/O, probing):
the API calls them in a thread.

Files: ``<state>/messages/uploads/<id>.part`` (+ ``.json``) while uploading, then
``<state>/messages/<speaker><suffix>``, replacing an earlier message.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
import av.error

MAX_MESSAGE_BYTES: Final = 300 * 1024 * 1024
MAX_CHUNK_BYTES: Final = 8 * 1024 * 1024
MAX_MESSAGE_SECONDS: Final = 3600.0
SUFFIXES: Final = (
    ".mp4",
    ".mov",
    ".m4v",
    ".webm",
    ".mkv",
    ".3gp",
    ".m4a",
    ".mp3",
    ".ogg",
    ".opus",
    ".wav",
    ".aac",
)
_ID: Final = re.compile(r"[A-Za-z0-9_-]{16}")


class MessageRefused(ValueError):
    """The upload or the file cannot be accepted; the message says why (safe to show)."""


class OffsetMismatch(Exception):
    """The chunk is not at the upload's offset; ``offset`` is where it stands."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    speaker: str
    length: int
    suffix: str
    offset: int


@dataclass(frozen=True, slots=True)
class Probed:
    seconds: float
    video: bool
    audio: bool


def probe(path: Path) -> Probed:
    """Check that ``path`` is media PyAV can play: a stream, a decodable frame, a length.

    Raises:
        MessageRefused: with the reason.
    """
    try:
        with av.open(str(path)) as container:
            video, audio = bool(container.streams.video), bool(container.streams.audio)
            streams = [*container.streams.video, *container.streams.audio]
            if not streams:
                raise MessageRefused("the file has no audio or video")
            decoded = False
            for packet in container.demux(streams[0]):
                if packet.size and packet.decode():
                    decoded = True
                    break
            if not decoded:
                raise MessageRefused("nothing in the file could be decoded")
            seconds = (container.duration or 0) / 1_000_000
            if seconds <= 0:
                stream = streams[0]
                if stream.duration and stream.time_base:
                    seconds = float(stream.duration * stream.time_base)
    except av.error.FFmpegError as exc:
        raise MessageRefused(f"not a video or audio file we can play ({exc.strerror})") from None
    if seconds > MAX_MESSAGE_SECONDS:
        raise MessageRefused(f"longer than {MAX_MESSAGE_SECONDS / 60:.0f} minutes")
    return Probed(seconds, video, audio)


class MessageStore:
    def __init__(self, state_dir: Path, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.folder = state_dir / "messages"
        self._uploads = self.folder / "uploads"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def accepted(self, speakers: frozenset[str]) -> dict[str, str]:
        """Each speaker's accepted message, as a path (those on disk from earlier runs)."""
        found: dict[str, str] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.iterdir(), key=lambda p: p.stat().st_mtime):
            if path.is_file() and path.stem in speakers and path.suffix in SUFFIXES:
                found[path.stem] = str(path)
        return found

    def create(self, speaker: str, length: int, name: str) -> Upload:
        """A new upload of ``length`` bytes; the speaker's unfinished one is dropped.

        Raises:
            MessageRefused: the length is 0 or over the limit.
        """
        if length <= 0:
            raise MessageRefused("the file is empty")
        if length > self.max_bytes:
            raise MessageRefused(
                f"the file is larger than {self.max_bytes // (1024 * 1024)} MiB: "
                "record a shorter message or at a lower quality"
            )
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in SUFFIXES else ".mp4"
        upload = Upload(secrets.token_urlsafe(12), speaker, length, suffix, 0)
        with self._lock:
            self._uploads.mkdir(parents=True, exist_ok=True)
            for meta in self._uploads.glob("*.json"):
                if self._read(meta.stem, speaker) is not None:
                    self._drop(meta.stem)
            (self._uploads / f"{upload.id}.part").write_bytes(b"")
            record = {"speaker": speaker, "length": length, "suffix": suffix}
            (self._uploads / f"{upload.id}.json").write_text(json.dumps(record))
        return upload

    def get(self, upload_id: str, speaker: str) -> Upload | None:
        with self._lock:
            return self._read(upload_id, speaker)

    def append(self, upload_id: str, speaker: str, offset: int, data: bytes) -> Upload:
        """Add ``data`` at ``offset``; returns the upload as it now stands.

        Raises:
            KeyError: no such upload for this speaker.
            OffsetMismatch: ``offset`` is not the upload's offset.
            MessageRefused: the data runs past the declared length.
        """
        with self._lock:
            upload = self._read(upload_id, speaker)
            if upload is None:
                raise KeyError(upload_id)
            if offset != upload.offset:
                raise OffsetMismatch(upload.offset)
            if upload.offset + len(data) > upload.length:
                raise MessageRefused("more data than the declared Upload-Length")
            with (self._uploads / f"{upload_id}.part").open("ab") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            return Upload(upload.id, speaker, upload.length, upload.suffix, offset + len(data))

    def finish(self, upload: Upload) -> tuple[Path, Probed]:
        """Probe a complete upload and make it the speaker's message.

        Raises:
            MessageRefused: the file is not playable media (the upload is dropped).
        """
        part = self._uploads / f"{upload.id}.part"
        try:
            probed = probe(part)
        except MessageRefused:
            with self._lock:
                self._drop(upload.id)
            raise
        with self._lock:
            for old in self.folder.glob(f"{upload.speaker}.*"):
                if old.suffix in SUFFIXES:
                    old.unlink()
            target = self.folder / f"{upload.speaker}{upload.suffix}"
            part.replace(target)
            (self._uploads / f"{upload.id}.json").unlink(missing_ok=True)
        return target, probed

    def _read(self, upload_id: str, speaker: str) -> Upload | None:
        if not _ID.fullmatch(upload_id):
            return None
        try:
            meta = json.loads((self._uploads / f"{upload_id}.json").read_text())
            size = (self._uploads / f"{upload_id}.part").stat().st_size
        except (OSError, ValueError):
            return None
        if meta.get("speaker") != speaker:
            return None
        return Upload(upload_id, speaker, int(meta["length"]), str(meta["suffix"]), size)

    def _drop(self, upload_id: str) -> None:
        for suffix in (".part", ".json"):
            (self._uploads / f"{upload_id}{suffix}").unlink(missing_ok=True)
