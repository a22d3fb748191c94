"""What the program reads from: a Source holds the latest picture and a FIFO of audio."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal, TypeAlias

import av

from orchestrator.program.audio import Samples
from orchestrator.rundown import SourceState, SourceStateName

SourceKind: TypeAlias = Literal["clip", "pull", "testsrc", "webrtc"]


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    name: str
    kind: SourceKind
    location: str  # sanitised: safe to show and log
    state: SourceStateName
    frames: int
    reconnects: int
    last_error: str | None


class Source(abc.ABC):
    """A speaker's (or a clip's) media, ready for the program at any instant.

    Invariant: ``video()`` and ``audio()`` never block; they return the newest picture
    (already at the program's size, yuv420p) and buffered samples (48 kHz stereo,
    silence-padded). Decoding, pacing and reconnecting happen on the source's own thread.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None:
        """Ask the source to stop; returns at once."""

    def join(self, timeout: float) -> None:  # noqa: B027 - sources without a thread
        """Wait up to ``timeout`` seconds for the source's thread to finish."""

    @property
    @abc.abstractmethod
    def state(self) -> SourceState: ...

    @abc.abstractmethod
    def video(self) -> av.VideoFrame | None: ...

    @abc.abstractmethod
    def audio(self, count: int) -> Samples: ...

    @abc.abstractmethod
    def snapshot(self) -> SourceSnapshot: ...
