"""The edge's fan-out: the contribution's packets into a :class:`relays.relay.Relay`.

The relay's templates are the demuxed streams of the contribution that started it
(PyAV copies their codec parameters, the FLV sequence headers among them, into every
output). A studio that reconnects with the same streams and a timeline that goes on
(the program's own timestamps: they never go back while the studio runs) keeps the
same relay, so the destinations stay connected across a contribution blip; new
streams (another encode) or a timeline that starts over (the studio restarted) start a
new relay. The container the templates come from stays open as long as its relay.

Each relay has its :class:`orchestrator.edge.blip_cover.BlipCover`: the studio's packets
go through it onto the relay's one output timeline, and it covers a stalled
contribution with the pre-encoded slate (docs/edge.md, "Uplink blips").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from av.container import InputContainer
from av.stream import Stream

from orchestrator.edge.blip_cover import BlipCover
from orchestrator.edge.mirror_ladders import MirrorLadders
from orchestrator.edge.roster import Roster
from orchestrator.edge.slate_loop import studio_format
from orchestrator.edge.uplink_outages import UplinkOutages
from orchestrator.event.destination_spec import DestinationSpec
from orchestrator.program.ladder import RenditionSnapshot
from relays.destination import DestinationSnapshot
from relays.packet import EncodedPacket
from relays.relay import Relay

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ContributionSnapshot:
    """The contribution link as the edge sees it.

    Attributes:
        up: a studio is sending now.
        studio: the name the studio gave (``Jalsa-Studio``), "" before any.
        received_bytes: body bytes ever received.
        contributions: contributions accepted (the first, then each reconnect).
        refused: contributions refused (a wrong or missing key).
        relays: relays started (more than one: the streams or the timeline changed).
        program_seconds: the program time of the newest packet received, None before.
        idle_seconds: seconds since the last byte arrived, None before any.
        slate_on: the blip slate covers a stalled contribution now.
        slate_seconds: seconds the slate has been on, in all.
        blips: stalls the slate covered.
    """

    up: bool
    studio: str
    received_bytes: int
    contributions: int
    refused: int
    relays: int
    program_seconds: float | None
    idle_seconds: float | None
    slate_on: bool
    slate_seconds: float
    blips: int


def _signature(stream: Stream) -> tuple[object, ...]:
    ctx = stream.codec_context
    return (stream.type, ctx.name, bytes(ctx.extradata or b""))


class Fanout:
    """Owns the edge's relay; see the module docstring. Thread-safe."""

    def __init__(
        self,
        destinations: Sequence[DestinationSpec],
        state_dir: Path,
        outages: UplinkOutages | None = None,
    ) -> None:
        # steered from the studio (control.py)
        self.roster = Roster(destinations, on_remove=self._mirror_removed)
        self._state_dir = state_dir
        self._outages = outages or UplinkOutages("edge", (), None)
        self._lock = threading.Lock()
        self._relay: Relay | None = None
        self._cover: BlipCover | None = None
        self._ladders: MirrorLadders | None = None
        self._closed = False  # packets still demuxed while the edge stops go nowhere
        self._container: InputContainer | None = None
        self._signature: tuple[object, ...] = ()
        self._newest: float | None = None
        self._relays = 0
        self._up = 0
        self._studio = ""
        self._received = 0
        self._last_byte: float | None = None
        self._contributions = 0
        self._refused = 0

    # -- the contribution (event loop) -------------------------------------------------
    def began(self, studio: str) -> None:
        with self._lock:
            self._up += 1
            self._contributions += 1
            self._studio = studio

    def ended(self) -> None:
        with self._lock:
            self._up -= 1

    def received(self, size: int) -> None:
        with self._lock:
            self._received += size
            self._last_byte = time.monotonic()

    def refused(self) -> None:
        with self._lock:
            self._refused += 1

    # -- the end of a contribution (its demux thread) -------------------------------------
    def finished(self) -> None:
        """The studio ended its contribution politely: not a blip (no slate)."""
        with self._lock:
            cover = self._cover
        if cover is not None:
            cover.finished()

    # -- packets (demux thread) ----------------------------------------------------------
    def publish(self, container: InputContainer, packets: list[EncodedPacket]) -> None:
        cover = self._cover_for(container, packets[0].seconds)
        if cover is None:
            return
        cover.studio(packets)
        with self._lock:
            self._newest = max(packets[-1].seconds, self._newest or packets[-1].seconds)

    def _cover_for(self, container: InputContainer, seconds: float) -> BlipCover | None:
        with self._lock:
            if self._closed:
                return None
            if self._container is container and self._cover is not None:
                return self._cover
            video, audio = container.streams.video[0], container.streams.audio[0]
            signature = _signature(video) + _signature(audio)
            old, old_cover, old_ladders = self._relay, self._cover, self._ladders
            goes_on = self._newest is not None and seconds >= self._newest - 1.0
            if old_cover is not None and signature == self._signature and goes_on:
                # Outputs opened from the old streams copied what they need; new ones
                # open from the new container.
                self._container = container
                log.info("contribution resumed: the destinations carry on")
                return old_cover
            self._relay = relay = Relay((video, audio), self._state_dir)
            studio = studio_format(video, audio)
            self._ladders = ladders = MirrorLadders(
                self.roster.specs(), video, audio, studio, self._state_dir
            )
            video_tb, audio_tb = video.time_base, audio.time_base
            assert video_tb is not None and audio_tb is not None  # FLV's: milliseconds
            self._cover = cover = BlipCover(
                _tap(relay, ladders),
                studio,
                {"video": video_tb, "audio": audio_tb},
                self._outages,
            )
            self._container, self._signature, self._newest = container, signature, None
            self._relays += 1
        if old_cover is not None:
            old_cover.close(3.0)
        if old is not None:
            log.info("the contribution's streams or timeline changed: destinations restart")
            old.close(3.0)
        if old_ladders is not None:
            old_ladders.close(3.0)  # before the new ones write the same playlists
        self.roster.start(relay)
        ladders.start()
        cover.start()
        return cover

    def _mirror_removed(self, name: str, timeout: float) -> None:
        ladders = self._ladders
        if ladders is not None:
            ladders.remove(name, timeout)

    # -- views -------------------------------------------------------------------------
    def snapshot(self) -> ContributionSnapshot:
        with self._lock:
            idle = None if self._last_byte is None else time.monotonic() - self._last_byte
            blips = self._outages.snapshot()
            return ContributionSnapshot(
                up=self._up > 0,
                studio=self._studio,
                received_bytes=self._received,
                contributions=self._contributions,
                refused=self._refused,
                relays=self._relays,
                program_seconds=self._newest,
                idle_seconds=idle,
                slate_on=blips.slate_on,
                slate_seconds=blips.slate_seconds,
                blips=blips.blips,
            )

    def destinations(self) -> list[DestinationSnapshot]:
        return self.roster.snapshots()

    def ladders(self) -> dict[str, list[RenditionSnapshot]]:
        """The renditions of each mirror's ladder (none before a contribution)."""
        ladders = self._ladders
        return ladders.snapshots() if ladders is not None else {}

    def close(self, timeout: float) -> None:
        with self._lock:
            self._closed = True
            relay, self._relay = self._relay, None
            cover, self._cover = self._cover, None
            ladders, self._ladders = self._ladders, None
        if cover is not None:
            cover.close(min(1.0, timeout / 4))
        if relay is not None:
            relay.close(timeout * 3 / 4 if ladders is not None else timeout)
        if ladders is not None:
            ladders.close(timeout / 4)
        self._outages.close()


def _tap(relay: Relay, ladders: MirrorLadders) -> Callable[[list[EncodedPacket]], None]:
    """What the blip cover publishes to: the relay, then the mirrors' ladders."""
    if not ladders.active:
        return relay.publish

    def publish(packets: list[EncodedPacket]) -> None:
        relay.publish(packets)
        ladders.feed(packets)

    return publish
