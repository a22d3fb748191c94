"""The show: runs the rundown, owns the sources, cuts the program, feeds the relays.

This is the asyncio side of the media path. Ten times a second it asks the rundown what
should be on air now, starts the sources of the current and the next slot (clips armed
on their first frame, pulled streams connected ahead of time), and when the decision
changes it cuts the program to the new feed. Media work stays on the program, source
and destination threads; this loop only coordinates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.event import Event, SpeakerSpec
from orchestrator.event.states import OnAirKind
from orchestrator.ingest.green_room import GreenRoom
from orchestrator.ingest.media_source import MediaSource, is_pull
from orchestrator.ingest.test_pattern import TestPattern
from orchestrator.program.graphics import Overlay, Plane, lower_third
from orchestrator.program.program import Feed, Program, ProgramSnapshot
from orchestrator.program.slates import SlateCache, slate_text
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.program.speaker_card import Appearance, speaker_card
from orchestrator.rundown import (
    Cue,
    OnAir,
    Rundown,
    RundownState,
    SlateName,
    Slot,
    SourceState,
    decide,
)
from relays.destination import DestinationSnapshot
from relays.relay import Relay

log = logging.getLogger(__name__)

TICK = 0.1
CLIP_PREROLL = 3.0  # a clip is opened and armed on its first frame this early
PULL_PREROLL = 10.0  # a pulled stream is connected this early
LOWER_THIRD_SECONDS = 8.0


@dataclass(slots=True)
class _SlotMedia:
    """The sources opened for one slot of the rundown."""

    main: Source | None  # None for a live speaker: their feed is in the green room
    fallback: MediaSource | None
    main_live: Source | None = None
    playing: bool = False
    fallback_playing: bool = False

    def sources(self) -> list[Source]:
        return [s for s in (self.main, self.fallback) if s is not None]


@dataclass(frozen=True, slots=True)
class SlotView:
    speaker: str
    name: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ShowSnapshot:
    event: str
    state: RundownState
    on_air_kind: OnAirKind
    on_air: str  # speaker id, or "slate"
    slate: SlateName | None
    current: SlotView | None
    next: SlotView | None
    remaining: float
    program: ProgramSnapshot
    destinations: tuple[DestinationSnapshot, ...]
    sources: tuple[SourceSnapshot, ...]
    speakers: tuple[str, ...] = field(default=())
    live_speakers: tuple[str, ...] = field(default=())  # those who join from the browser
    ends_at: float | None = None  # when the rundown ends (epoch s); None if it loops


class Show:
    def __init__(
        self,
        event: Event,
        state_dir: Path,
        *,
        loop_rundown: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.event = event
        self._clock = clock
        self._speakers = {s.id: s for s in event.speakers}
        spec = event.program
        # The sink runs on the program thread; the relay fans out without blocking.
        self.program = Program(spec, sink=lambda packets: self.relay.publish(packets))
        encoder = self.program.encoder
        self.relay = Relay((encoder.video_stream, encoder.audio_stream), state_dir)
        self.rundown = Rundown(event.rundown, starts_at=clock(), loop=loop_rundown)
        self._slates = SlateCache(spec.width, spec.height)
        self._graphics: dict[str, tuple[Overlay, Plane]] = {}  # per speaker, made once
        self._media: dict[tuple[int, float], _SlotMedia] = {}
        self._on_air: OnAir | None = None
        self._cue: Cue = self.rundown.at(clock())
        self.green_room = GreenRoom()
        # Live speakers seen connected during the current slot: a later absence is a drop.
        self._seen_live: set[tuple[int, float]] = set()
        # Recorded messages uploaded by live speakers (speaker id -> file): their fallback.
        self.messages: dict[str, str] = {}
        # Closed first by close(): what feeds the green room (the WHIP sessions).
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.finished = asyncio.Event()

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`close` await ``closer()`` before it stops the program."""
        self._closers.append(closer)

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until the rundown ends (``on_end = "stop"``) or the task is cancelled."""
        for destination in self.event.destinations:
            self.relay.add(destination)
        self.program.start()
        try:
            while True:
                await self._step()
                if self._cue.state == "ended" and self.event.info.on_end == "stop":
                    log.info("the rundown has ended")
                    self.finished.set()
                    return
                await asyncio.sleep(TICK)
        finally:
            self.finished.set()

    async def close(self, within: float = 4.0) -> None:
        """Stop the program and the sources, then close every output with its trailer."""
        deadline = time.monotonic() + within
        for closer in self._closers:
            try:
                async with asyncio.timeout(within * 0.25):
                    await closer()
            except Exception:
                log.exception("closing the green room failed")
        await asyncio.to_thread(self.program.stop, within * 0.4)
        for media in self._media.values():
            for source in media.sources():
                source.stop()
        stuck = await asyncio.to_thread(self.relay.close, max(0.1, deadline - time.monotonic()))
        if stuck:
            log.warning("closed without a trailer (link blocked): %s", ", ".join(stuck))
        for media in self._media.values():
            for source in media.sources():
                await asyncio.to_thread(source.join, 0.5)
        self._media.clear()

    # -- one step of the loop ---------------------------------------------------------------
    async def _step(self) -> None:
        now = self._clock()
        cue = self.rundown.at(now)
        self._cue = cue
        await self._prepare(cue, now)
        current = self._current_media(cue)
        states: dict[str, SourceState] = {}
        fallback_ready: dict[str, bool] = {}
        if cue.state == "on" and cue.current is not None:
            speaker = cue.current.speaker
            if current is not None and current.main is None:
                current.main_live = self.green_room.get(speaker)
                states[speaker] = self._live_state(cue.current, current.main_live)
            elif current is not None and current.main is not None:
                if not current.playing:
                    _go(current.main)
                    current.playing = True
                states[speaker] = current.main.state
            if current is not None and current.fallback is not None:
                fallback_ready[speaker] = current.fallback.state is SourceState.READY
        decision = decide(cue, states, fallback_ready)
        replaced = (
            decision.kind == "speaker"
            and current is not None
            and (current.main or current.main_live) is not self.program.feed.source
        )
        if decision != self._on_air or replaced:
            # (replaced: a rejoin gave the on-air speaker a new source)
            await self._cut(decision, current)

    def _live_state(self, slot: Slot, source: Source | None) -> SourceState:
        """A browser speaker's state: CONNECTING until first seen in this slot, then LOST."""
        key = _key(slot)
        state = source.state if source is not None else SourceState.CONNECTING
        if state is SourceState.READY:
            self._seen_live.add(key)
        elif key in self._seen_live:
            state = SourceState.LOST
        return state

    def _current_media(self, cue: Cue) -> _SlotMedia | None:
        if cue.state != "on" or cue.current is None:
            return None
        return self._media.get(_key(cue.current))

    async def _prepare(self, cue: Cue, now: float) -> None:
        """Open the current and upcoming slots' sources; stop those of past slots."""
        wanted: dict[tuple[int, float], Slot] = {}
        if cue.state == "on" and cue.current is not None:
            wanted[_key(cue.current)] = cue.current
        upcoming = cue.next
        if upcoming is not None:
            speaker = self._speakers[upcoming.speaker]
            preroll = PULL_PREROLL if speaker.source and is_pull(speaker.source) else CLIP_PREROLL
            if upcoming.start - now <= preroll:
                wanted[_key(upcoming)] = upcoming
        for key in list(self._media):
            if key not in wanted:
                self._seen_live.discard(key)
                for source in self._media.pop(key).sources():
                    source.stop()
        for key, slot in wanted.items():
            if key not in self._media:
                # Opening renders cards and starts threads: keep it off the loop.
                speaker = self._speakers[slot.speaker]
                self._media[key] = await asyncio.to_thread(self._open, speaker)

    def _open(self, speaker: SpeakerSpec) -> _SlotMedia:
        spec = self.event.program
        width, height = spec.width, spec.height
        main: Source | None = None
        if speaker.source == "testsrc":
            index = list(self._speakers).index(speaker.id)
            main = TestPattern(
                speaker.name, index=index, title=speaker.title, width=width, height=height
            )
        elif speaker.source is not None:
            armed = not is_pull(speaker.source)
            main = MediaSource(speaker.id, speaker.source, armed=armed, width=width, height=height)
        fallback = None
        # A message the speaker uploaded is newer than the event file's fallback clip.
        fallback_clip = self.messages.get(speaker.id) or speaker.fallback
        if fallback_clip is not None:
            fallback = MediaSource(
                f"{speaker.id}-fallback", fallback_clip, armed=True, width=width, height=height
            )
        media = _SlotMedia(main, fallback)
        for source in media.sources():
            source.start()
        return media

    async def _cut(self, decision: OnAir, media: _SlotMedia | None) -> None:
        self._on_air = decision
        feed: Feed
        main = media.main or media.main_live if media is not None else None
        if decision.kind == "speaker" and main is not None:
            feed = await self._speaker_feed(decision, main, live=True)
        elif decision.kind == "fallback" and media is not None and media.fallback is not None:
            if not media.fallback_playing:
                media.fallback.go()
                media.fallback_playing = True
            feed = await self._speaker_feed(decision, media.fallback, live=False)
        else:
            text = slate_text(self.event.info.name, decision, self._speakers)
            picture = await asyncio.to_thread(self._slates.render, text)
            feed = Feed("slate", still=picture, description=text[0])
        log.info("on air: %s", feed.description or feed.label)
        self.program.cut(feed)

    async def _speaker_feed(self, decision: OnAir, source: Source, *, live: bool) -> Feed:
        assert decision.speaker is not None
        speaker = self._speakers[decision.speaker]
        graphics = self._graphics.get(speaker.id)
        if graphics is None:
            graphics = await asyncio.to_thread(self._speaker_graphics, speaker)
            self._graphics[speaker.id] = graphics
        overlay, card = graphics
        description = speaker.name if live else f"{speaker.name} (recorded)"
        return Feed(speaker.id, source, card, overlay, LOWER_THIRD_SECONDS, description)

    def _speaker_graphics(self, speaker: SpeakerSpec) -> tuple[Overlay, Plane]:
        """Their lower third, and the card shown while their source has no picture (an
        audio-only clip or message)."""
        spec = self.event.program
        look = Appearance(speaker.name, speaker.title, speaker.photo)
        return (
            lower_third(spec.width, spec.height, speaker.name, speaker.title),
            speaker_card(spec.width, spec.height, look),
        )

    # -- what the console, the API and /metrics read -------------------------------------------
    def snapshot(self) -> ShowSnapshot:
        cue, on_air = self._cue, self._on_air
        sources = tuple(s.snapshot() for m in self._media.values() for s in m.sources())
        sources += tuple(s.snapshot() for s in self.green_room.sources().values())
        return ShowSnapshot(
            event=self.event.info.name,
            state=cue.state,
            on_air_kind=on_air.kind if on_air else "slate",
            on_air=self.program.feed.label,
            slate=on_air.slate if on_air else None,
            current=self._view(cue.current),
            next=self._view(cue.next),
            remaining=cue.remaining,
            program=self.program.snapshot(),
            destinations=tuple(self.relay.snapshots()),
            sources=sources,
            speakers=tuple(self._speakers),
            live_speakers=tuple(s for s, spec in self._speakers.items() if spec.live),
            ends_at=None if self.rundown.loop else self.rundown.ends_at,
        )

    def _view(self, slot: Slot | None) -> SlotView | None:
        if slot is None:
            return None
        return SlotView(slot.speaker, self._speakers[slot.speaker].name, slot.start, slot.end)


def _key(slot: Slot) -> tuple[int, float]:
    return (slot.index, slot.start)


def _go(source: Source) -> None:
    if isinstance(source, MediaSource):
        source.go()
    else:
        source.start()
