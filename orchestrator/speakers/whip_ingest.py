"""WHIP sessions with aiortc: a speaker's offer in, their feed into the green room.

Every session owns an :class:`~aiortc.RTCPeerConnection`, a
:class:`~orchestrator.ingest.webrtc.WebRTCSource`, one reader task per track and one
watch task; :class:`WhipIngest` owns the sessions and the tasks that end them, and
:meth:`WhipIngest.close` ends them all. A session's source joins the green room when
its first media arrives, replacing that speaker's previous session (a rejoin, or a
second tab), so a new session that never gets media never pushes a working one out.

Readers only hand frames over (aiortc has already decoded them in its own thread); the
fitting and resampling run on the source's thread. No token is ever logged here: the
sessions know the speaker id, never the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.stats import RTCInboundRtpStreamStats, RTCTransportStats

from orchestrator.event import SpeakerSpec
from orchestrator.event.ice_servers import IceServer
from orchestrator.ingest.video_gap import skip_lost_video
from orchestrator.ingest.webrtc import WebRTCSource
from orchestrator.program.speaker_card import Appearance
from orchestrator.rundown import SourceState
from orchestrator.show import Show
from orchestrator.speakers.join_problems import JoinProblems
from orchestrator.speakers.offer import Offer, OfferRefused
from orchestrator.speakers.opus_answer import tune_opus
from orchestrator.speakers.quality import Counters, QualityMeter, video_paused
from orchestrator.speakers.sessions import Limits, Phase, SessionsFull, SessionTable
from orchestrator.speakers.status import SpeakerStatus, speaker_status
from orchestrator.speakers.voice_buffer import use_voice_buffer
from orchestrator.speakers.voice_decoder import use_concealing_decoder

log = logging.getLogger(__name__)
# aioice logs every ICE candidate check at INFO: a flood of addresses in the operator's
# log for each join. Its warnings still show.
logging.getLogger("aioice").setLevel(logging.WARNING)

NEGOTIATE_SECONDS: Final = 10.0  # answering (ICE gathering included) must finish by then
NO_MEDIA_SECONDS: Final = 20.0  # a session without media by then has failed (ICE, codecs)
GIVE_UP_SECONDS: Final = 15.0  # media stopped this long: end the session (the page rejoins)
WATCH_SECONDS: Final = 0.25
STATS_SECONDS: Final = 2.0
PICTURES_STALLED: Final = 2.0  # video wanted, audio flowing, no picture this long: unstick
CLOSE_SECONDS: Final = 2.0
SHUTDOWN_SECONDS: Final = 0.6
JALSA_TURN_USER: Final = "jalsa"  # whom jalsa's own TURN logins are made for


def ice_servers(
    servers: Sequence[IceServer], now: float, until: int | None = None
) -> list[RTCIceServer]:
    """The event's ``[[ice_servers]]`` for aiortc: jalsa's own side of a session (TURN
    logins made here, for ``now``, lasting no longer than ``until``: the link's expiry)."""
    result = []
    for server in servers:
        login = server.login(JALSA_TURN_USER, now, until)
        username, credential = login if login is not None else (None, None)
        result.append(RTCIceServer(list(server.urls), username, credential))
    return result


@dataclass(eq=False)
class _Session:
    id: str
    speaker: SpeakerSpec
    pc: RTCPeerConnection
    source: WebRTCSource
    created: float
    generation: int  # of the link it was opened with: a revocation ends the session
    expires: float | None = None  # the link's expiry (clock seconds): the session ends then
    meter: QualityMeter = field(default_factory=QualityMeter)
    readers: set[asyncio.Task[None]] = field(default_factory=set)
    watch: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    live: bool = False
    ending: bool = False


class WhipIngest:
    def __init__(
        self,
        show: Show,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        still_valid: Callable[[str, int], Awaitable[bool]] | None = None,
        problems: JoinProblems | None = None,
    ) -> None:
        """``still_valid(speaker, generation)`` says whether links of that generation
        still work; a session whose link was revoked, or has expired (by ``clock``), is
        ended within a stats interval. ``problems``: the joins that failed before
        connecting (a speaker's entry clears when their media flows)."""
        self._show = show
        self.problems = problems if problems is not None else JoinProblems()
        self._clock = clock
        self._still_valid = still_valid
        live = sum(1 for s in show.event.speakers if s.live)
        self._table = SessionTable(limits or Limits(max_total=min(64, 2 * live + 4)))
        self._sessions: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        use_concealing_decoder()  # a lost voice packet rebuilt, not a hole

    # -- what the API asks ----------------------------------------------------------------
    def status(self, speaker: str) -> SpeakerStatus:
        show = self._show
        return speaker_status(show.rundown, speaker, self._clock(), show.program.feed.label)

    def phase(self, speaker: str, session: str) -> Phase:
        return self._table.phase(speaker, session)

    def connected(self, speaker: str) -> bool:
        source = self._show.green_room.get(speaker)
        return source is not None and source.state is SourceState.READY

    def report_rtt(self, speaker: str, session: str, rtt: object) -> None:
        found = self._sessions.get(session)
        if found is not None and found.speaker.id == speaker:
            found.source.quality = found.meter.reported_rtt(rtt)

    def report_sending(self, speaker: str, session: str, video: object, sent_bps: object) -> None:
        """The page's own view of what it sends: its outgoing bitrate and its video's mode
        (paused for the link: the program shows the speaker's card)."""
        found = self._sessions.get(session)
        if found is None or found.speaker.id != speaker:
            return
        found.source.quality = found.meter.reported_sent(sent_bps)
        paused = video_paused(video)
        if paused is not None and paused != found.source.video_paused:
            found.source.video_paused = paused
            log.info(
                "speaker %s: video %s for the link",
                speaker,
                "paused" if paused else "back on",
            )

    def received_bps(self, speaker: str, session: str) -> float | None:
        """The bits per second arriving on this session's transport, packet headers
        included (None: not known)."""
        found = self._sessions.get(session)
        if found is None or found.speaker.id != speaker:
            return None
        return found.source.quality.bitrate_bps

    async def open(
        self,
        speaker: SpeakerSpec,
        offer: Offer,
        generation: int = 0,
        expires: int | None = None,
    ) -> tuple[str, str]:
        """Answer ``offer`` (made with a link of ``generation`` that expires at
        ``expires``); returns (session id, SDP answer).

        Raises:
            SessionsFull: too many sessions, or the speaker retries too fast.
            OfferRefused: aiortc could not answer the offer.
        """
        if self._closing:
            raise SessionsFull("jalsa is shutting down", 503, 5)
        admitted = self._table.admit(speaker.id, time.monotonic())
        if admitted.supersedes is not None and admitted.supersedes in self._sessions:
            self._spawn(self._end(self._sessions[admitted.supersedes], "a newer attempt"))
        spec = self._show.event.program
        source = WebRTCSource(
            speaker.id,
            Appearance(speaker.name, speaker.title, speaker.photo),
            width=spec.width,
            height=spec.height,
            full_rate=lambda: self.status(speaker.id).full_rate,
            audio_only=not offer.video,
        )
        ice = ice_servers(self._show.event.ice_servers, self._clock(), expires)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        session = _Session(
            admitted.session, speaker, pc, source, time.monotonic(), generation, expires
        )
        self._sessions[session.id] = session
        pc.on("track", lambda track: self._on_track(session, track))
        pc.on("connectionstatechange", session.wake.set)
        try:
            async with asyncio.timeout(NEGOTIATE_SECONDS):
                await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises many kinds on a bad offer
            self._table.finish(session.id, "ended")
            self._spawn(self._end(session, "the offer could not be answered"))
            if isinstance(exc, TimeoutError):
                raise SessionsFull("answering took too long: try again", 503, 2) from None
            reason = str(exc).strip() or type(exc).__name__
            raise OfferRefused(f"cannot answer this offer: {reason[:200]}") from None
        source.start()
        session.watch = asyncio.create_task(self._watch(session), name=f"whip-{speaker.id}")
        log.info(
            "speaker %s: session %s… answered (%s)",
            speaker.id,
            session.id[:4],
            "audio only" if not offer.video else "audio+video",
        )
        return session.id, tune_opus(pc.localDescription.sdp)

    async def end(self, speaker: str, session_id: str) -> bool:
        """End a session on the speaker's request (WHIP DELETE); False if not theirs/open."""
        session = self._sessions.get(session_id)
        if session is None or session.speaker.id != speaker or session.ending:
            return False
        self._table.finish(session_id, "ended")
        self._spawn(self._end(session, "the speaker left"))
        return True

    def end_revoked(self, speaker: str, generation: int) -> int:
        """End the sessions of ``speaker`` opened with links older than ``generation``
        (revoked); how many."""
        sessions = [
            s
            for s in self._sessions.values()
            if s.speaker.id == speaker and s.generation < generation and not s.ending
        ]
        for session in sessions:
            self._table.finish(session.id, "ended")
            self._spawn(self._end(session, "the link was revoked"))
        return len(sessions)

    async def close(self) -> None:
        """End every session now (shutdown): no hold, every task cancelled and awaited."""
        self._closing = True
        for session in list(self._sessions.values()):
            self._table.finish(session.id, "ended")
            session.ending = True
            self._cancel(session)
            session.source.stop()
            self._show.green_room.detach(session.speaker.id, session.source)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sessions = list(self._sessions.values())
        self._sessions.clear()
        # Shutdown has a budget (Show.close gives this a second): close the peers
        # together, then let the worker threads, already told to stop, finish.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await asyncio.gather(*(s.pc.close() for s in sessions), return_exceptions=True)
        deadline = time.monotonic() + 0.2
        for session in sessions:
            await asyncio.to_thread(session.source.join, max(0.0, deadline - time.monotonic()))

    # -- inside a session -----------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, session: _Session, track: MediaStreamTrack) -> None:
        if session.ending or self._closing:
            return
        if track.kind == "audio" and not use_voice_buffer(session.pc.getReceivers(), track):
            log.warning("speaker %s: aiortc's audio buffer not replaced", session.speaker.id)
        reader = asyncio.create_task(self._read(session, track), name=f"whip-{track.kind}")
        session.readers.add(reader)
        reader.add_done_callback(session.readers.discard)

    async def _read(self, session: _Session, track: MediaStreamTrack) -> None:
        source = session.source
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    source.offer_video(frame)
                elif isinstance(frame, av.AudioFrame):
                    source.offer_audio(frame)
                if not session.live and not session.ending:
                    self._went_live(session)

    def _went_live(self, session: _Session) -> None:
        session.live = True
        previous = self._table.went_live(session.id)
        self._show.green_room.attach(session.speaker.id, session.source)
        log.info("speaker %s: media flowing, in the green room", session.speaker.id)
        self.problems.clear(session.speaker.id)
        if previous is not None and previous in self._sessions:
            self._spawn(self._end(self._sessions[previous], "replaced by a newer session"))

    async def _watch(self, session: _Session) -> None:
        next_stats = time.monotonic()  # the first reading is the baseline
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_SECONDS):
                    await session.wake.wait()
            session.wake.clear()
            now = time.monotonic()
            reason = self._failure(session, now)
            if reason is None and now >= next_stats:
                next_stats = now + STATS_SECONDS
                session.source.quality = session.meter.reading(await _counters(session.pc))
                await self._unstick_video(session, now)
                if not await self._valid(session):
                    reason = "the link was revoked"
                elif session.expires is not None and self._clock() >= session.expires:
                    reason = "the link expired"
            if reason is not None:
                self._table.finish(session.id, "ended")
                self._spawn(self._end(session, reason))
                return

    async def _unstick_video(self, session: _Session, now: float) -> None:
        """Pictures wanted (the page sends video; on trial too) but none for a while though
        media flows: a lost packet holds aiortc's video; skip it, ask for a key frame."""
        source = session.source
        if not session.live or source.audio_only:
            return
        picture, media = source.last_picture, source.last_media
        if media is None or now - media > PICTURES_STALLED:
            return
        if picture is not None and now - picture < PICTURES_STALLED:
            return
        for receiver in session.pc.getReceivers():
            video = receiver.track is not None and receiver.track.kind == "video"
            if video and (skipped := await skip_lost_video(receiver)):
                log.info("speaker %s: %d lost video packet(s) skipped", session.speaker.id, skipped)

    async def _valid(self, session: _Session) -> bool:
        check = self._still_valid
        return check is None or await check(session.speaker.id, session.generation)

    def _failure(self, session: _Session, now: float) -> str | None:
        if session.pc.connectionState in ("failed", "closed"):
            return f"connection {session.pc.connectionState}"
        if not session.live and now - session.created > NO_MEDIA_SECONDS:
            return "no media arrived"
        last = session.source.last_media
        if session.live and last is not None and now - last > GIVE_UP_SECONDS:
            return "media stopped"
        return None

    def _cancel(self, session: _Session) -> None:
        current = asyncio.current_task()
        for task in (*session.readers, session.watch):
            if task is not None and task is not current:
                task.cancel()

    async def _end(self, session: _Session, reason: str) -> None:
        """Close the session; its picture holds briefly, then it leaves the green room."""
        if session.ending:
            return
        session.ending = True
        session.source.end(reason)
        log.info("speaker %s: session %s… ended (%s)", session.speaker.id, session.id[:4], reason)
        self._cancel(session)
        tasks = [t for t in (*session.readers, session.watch) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await session.pc.close()
        # The show reads the source as LOST once the hold is over; keep it attached until
        # then so the program holds the picture instead of cutting at once.
        await asyncio.sleep(max(0.0, session.source.hold_left()))
        self._show.green_room.detach(session.speaker.id, session.source)
        session.source.stop()
        await asyncio.to_thread(session.source.join, 1.0)
        self._sessions.pop(session.id, None)


async def _counters(pc: RTCPeerConnection) -> Counters:
    report = await pc.getStats()
    received = lost = bytes_in = 0
    for stats in report.values():
        if isinstance(stats, RTCInboundRtpStreamStats):
            received += stats.packetsReceived
            lost += stats.packetsLost
        elif isinstance(stats, RTCTransportStats):
            bytes_in += stats.bytesReceived
    return Counters(time.monotonic(), bytes_in, received, lost)


__all__ = ["OfferRefused", "SessionsFull", "WhipIngest", "ice_servers"]
