"""The sources of the rundown's items: opened ahead of an item, stopped once it is over.

Each item of the live rundown gets its own sources (a clip opened and armed on its first
frame, a pulled stream connected, a test pattern, a live speaker's fallback), keyed by
the item's id (:class:`~orchestrator.live_rundown.LiveSlot`): an item keeps its sources
while the operator edits the rundown around it, while it is held (its start then moves
on the clock) and when it is taken early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.event import Event, SpeakerSpec
from orchestrator.ingest.media_source import MediaSource, is_pull
from orchestrator.ingest.test_pattern import TestPattern
from orchestrator.live_rundown import LiveSlot
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.rundown import Cue, Slot, SourceState

# The next item's sources are open (a clip armed on its first frame, a test pattern
# drawn) however far off it is, so that a Next cuts at the following frame; a pulled
# stream is connected only this early (it costs the venue's downlink while it waits).
PULL_PREROLL = 10.0
# A clip put on air before it was armed (a take, a next, a resume after a restart) opens
# in a fraction of a second: the program keeps its picture meanwhile rather than flash
# a "joining" slate.
CLIP_OPENING_SECONDS = 1.0
# An item on air longer than this when its sources are opened (jalsa restarted mid-item)
# has its clip started that far in, where the show stands, not from its first frame.
RESUME_AFTER_SECONDS = 1.0


@dataclass(slots=True)
class SlotMedia:
    """The sources opened for one item of the rundown."""

    main: Source | None  # None for a live speaker: their feed is in the green room
    fallback: MediaSource | None
    main_live: Source | None = None
    playing: bool = False
    fallback_playing: bool = False
    paused: bool = False
    opened: float = field(default_factory=time.monotonic)
    speaker: str | None = None  # whose item it is
    fallback_clip: str | None = None  # the file the fallback was opened from

    def sources(self) -> list[Source]:
        return [s for s in (self.main, self.fallback) if s is not None]

    def _clips(self) -> list[MediaSource]:
        playing = [(self.main, self.playing), (self.fallback, self.fallback_playing)]
        return [s for s, on in playing if isinstance(s, MediaSource) and on and not s.live]

    def pause(self) -> None:
        """Hold the clips that play (the item is held): they go on from there."""
        if not self.paused:
            self.paused = True
            for clip in self._clips():
                clip.pause()

    def play_on(self) -> None:
        """Play the paused clips on (the hold is over)."""
        if self.paused:
            self.paused = False
            for clip in self._clips():
                clip.go()

    @property
    def opening_clip(self) -> bool:
        """A clip (a file, not a live input) opened just now, with no picture yet."""
        main = self.main
        return (
            isinstance(main, MediaSource)
            and not main.live
            and main.state is SourceState.CONNECTING
            and time.monotonic() - self.opened < CLIP_OPENING_SECONDS
        )


def key(slot: Slot) -> str:
    """The item a slot plays: its id (a live rundown's), else its position and start."""
    return slot.id if isinstance(slot, LiveSlot) else f"{slot.index}@{slot.start}"


class SlotSources:
    """The sources of the current and the next item.

    Args:
        event: for the speakers and the program's size.
        messages: speaker id -> a recorded message they uploaded (their fallback, newer
            than the event file's); read each time an item's sources are opened.
    """

    def __init__(self, event: Event, messages: Mapping[str, str]) -> None:
        self._event = event
        self._speakers = {s.id: s for s in event.speakers}
        self._messages = messages
        self._media: dict[str, SlotMedia] = {}
        # Live speakers seen connected during the current item: a later absence is a drop.
        self._seen_live: set[str] = set()

    def current(self, cue: Cue) -> SlotMedia | None:
        if cue.state != "on" or cue.current is None:
            return None
        return self._media.get(key(cue.current))

    async def prepare(self, cue: Cue, now: float, on: tuple[str, float] | None = None) -> None:
        """Open the current and upcoming items' sources; stop those of the others.

        ``on``: the item on air (held or not) and how long it has aired: a clip opened
        for it after its start begins that far in."""
        wanted: dict[str, Slot] = {}
        if cue.state == "on" and cue.current is not None:
            wanted[key(cue.current)] = cue.current
        upcoming = cue.next
        if upcoming is not None:
            speaker = self._speakers[upcoming.speaker]
            pulled = speaker.source is not None and is_pull(speaker.source)
            # (while held, the item that resumes "starts" in the past: it stays open)
            if not pulled or upcoming.start - now <= PULL_PREROLL:
                wanted[key(upcoming)] = upcoming
        current = key(cue.current) if cue.state == "on" and cue.current is not None else None
        for item in list(self._media):
            media = self._media[item]
            stale = item != current and media.fallback_clip != self._fallback_clip(media.speaker)
            if item not in wanted or stale:
                # (stale: a message was approved since the item was opened ahead)
                self._seen_live.discard(item)
                for source in self._media.pop(item).sources():
                    source.stop()
        for item, slot in wanted.items():
            if item not in self._media:
                aired = on[1] if on is not None and on[0] == item else 0.0
                start_at = aired if aired >= RESUME_AFTER_SECONDS else 0.0
                # Opening renders cards and starts threads: keep it off the loop.
                speaker = self._speakers[slot.speaker]
                self._media[item] = await asyncio.to_thread(self._open, speaker, start_at)

    def hold(self) -> None:
        """The rundown is held: every clip playing waits where it is."""
        for media in self._media.values():
            media.pause()

    def live_state(self, slot: Slot, source: Source | None) -> SourceState:
        """A browser speaker's state: CONNECTING until first seen in this item, then LOST."""
        item = key(slot)
        state = source.state if source is not None else SourceState.CONNECTING
        if state is SourceState.READY:
            self._seen_live.add(item)
        elif item in self._seen_live:
            state = SourceState.LOST
        return state

    def main_source(self, speaker: str) -> Source | None:
        """The speaker's own source (not a fallback) if one of their items has it open,
        the one playing first; None otherwise (a live speaker's is in the green room)."""
        open_ = [m for m in self._media.values() if m.speaker == speaker and m.main is not None]
        open_.sort(key=lambda m: not m.playing)
        return open_[0].main if open_ else None

    def snapshots(self) -> tuple[SourceSnapshot, ...]:
        return tuple(s.snapshot() for m in self._media.values() for s in m.sources())

    def stop(self) -> None:
        for media in self._media.values():
            for source in media.sources():
                source.stop()

    async def join(self, each: float) -> None:
        """Wait for each source's thread, up to ``each`` seconds apiece."""
        for media in self._media.values():
            for source in media.sources():
                await asyncio.to_thread(source.join, each)
        self._media.clear()

    def _open(self, speaker: SpeakerSpec, start_at: float) -> SlotMedia:
        spec = self._event.program
        width, height = spec.width, spec.height
        main: Source | None = None
        if speaker.source == "testsrc":
            index = list(self._speakers).index(speaker.id)
            main = TestPattern(
                speaker.name, index=index, title=speaker.title, width=width, height=height
            )
        elif speaker.source is not None:
            armed = not is_pull(speaker.source)
            main = MediaSource(
                speaker.id,
                speaker.source,
                armed=armed,
                width=width,
                height=height,
                start_at=start_at,
            )
        fallback = None
        fallback_clip = self._fallback_clip(speaker.id)
        if fallback_clip is not None:
            fallback = MediaSource(
                f"{speaker.id}-fallback", fallback_clip, armed=True, width=width, height=height
            )
        media = SlotMedia(main, fallback, speaker=speaker.id, fallback_clip=fallback_clip)
        for source in media.sources():
            source.start()
        return media

    def _fallback_clip(self, speaker: str | None) -> str | None:
        # A message the speaker uploaded is newer than the event file's fallback clip.
        spec = self._speakers.get(speaker or "")
        return self._messages.get(spec.id) or spec.fallback if spec is not None else None
