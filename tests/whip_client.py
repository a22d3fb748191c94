"""A WHIP client made of aiortc: a speaker without a browser (solid colour + tone)."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

RGB = tuple[int, int, int]


class ColourTrack(MediaStreamTrack):
    """Solid-colour video at ``fps``; ``paused`` stops frames without closing anything."""

    kind = "video"

    def __init__(self, colour: RGB, fps: int = 15, size: tuple[int, int] = (320, 240)) -> None:
        super().__init__()
        width, height = size
        rgb = np.empty((height, width, 3), dtype=np.uint8)
        rgb[:] = colour
        self._frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        self._fps = fps
        self._index = 0
        self._start = time.monotonic()
        self.flowing = asyncio.Event()  # cleared: no frames, the connection stays up
        self.flowing.set()

    async def recv(self) -> av.VideoFrame:
        self._index += 1
        await asyncio.sleep(max(0.0, self._start + self._index / self._fps - time.monotonic()))
        await self.flowing.wait()
        frame = av.VideoFrame.from_ndarray(self._frame.to_ndarray(), format="yuv420p")
        frame.pts = self._index * 90000 // self._fps
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self._hz = hz
        self._samples = 0
        self._start = time.monotonic()
        self.flowing = asyncio.Event()  # cleared: no frames, the connection stays up
        self.flowing.set()

    async def recv(self) -> av.AudioFrame:
        count = 960
        await asyncio.sleep(max(0.0, self._start + self._samples / 48000 - time.monotonic()))
        await self.flowing.wait()
        n = np.arange(self._samples, self._samples + count)
        tone = (0.3 * 32767 * np.sin(2 * math.pi * self._hz * n / 48000)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += count
        return frame


class WhipClient:
    """Publishes to ``url`` (``http://host:port/whip/<token>``)."""

    def __init__(self, url: str, colour: RGB | None = (0, 200, 0), audio: bool = True) -> None:
        self.url = url
        self.video = ColourTrack(colour) if colour is not None else None
        self.audio = ToneTrack() if audio else None
        self.pc = RTCPeerConnection()
        self.location: str | None = None
        self.status = 0
        self.body = ""
        self.headers: dict[str, str] = {}

    async def publish(self) -> int:
        """POST the offer (made once: a refused POST may be sent again); the status."""
        if self.pc.localDescription is None:
            for track in (self.video, self.audio):
                if track is not None:
                    self.pc.addTransceiver(track, direction="sendonly")
            await self.pc.setLocalDescription(await self.pc.createOffer())
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.url,
                data=self.pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
            ) as response,
        ):
            self.status = response.status
            self.body = await response.text()
            self.headers = dict(response.headers)
            if response.status == 201:
                self.location = response.headers["Location"]
                await self.pc.setRemoteDescription(RTCSessionDescription(self.body, "answer"))
        return self.status

    async def delete(self) -> int:
        assert self.location is not None
        base = self.url.split("/whip/")[0]
        async with aiohttp.ClientSession() as http, http.delete(base + self.location) as response:
            return response.status

    async def close(self) -> None:
        await self.pc.close()
