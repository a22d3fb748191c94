"""The show: runs the live rundown, owns the sources, cuts the program, feeds the relays.

This is the asyncio side of the media path. Ten times a second, and at once after an
operator's change, it asks the rundown what should be on air now, starts the sources of
the current and the next item (clips armed on their first frame, pulled streams
connected ahead of time), and when the decision changes it cuts the program to the new
feed (the program starts every cut with a keyframe). Media work stays on the program,
source and destination threads; this loop only coordinates.

The rundown is a :class:`~orchestrator.live_rundown.LiveRundown` held by a
:class:`~orchestrator.rundown_control.RundownControl`: operators change it through
:meth:`Show.operate` (the API), the change is journaled, and the next step cuts. What
consoles read: :meth:`Show.rundown_status`, and :attr:`Show.rundown_changes` with
:meth:`Show.wait_rundown_change` to push a change as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitoring.uplink import UplinkEstimate, UplinkMeter
from orchestrator.event import Event, SpeakerSpec
from orchestrator.event.edge_spec import studio_outputs
from orchestrator.event.states import OnAirKind
from orchestrator.ingest.green_room import GreenRoom
from orchestrator.ingest.media_source import MediaSource
from orchestrator.live_rundown import Change, LiveState
from orchestrator.program.graphics import Overlay, Plane, lower_third
from orchestrator.program.ladder import Ladders, RenditionSnapshot
from orchestrator.program.program import Feed, Program, ProgramSnapshot
from orchestrator.program.slates import SlateCache, slate_text
from orchestrator.program.source import Source, SourceSnapshot
from orchestrator.program.speaker_card import Appearance, speaker_card
from orchestrator.rundown import Cue, OnAir, SlateName, Slot, SourceState, decide
from orchestrator.rundown_control import RundownControl
from orchestrator.slot_media import SlotMedia, SlotSources, key
from relays.destination import DestinationSnapshot
from relays.edge_remote import EdgeRemote
from relays.relay import Relay

log = logging.getLogger(__name__)

TICK = 0.1
LOWER_THIRD_SECONDS = 8.0
# Ended by the operator with on_end = "stop": the end slate goes out this long first
# (the rundown's own end stops at its end, as scheduled).
END_SLATE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SlotView:
    speaker: str
    name: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ShowSnapshot:
    event: str
    state: LiveState
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
    hold: str | None = None  # the stand-by text while the rundown is held
    # Per HLS mirror with a ladder: its extra renditions (frames, drops, bytes, error).
    ladders: dict[str, list[RenditionSnapshot]] = field(default_factory=dict)
    # The studio's uplink as the network destinations see it (monitoring/uplink.py).
    uplink: UplinkEstimate | None = None
    # The edges this studio sends through: where a destination added now may go (``via``).
    edges: tuple[str, ...] = field(default=())


class Show:
    """One event on air.

    Args:
        event: the event file.
        state_dir: where the relay writes (recordings, the HLS mirror).
        control: the live rundown and its journal
            (:meth:`RundownControl.open <orchestrator.rundown_control.RundownControl.open>`).
        clock: epoch seconds (the rundown's clock).
    """

    def __init__(
        self,
        event: Event,
        state_dir: Path,
        control: RundownControl,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.event = event
        self._clock = clock
        self._speakers = {s.id: s for s in event.speakers}
        spec = event.program
        # The sink runs on the program thread; the relay fans out without blocking.
        # The HLS mirrors' extra renditions, fed the program's pictures after its encode.
        self.ladders = Ladders(spec, state_dir)
        self.program = Program(
            spec, sink=lambda packets: self.relay.publish(packets), tap=self.ladders.offer
        )
        encoder = self.program.encoder
        self.relay = Relay(
            (encoder.video_stream, encoder.audio_stream),
            state_dir,
            keyframe=self.program.request_keyframe,
        )
        # The destinations an edge sends: seen and steered through it (relays/edge_remote.py).
        used = {d.via for d in event.destinations if d.via is not None}
        self.edges = {e.name: EdgeRemote(e) for e in event.edges if e.name in used}
        self.control = control
        self.rundown = control.live
        self._slates = SlateCache(spec.width, spec.height)
        self._graphics: dict[str, tuple[Overlay, Plane]] = {}  # per speaker, made once
        self._uplink = UplinkMeter()
        # Recorded messages uploaded by live speakers (speaker id -> file): their fallback.
        self.messages: dict[str, str] = {}
        self._media = SlotSources(event, self.messages)
        self._on_air: OnAir | None = None
        self._shot: object = None  # what the decision on air looks like (see _shot_of)
        self._cue: Cue
        self._cue, self._status = control.tick(clock())
        self.green_room = GreenRoom()
        # Closed first by close(): what feeds the green room (the WHIP sessions).
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.finished = asyncio.Event()

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`close` await ``closer()`` before it stops the program."""
        self._closers.append(closer)

    # -- the operators' side (the API; consoles) ----------------------------------------------
    async def operate(self, op: str, args: Mapping[str, object], version: int) -> Change:
        """Apply a rundown operation (a :mod:`~orchestrator.journal` op name and its args)
        made against ``version``; the program cuts at the next step, at once.

        Raises:
            RundownError: refused (StaleVersion for another version); nothing changed.
        """
        return await self.control.operate(op, args, version)

    def rundown_status(self) -> dict[str, Any]:
        """The rundown now, as ``GET /api/rundown`` answers it (JSON-able)."""
        return self.control.status_json(self._clock())

    @property
    def rundown_changes(self) -> int:
        """A counter that grows whenever :meth:`rundown_status` shows something new: an
        operation, or the show moving on (an item ends, the next goes on air)."""
        return self.control.changes

    async def wait_rundown_change(self, seen: int) -> int:
        """Wait until :attr:`rundown_changes` is no longer ``seen``; returns it. A console's
        push loop: ``seen = await show.wait_rundown_change(seen)``, then send
        :meth:`rundown_status` (wrap in ``asyncio.timeout`` to also send a heartbeat)."""
        return await self.control.wait_change(seen)

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until the rundown ends (``on_end = "stop"``) or the task is cancelled."""
        # Destinations that go via an edge are the edge's to send: one contribution each.
        for destination in studio_outputs(self.event.destinations, self.event.edges):
            self.relay.add(destination)
            self.ladders.add(destination, self.program.encoder.video_stream)
        self.program.start()
        drawing = asyncio.create_task(self._draw_graphics(), name="speaker-graphics")
        polls = [asyncio.create_task(e.run(), name=f"edge-{n}") for n, e in self.edges.items()]
        try:
            while True:
                await self._step()
                if self._cue.state == "ended" and self.event.info.on_end == "stop":
                    ended = self.control.ended_at
                    if ended is not None and self._clock() - ended < END_SLATE_SECONDS:
                        await asyncio.sleep(TICK)  # the end slate is on air
                        continue
                    log.info("the rundown has ended")
                    self.finished.set()
                    return
                # A tick, or less: an operator's change wakes the loop at once.
                seen = self.control.changes
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self.control.wait_change(seen)
        finally:
            drawing.cancel()
            for poll in polls:
                poll.cancel()
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
        await asyncio.to_thread(self.ladders.close, within * 0.2)
        self._media.stop()
        stuck = await asyncio.to_thread(self.relay.close, max(0.1, deadline - time.monotonic()))
        if stuck:
            log.warning("closed without a trailer (link blocked): %s", ", ".join(stuck))
        await self._media.join(0.5)
        await self.control.close()

    # -- one step of the loop ---------------------------------------------------------------
    async def _step(self) -> None:
        now = self._clock()
        cue, status = self.control.tick(now)
        self._cue, self._status = cue, status
        on = status.current  # (its held time counts a hold still on)
        aired = (on.id, now - on.start - on.held) if on is not None else None
        await self._media.prepare(cue, now, aired)
        if status.hold is not None:
            self._media.hold()
        current = self._media.current(cue)
        if current is not None:
            current.play_on()
        states: dict[str, SourceState] = {}
        fallback_ready: dict[str, bool] = {}
        if cue.state == "on" and cue.current is not None:
            speaker = cue.current.speaker
            if current is not None and current.main is None:
                current.main_live = self.green_room.get(speaker)
                states[speaker] = self._media.live_state(cue.current, current.main_live)
            elif current is not None and current.main is not None:
                if not current.playing:
                    _go(current.main)
                    current.playing = True
                states[speaker] = current.main.state
            if current is not None and current.fallback is not None:
                fallback_ready[speaker] = current.fallback.state is SourceState.READY
        decision = decide(cue, states, fallback_ready, status.hold)
        if decision.slate == "joining" and current is not None and current.opening_clip:
            return  # no picture yet: keep what is on air a moment longer
        replaced = (
            decision.kind == "speaker"
            and current is not None
            and (current.main or current.main_live) is not self.program.feed.source
        )
        shot = self._shot_of(decision)
        if shot != self._shot or replaced:
            # (replaced: a rejoin gave the on-air speaker a new source)
            await self._cut(decision, current)
            self._shot = shot
        self._on_air = decision

    def _shot_of(self, decision: OnAir) -> object:
        """What a decision puts on screen: a new shot is a cut. An item's source, whatever
        its times (extended, held and resumed); a slate's text (the next item moving
        within the minute, or the one on air being held, shows nothing new)."""
        if decision.kind == "slate":
            return slate_text(self.event.info.name, decision, self._speakers)
        return decision.kind, decision.speaker, key(decision.slot) if decision.slot else None

    async def _cut(self, decision: OnAir, media: SlotMedia | None) -> None:
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
        overlay, card = await self._graphics_of(speaker)
        description = speaker.name if live else f"{speaker.name} (recorded)"
        return Feed(speaker.id, source, card, overlay, LOWER_THIRD_SECONDS, description)

    async def _graphics_of(self, speaker: SpeakerSpec) -> tuple[Overlay, Plane]:
        graphics = self._graphics.get(speaker.id)
        if graphics is None:
            graphics = await asyncio.to_thread(self._speaker_graphics, speaker)
            self._graphics[speaker.id] = graphics
        return graphics

    async def _draw_graphics(self) -> None:
        """Draw every speaker's graphics ahead, those of the rundown first, one at a
        time off the loop, so that a cut to anyone (a Take) has them ready."""
        order = [segment.speaker for segment in self.event.rundown] + list(self._speakers)
        for speaker in dict.fromkeys(order):
            await self._graphics_of(self._speakers[speaker])

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
        cue, on_air, status = self._cue, self._on_air, self._status
        sources = self._media.snapshots()
        sources += tuple(s.snapshot() for s in self.green_room.sources().values())
        destinations = tuple(self.relay.snapshots())
        via_edges = tuple(d for edge in self.edges.values() for d in edge.snapshots())
        return ShowSnapshot(
            event=self.event.info.name,
            state=status.state,
            on_air_kind=on_air.kind if on_air else "slate",
            on_air=self.program.feed.label,
            slate=on_air.slate if on_air else None,
            current=self._view(cue.current),
            next=self._view(cue.next),
            remaining=cue.remaining,
            program=self.program.snapshot(),
            destinations=destinations + via_edges,
            sources=sources,
            speakers=tuple(self._speakers),
            live_speakers=tuple(s for s, spec in self._speakers.items() if spec.live),
            ends_at=status.ends_at,
            hold=status.hold,
            ladders=self.ladders.snapshots(),
            uplink=self._uplink.observe(time.monotonic(), destinations),
            edges=tuple(self.edges),
        )

    def speaker_source(self, speaker: str) -> Source | None:
        """Where the speaker's latest picture is (``video()``): a live speaker's session in
        the green room, another's own source while one of their items has it open; None
        for an unknown speaker or when there is none. Call it on the event loop."""
        spec = self._speakers.get(speaker)
        if spec is None:
            return None
        if spec.live:
            return self.green_room.get(speaker)
        return self._media.main_source(speaker)

    def _view(self, slot: Slot | None) -> SlotView | None:
        if slot is None:
            return None
        return SlotView(slot.speaker, self._speakers[slot.speaker].name, slot.start, slot.end)


def _go(source: Source) -> None:
    if isinstance(source, MediaSource):
        source.go()
    else:
        source.start()
