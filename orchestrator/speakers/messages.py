"""Recorded messages: a speaker who cannot hold a live link uploads one; once approved it
becomes the fallback for their slot.

Uploads are resumable, in the manner of tus: ``create`` gives an upload id for a
declared length, ``append`` takes a chunk at the current offset (a café connection that
drops continues from the offset the server confirms), and the last chunk probes the file
with PyAV before accepting it. The offset is the size of the partial file on disk, so an
upload also survives a restart of jalsa. Every method here blocks (file I/O, probing):
the API calls them in a thread.

Files: ``<state>/messages/uploads/<id>.part`` (+ ``.json``) while uploading, then
``<state>/messages/<message id><suffix>`` with its metadata beside it,
``<message id>.json`` (speaker, length, size, when, status), written atomically (a
temporary file, fsync, rename). A message is ``pending`` until an operator approves it
(or at once, when the event allows it): only an approved one is ever used on air, so a
forwarded or stolen link cannot put anything on air by itself. Per speaker there is at
most one pending message (a new upload replaces it) and one approved (approving another
replaces it); a pending message never displaces the approved one. Every change bumps
:attr:`MessageStore.version`, so callers apply the changes they see in order.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, TypeAlias

import av
import av.error

from orchestrator.event.durable import replace_atomically
from orchestrator.event.secret import private_dir

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
CONTENT_TYPES: Final = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".m4v": "video/x-m4v",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".3gp": "video/3gpp",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".aac": "audio/aac",
}
_ID: Final = re.compile(r"[A-Za-z0-9_-]{16}")

log = logging.getLogger(__name__)

Status: TypeAlias = Literal["pending", "approved"]


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


class Chunk:
    """One chunk being written to an upload's partial file, as it arrives (blocking)."""

    def __init__(self, upload: Upload, file: BinaryIO) -> None:
        self.upload = upload
        self._file = file
        self.written = 0

    @property
    def room(self) -> int:
        """How many more bytes the declared length takes."""
        return self.upload.length - self.upload.offset - self.written

    def write(self, data: bytes) -> None:
        """Raises:
        MessageRefused: the data runs past the declared length (nothing is written).
        """
        if len(data) > self.room:
            raise MessageRefused("more data than the declared Upload-Length")
        self._file.write(data)
        self.written += len(data)

    def close(self, *, keep: bool) -> Upload:
        """Keep the chunk (flushed and fsynced), or take it back out (the upload stays
        at its offset: a chunk cut off or refused halfway leaves nothing behind)."""
        try:
            if keep:
                self._file.flush()
                os.fsync(self._file.fileno())
            else:
                self._file.truncate(self.upload.offset)
                self.written = 0
        finally:
            self._file.close()
        u = self.upload
        return Upload(u.id, u.speaker, u.length, u.suffix, u.offset + self.written)


