"""Simulated HLS players on loopback: many live viewers of a mirror, for tests and bench/.

Each player does what a live player does: it loads the master playlist, picks its
rendition, then reloads that media playlist about every second and fetches every new
segment, in order, from the live edge on (its pacing is the player's own behaviour, not a
test waiting for something). What each one got, and when, is recorded, so a test can check
that no player missed a segment, got an error or would have stalled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

RELOAD_SECONDS = 1.0
RENDITIONS = ("program.m3u8", "low.m3u8", "audio.m3u8")
# A player starts playing this long after its first segment came: two target durations
# (hls.js holds three behind the live edge). A new segment is seen up to ~2 s after it is
# listed (the cache keeps a playlist 1 s, the player reloads it every second), so one
# target duration would stall on that alone (measured: up to 0.18 s with 2 s).
START_BUFFER_SECONDS = 4.0


def ladder_event(name: str, also: tuple[dict[str, object], ...] = ()) -> str:
    """The event of the cache test and bench: one testsrc speaker, a 640x360 15 fps program
    and a mirror with the ladder (180p and audio only), and the destinations ``also``."""
    from event_toml import event_toml, program, slot, speaker

    return event_toml(
        name,
        event={"on_end": "slate"},
        program=program(width=640, height=360, fps=15, video_bitrate_kbps=600),
        speakers=[speaker("host", source="testsrc")],
        rundown=[slot("host", "10m")],
        destinations=[
            {
                "name": "mirror",
                "platform": "custom",
                "url": "hls",
                "ladder": {"low_height": 180, "low_video_kbps": 200},
            },
            *also,
        ],
    )


_NUMBER = re.compile(r"-(\d+)\.ts$")
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")


def _durations(playlist: str) -> dict[str, float]:
    """A media playlist's segments, in order, with their #EXTINF durations."""
    durations, duration = {}, None
    for line in playlist.splitlines():
        if match := _EXTINF.match(line):
            duration = float(match.group(1))
        elif line.endswith(".ts"):
            if duration is None:
                raise ValueError(f"{line}: no #EXTINF before it")
            durations[line], duration = duration, None
    return durations


def stalled_seconds(arrivals: Sequence[tuple[float, float]], buffer: float) -> float:
    """How long a player would have stalled (pure): ``arrivals`` are (when a segment came,
    its duration), in play order; playback starts ``buffer`` s after the first came, and
    waits whenever the next segment is not there when it is due."""
    if not arrivals:
        return 0.0
    due, stalled = arrivals[0][0] + buffer, 0.0
    for came, duration in arrivals:
        if came > due:
            stalled += came - due
            due = came
        due += duration
    return stalled


@dataclass
class PlayerResult:
    rendition: str
    segments: list[int] = field(default_factory=list)  # sequence numbers fetched, in order
    errors: list[str] = field(default_factory=list)
    bytes: int = 0
    arrivals: list[tuple[float, float]] = field(default_factory=list)  # (when, duration)

    def stalled(self, buffer: float = START_BUFFER_SECONDS) -> float:
        """Seconds this player would have stalled (:func:`stalled_seconds`)."""
        return stalled_seconds(self.arrivals, buffer)

    @property
    def gaps(self) -> int:
        """Segments skipped between the first and the last one fetched."""
        if not self.segments:
            return 0
        return self.segments[-1] - self.segments[0] + 1 - len(set(self.segments))


async def _player(
    session: aiohttp.ClientSession, base: str, rendition: str, until: float, start: float
) -> PlayerResult:
    loop = asyncio.get_running_loop()
    result = PlayerResult(rendition)
    await asyncio.sleep(start)  # players arrive over the first seconds
    seen: set[str] = set()
    try:
        async with session.get(f"{base}/index.m3u8") as answer:
            master = await answer.text()
        if rendition not in master:
            result.errors.append(f"{rendition} not in the master playlist")
            return result
        while loop.time() < until:
            async with session.get(f"{base}/{rendition}") as answer:
                playlist = await answer.text() if answer.status == 200 else ""
            durations = _durations(playlist)
            names = list(durations)
            new = [n for n in names if n not in seen]
            if not seen:
                new = new[-1:]  # start at the live edge
            seen.update(names)
            for name in new:
                async with session.get(f"{base}/{name}") as answer:
                    body = await answer.read()
                if answer.status != 200 or not body:
                    result.errors.append(f"{name}: {answer.status}")
                    continue
                result.bytes += len(body)
                result.arrivals.append((loop.time(), durations[name]))
                match = _NUMBER.search(name)
                if match:
                    result.segments.append(int(match.group(1)))
            await asyncio.sleep(RELOAD_SECONDS)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        result.errors.append(repr(error))
    return result


async def play(
    base: str, renditions: Sequence[str], players: int, seconds: float
) -> list[PlayerResult]:
    """``players`` players of ``base`` (``http://host/hls/<mirror>``) for ``seconds``,
    spread over ``renditions`` (media playlist names) in turn, arriving over 2 s."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        return await asyncio.gather(
            *(
                _player(session, base, renditions[i % len(renditions)], until, 2.0 * i / players)
                for i in range(players)
            )
        )
