"""The blip slate in action: a stalled contribution covered, the destinations kept live.

One :class:`BlipCover` per relay. The demux thread hands it the studio's packets
(:meth:`BlipCover.studio`); its own thread (owned: stopped and joined by
:meth:`BlipCover.close`) first encodes the slate loop
(:func:`orchestrator.edge.slate_loop.encode_slate`, at the contribution's parameters),
then watches for a stall: no studio packet for :data:`STALL_SECONDS` puts the slate on,
its packets paced into the relay in real time from where the studio's last packet
ended (the first second of it at once: it covers the time the stall took to be seen).
The studio's first keyframe after that ends the slate (:mod:`orchestrator.edge.timeline`
keeps the one output timeline). When the slate's H.264 parameter sets are not the
studio's, the studio's keyframe that ends the slate carries its own in-band (the
slate's keyframes carry theirs), so decoders switch both ways.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Final

from orchestrator.edge.slate_loop import SlateLoop, StudioFormat, encode_slate
from orchestrator.edge.timeline import Timeline, behind_live
from orchestrator.edge.uplink_outages import UplinkOutages
from relays.packet import EncodedPacket, PacketKind

log = logging.getLogger(__name__)

STALL_SECONDS: Final = 1.0  # no studio packet for this long: the slate goes on
# The studio's backlog after a stall is skipped (see behind_live), but not for longer
# than this once its packets flow again: a studio whose clock fell behind comes back too.
CATCH_UP_SECONDS: Final = 10.0
TICK_SECONDS: Final = 0.02  # the slate thread's pace
BATCH: Final = 64  # slate packets published at once, at most


class BlipCover:
    """See the module docstring. Thread-safe.

    Args:
        publish: the relay's ``publish`` (never blocks).
        studio_format: the contribution's streams, as read on the demux thread.
        time_bases: the contribution's time base per kind (the output timeline's).
        outages: counts the blips and records them for ``jalsa report``.
        stall_seconds: see :data:`STALL_SECONDS`.
    """

    def __init__(
        self,
        publish: Callable[[list[EncodedPacket]], None],
        studio_format: StudioFormat,
        time_bases: dict[PacketKind, Fraction],
        outages: UplinkOutages,
        *,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._publish = publish
        self._format = studio_format
        self._timeline = Timeline(time_bases)
        self._outages = outages
        self._stall = stall_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: SlateLoop | None = None
        self._last_studio: float | None = None  # monotonic arrival of the newest packet
        self._studio_seconds = 0.0  # studio time of the newest packet
        self._stalled: tuple[float, float] = (0.0, 0.0)  # (arrival, studio time) before it
        self._flowing: float | None = None  # the studio's flow since the stall: its start
        self._ended = False  # the studio ended its program: its silence is no stall
        self._anchor = 0.0  # monotonic time the slate's first packet is due
        self._next = 0  # the loop packet due next
        self._loop_start = Fraction(0)  # slate seconds at which the current loop began
        self._thread = threading.Thread(target=self._run, name="blip-slate", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- the demux thread ------------------------------------------------------------------
    def studio(self, packets: list[EncodedPacket]) -> None:
        """The studio's packets onto the output timeline, and into the relay."""
        out: list[EncodedPacket] = []
        with self._lock:
            now, last = time.monotonic(), self._last_studio
            if self._timeline.on_slate and (last is None or now - last >= self._stall):
                self._flowing = now  # the flow after the stall starts (again) here
            self._last_studio, self._ended = now, False
            for packet in packets:
                mapped, switched = self._timeline.studio(packet, self._resumes(packet, now))
                if switched:
                    mapped = self._back(mapped)
                if mapped is not None:
                    out.append(mapped)
            if out:
                self._publish(out)

    def finished(self) -> None:
        """The studio ended its contribution (the body's last chunk): the program is
        over, not stalled, so no slate goes on (until the studio sends again)."""
        with self._lock:
            self._ended = True
        log.info("the studio ended its contribution: no slate")

    def _resumes(self, packet: EncodedPacket, now: float) -> bool:
        """Whether a studio packet may end the slate (only a keyframe will)."""
        self._studio_seconds = max(self._studio_seconds, packet.seconds)
        if not self._timeline.on_slate:
            return True
        arrival, seconds = self._stalled
        live = seconds + (now - arrival)
        flowing = now if self._flowing is None else self._flowing
        return now - flowing > CATCH_UP_SECONDS or not behind_live(packet.seconds, live)

    def _back(self, keyframe: EncodedPacket | None) -> EncodedPacket | None:
        self._outages.ended()
        log.info("the contribution is back: the studio's keyframe ends the slate")
        if keyframe is None or self._loop is None or self._loop.matched:
            return keyframe
        data = self._loop.studio_sets.in_band() + keyframe.data
        return dataclasses.replace(keyframe, data=data)

    # -- the slate thread ------------------------------------------------------------------
    def _run(self) -> None:
        self._outages.opened()
        try:
            loop = encode_slate(self._format)
        except Exception as exc:  # no slate: stalls show as gaps, as before
            log.warning("no blip slate for this contribution: %s", exc)
            return
        log.info(
            "blip slate ready: a %.2f s loop at %dx%d %d fps (%s, parameter sets %s)",
            loop.seconds,
            loop.spec.width,
            loop.spec.height,
            loop.spec.fps,
            loop.spec.preset,
            "the studio's" if loop.matched else "in-band: not the studio's",
        )
        with self._lock:
            self._loop = loop
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                self._tick(loop, time.monotonic())

    def _tick(self, loop: SlateLoop, now: float) -> None:
        if not self._timeline.on_slate:
            last = self._last_studio
            if last is None or now - last < self._stall or not self._timeline.started:
                return
            if self._ended:
                return
            self._timeline.start_slate()
            self._anchor, self._next, self._loop_start = last, 0, Fraction(0)
            self._stalled, self._flowing = (last, self._studio_seconds), None
            self._outages.began(time.time() - (now - last))
            log.warning("contribution stalled (nothing for %.1f s): the slate is on", now - last)
        batch: list[EncodedPacket] = []
        while True:
            packet = loop.packets[self._next]
            if self._anchor + float(self._loop_start + packet.at) > now:
                break
            mapped = self._timeline.slate(packet, self._loop_start)
            if mapped is not None:
                batch.append(mapped)
            self._next += 1
            if self._next == len(loop.packets):
                self._next, self._loop_start = 0, self._loop_start + loop.seconds
            if len(batch) >= BATCH:
                self._publish(batch)
                batch = []
        if batch:
            self._publish(batch)

    def close(self, timeout: float) -> None:
        """Stop the slate thread (within ``timeout`` s: it waits on no I/O but the
        slate's encode)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