@dataclass(frozen=True, slots=True)
class Probed:
    seconds: float
    video: bool
    audio: bool


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message (``duration`` in seconds, ``uploaded_at`` Unix time)."""

    id: str
    speaker: str
    suffix: str
    duration: float
    size: int
    uploaded_at: float
    status: Status
    video: bool
    audio: bool
    approved_at: float | None = None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.suffix, "application/octet-stream")

    def public(self) -> dict[str, Any]:
        """What the operator API shows of it."""
        return {**asdict(self), "content_type": self.content_type}


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did, and the approved messages right after it (speaker -> file)
    with the store's version then."""

    message: Message
    replaced: tuple[Message, ...]
    version: int
    approved: dict[str, str]


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
    def __init__(
        self,
        state_dir: Path,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        clock: Callable[[], float] = time.time,
        speakers: Collection[str] = (),
    ) -> None:
        """Open the store; messages from earlier runs are read from disk.

        ``speakers``: the live speakers; a file of the layout before approvals
        (``<speaker><suffix>``, no metadata) is taken in as a pending message of theirs.
        """
        self.folder = state_dir / "messages"
        self._uploads = self.folder / "uploads"
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self.version = 0
        self._messages: dict[str, Message] = {}
        self._load(frozenset(speakers))

    def messages(self) -> list[Message]:
        """Every stored message, oldest upload first."""
        with self._lock:
            return sorted(self._messages.values(), key=lambda m: (m.uploaded_at, m.id))

    def message(self, message_id: str) -> Message | None:
        with self._lock:
            return self._messages.get(message_id)

    def path(self, message: Message) -> Path:
        return self.folder / f"{message.id}{message.suffix}"

    def approved(self) -> tuple[int, dict[str, str]]:
        """The store's version and each speaker's approved message, as a path."""
        with self._lock:
            return self.version, self._approved()

    def approve(self, message_id: str) -> Change:
        """Approve a message: it becomes its speaker's fallback, replacing (deleting) the
        one approved before. Approving an approved message changes nothing.

        Raises:
            KeyError: no such message.
        """
        with self._lock:
            message = self._messages[message_id]
            if message.status == "approved":
                return Change(message, (), self.version, self._approved())
            message = replace(message, status="approved", approved_at=self._clock())
            self._write_meta(message)
            self._messages[message.id] = message
            replaced = self._drop_others(message, ("approved",))
            return self._changed(message, replaced)

    def delete(self, message_id: str) -> Change:
        """Remove a message (its file and metadata).

        Raises:
            KeyError: no such message.
        """
        with self._lock:
            message = self._messages[message_id]
            self._remove(message)
            return self._changed(message, ())

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
            private_dir(private_dir(self.folder) / self._uploads.name)  # 0700
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
        chunk = self.open_chunk(upload_id, speaker, offset)
        try:
            chunk.write(data)
        except MessageRefused:
            chunk.close(keep=False)
            raise
        return chunk.close(keep=True)

    def open_chunk(self, upload_id: str, speaker: str, offset: int) -> Chunk:
        """Start receiving a chunk at ``offset``, checked before any of it is read: the
        caller streams it in with :meth:`Chunk.write` and ends with :meth:`Chunk.close`.
        One chunk per upload at a time (the API allows one request per speaker).

        Raises:
            KeyError: no such upload for this speaker.
            OffsetMismatch: ``offset`` is not the upload's offset.
        """
        with self._lock:
            upload = self._read(upload_id, speaker)
            if upload is None:
                raise KeyError(upload_id)
            if offset != upload.offset:
                raise OffsetMismatch(upload.offset)
            return Chunk(upload, (self._uploads / f"{upload_id}.part").open("ab"))

    def finish(self, upload: Upload, *, approve: bool = False) -> Change:
        """Probe a complete upload and store it as the speaker's message: pending (it
        replaces their pending one), or approved at once with ``approve`` (it replaces
        their approved one too).

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
        now = self._clock()
        message = Message(
            id=secrets.token_urlsafe(12),
            speaker=upload.speaker,
            suffix=upload.suffix,
            duration=round(probed.seconds, 3),
            size=part.stat().st_size,
            uploaded_at=now,
            status="approved" if approve else "pending",
            video=probed.video,
            audio=probed.audio,
            approved_at=now if approve else None,
        )
        with self._lock:
            # The file first: metadata only ever names a file that is there.
            part.replace(self.path(message))
            self._write_meta(message)
            (self._uploads / f"{upload.id}.json").unlink(missing_ok=True)
            self._messages[message.id] = message
            statuses: tuple[Status, ...] = ("pending", "approved") if approve else ("pending",)
            replaced = self._drop_others(message, statuses)
            return self._changed(message, replaced)

    # -- under the lock ------------------------------------------------------------------

    def _approved(self) -> dict[str, str]:
        ordered = sorted(self._messages.values(), key=lambda m: (m.uploaded_at, m.id))
        return {m.speaker: str(self.path(m)) for m in ordered if m.status == "approved"}

    def _changed(self, message: Message, replaced: tuple[Message, ...]) -> Change:
        self.version += 1
        return Change(message, replaced, self.version, self._approved())

    def _drop_others(self, kept: Message, statuses: tuple[Status, ...]) -> tuple[Message, ...]:
        others = tuple(
            m
            for m in self._messages.values()
            if m.speaker == kept.speaker and m.id != kept.id and m.status in statuses
        )
        for message in others:
            self._remove(message)
        return others

    def _remove(self, message: Message) -> None:
        (self.folder / f"{message.id}.json").unlink(missing_ok=True)
        self.path(message).unlink(missing_ok=True)
        self._messages.pop(message.id, None)

    def _write_meta(self, message: Message) -> None:
        record = {k: v for k, v in asdict(message).items() if k != "id"}
        replace_atomically(self.folder / f"{message.id}.json", json.dumps(record).encode())

    def _load(self, speakers: frozenset[str]) -> None:
        if not self.folder.is_dir():
            return
        for meta in self.folder.glob("*.json"):
            message = _read_message(meta)
            if message is not None and self.path(message).is_file():
                self._messages[message.id] = message
        for path in sorted(self.folder.iterdir(), key=lambda p: p.stat().st_mtime):
            legacy = path.stem in speakers and path.suffix in SUFFIXES
            if legacy and path.is_file() and not path.with_suffix(".json").exists():
                self._adopt(path)

    def _adopt(self, path: Path) -> None:
        """A message stored before approvals existed: pending, like any new one."""
        try:
            probed = probe(path)
        except MessageRefused:
            return
        stat = path.stat()
        message = Message(
            secrets.token_urlsafe(12),
            path.stem,
            path.suffix,
            round(probed.seconds, 3),
            stat.st_size,
            stat.st_mtime,
            "pending",
            probed.video,
            probed.audio,
        )
        self._drop_others(message, ("pending",))
        path.replace(self.path(message))
        self._write_meta(message)
        self._messages[message.id] = message
        log.info("speaker %s: an earlier recorded message now waits for approval", path.stem)

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


def _read_message(meta: Path) -> Message | None:
    if not _ID.fullmatch(meta.stem):
        return None
    try:
        record = json.loads(meta.read_text())
        status = record["status"]
        if status not in ("pending", "approved") or record["suffix"] not in SUFFIXES:
            return None
        approved_at = record.get("approved_at")
        return Message(
            id=meta.stem,
            speaker=str(record["speaker"]),
            suffix=str(record["suffix"]),
            duration=float(record["duration"]),
            size=int(record["size"]),
            uploaded_at=float(record["uploaded_at"]),
            status=status,
            video=bool(record["video"]),
            audio=bool(record["audio"]),
            approved_at=None if approved_at is None else float(approved_at),
        )
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("recorded messages: %s is unreadable; ignored", meta.name)
        return None
