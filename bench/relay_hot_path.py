#!/usr/bin/env python3
"""The Python cost of one RTMP destination per program frame, measured in one thread.

What an extra destination costs is mostly the work its writer does per frame: take the
packets from its queue, shift their shared FLV tags to its timeline, chunk them, and hand
the bytes to the socket. This drives exactly that path (PacketQueue → Publisher →
RtmpPublishSession → Link) against a real nginx-rtmp, as fast as nginx takes it, and
reports the writer thread's CPU time per frame (the packets' shared FLV tags are built
before, as for every destination but the first) (``time.thread_time``): no thread
switches, no waiting, just the work, so changes to the hot path can be compared in
seconds rather than in noisy whole-process runs (``bench/thread_cpu.py`` measures those).

Packets are synthetic with the benchmark job's sizes: 720p30 at 3000 kbit/s (a 2 s GOP,
keyframes 8× an inter frame) and AAC at 128 kbit/s (1024-sample frames at 48 kHz).

    python bench/relay_hot_path.py --frames 3000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from fractions import Fraction

from benchlib import REPO, NginxSink, log, workdir

sys.path.insert(0, str(REPO))

from orchestrator.event.program_spec import ProgramSpec
from orchestrator.program.encoder import ProgramEncoder
from relays.framing import FlvFraming
from relays.packet import EncodedPacket
from relays.packet_queue import PacketQueue
from relays.publisher import Publisher
from relays.rtmp.session import RtmpPublishSession, rtmp_target

FPS = 30
GOP = 60
VIDEO_BYTES = 3_000_000 // 8 // FPS
AUDIO_BYTES = 128_000 // 8 * 1024 // 48_000


def frames(count: int) -> list[list[EncodedPacket]]:
    """Per frame, the packets the program hands the relay (video, then its audio)."""
    inter = int(VIDEO_BYTES * GOP / (GOP + 7))
    out: list[list[EncodedPacket]] = []
    samples = 0
    for index in range(count):
        key = index % GOP == 0
        nal = os.urandom((8 * inter if key else inter) - 4)
        packets = [
            EncodedPacket(
                "video", b"\x00\x00\x00\x01" + nal, index, index, Fraction(1, FPS), key, 1
            )
        ]
        while samples * FPS < (index + 1) * 48_000:
            audio = os.urandom(AUDIO_BYTES)
            packets.append(
                EncodedPacket("audio", audio, samples, samples, Fraction(1, 48_000), True, 1024)
            )
            samples += 1024
        out.append(packets)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args(argv)
    encoder = ProgramEncoder(
        ProgramSpec(1280, 720, FPS, 3000, 128, GOP // FPS, "veryfast")
    )  # only its streams, for the stream's start
    templates = (encoder.video_stream, encoder.audio_stream)
    work = frames(args.frames)
    for packet in (p for packets in work for p in packets):
        packet.flv_tag()  # built once for all destinations: not an extra one's cost
    with NginxSink(workdir("jalsa-hot-path-")) as nginx:
        session = RtmpPublishSession(rtmp_target(nginx.url("live", "hot"), None))
        target = session.target
        publisher = Publisher.connect(
            target.host,
            target.port,
            session,
            lambda: FlvFraming(session, templates, audio_only=False),
            tls=None,
            deadline=time.monotonic() + 5,
            cancelled=lambda: False,
            stall_timeout=5.0,
        )
        queue = PacketQueue(6.0, 8 << 20)
        started_cpu, started = time.thread_time(), time.monotonic()
        for packets in work:
            queue.put_many(packets)
            while (packet := queue.get(0.0)) is not None:
                while not publisher.accepts():
                    publisher.service(0.05)
                publisher.write(packet)
            publisher.service(0.0)
        while publisher.pending:
            publisher.service(0.05)
        cpu, wall = time.thread_time() - started_cpu, time.monotonic() - started
        publisher.finish(time.monotonic() + 2)
    per_frame = cpu / args.frames * 1e6
    log(f"{args.frames} frames in {wall:.2f} s wall")
    print(f"writer CPU per frame: {per_frame:.1f} us")
    print(f"at {FPS} fps: {per_frame * FPS / 1e6:.4f} cores per destination")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
