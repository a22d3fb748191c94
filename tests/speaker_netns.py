"""A speaker's network for browser tests: a network namespace whose uplink is shaped.

Chromium runs inside the namespace (Playwright launches it through a small wrapper that
``ip netns exec``s it, keeping the pipe Playwright drives it by); jalsa stays in the
root namespace and is reached over a veth pair. The speaker's uplink is the veth's
egress inside the namespace: ``limit(kbit)`` puts a ``tc tbf`` on it (burst above one
MTU; a bounded queue, as a mobile network's is), ``limit(None)`` lifts it.
``block_udp()`` is a network that lets no UDP out (a policy rule, no firewall needed);
``cut_downlink()`` one where nothing comes back from jalsa.
Needs root; names start with ``voice`` (one namespace per test run, removed on exit).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType

from chromium import CHROMIUM

BURST_BYTES = 3200  # two MTUs: tbf needs at least one
QUEUE_MS = 400  # how long a packet may wait in the uplink's queue before it is dropped


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class SpeakerNetns:
    def __init__(self, work: Path, index: int = 0) -> None:
        suffix = f"{os.getpid() % 10000}x{index}"
        self.name = f"voice{suffix}"
        self.outside, self.inside = f"voice{suffix}a", f"voice{suffix}b"
        net = 16 + (os.getpid() + index) % 200
        self.jalsa_address, self.speaker_address = f"10.217.{net}.1", f"10.217.{net}.2"
        self.wrapper = work / f"{self.name}-chromium"
        self.rate_kbit: int | None = None

    def __enter__(self) -> SpeakerNetns:
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
            _ip("link", "set", self.inside, "netns", self.name)
            _ip("addr", "add", f"{self.jalsa_address}/30", "dev", self.outside)
            _ip("link", "set", self.outside, "up")
            _ip("-n", self.name, "addr", "add", f"{self.speaker_address}/30", "dev", self.inside)
            _ip("-n", self.name, "link", "set", self.inside, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        self.wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {CHROMIUM} "$@"\n')
        self.wrapper.chmod(0o755)
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        # Deleting jalsa's end deletes the pair at once; the namespace itself may live on
        # a while (a socket of the closed browser still sending into a cut downlink).
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def limit(self, kbit: int | None) -> None:
        """Shape the speaker's uplink to ``kbit`` kbit/s, or lift the limit (None)."""
        if kbit is None:
            subprocess.run(
                ["tc", "-n", self.name, "qdisc", "del", "dev", self.inside, "root"],
                capture_output=True,
            )
        else:
            subprocess.run(
                [
                    "tc", "-n", self.name, "qdisc", "replace", "dev", self.inside, "root",
                    "tbf", "rate", f"{kbit}kbit", "burst", str(BURST_BYTES),
                    "latency", f"{QUEUE_MS}ms",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
        self.rate_kbit = kbit

    def block_udp(self) -> None:
        """No UDP leaves the namespace (TCP does): WebRTC's ICE cannot succeed."""
        _ip("-n", self.name, "rule", "add", "ipproto", "udp", "prohibit", "pref", "100")

    def cut_downlink(self, cut: bool = True) -> None:
        """Nothing from jalsa reaches the speaker any more (its RTCP reports, its answers
        to ICE checks, HTTP): every packet out of jalsa's end of the veth is dropped (a
        FIFO of length 0; tc's drop actions are not built into this kernel). ``False``
        mends it."""
        if cut:
            subprocess.run(
                ["tc", "qdisc", "replace", "dev", self.outside, "root", "pfifo", "limit", "0"],
                check=True, capture_output=True,
            )  # fmt: skip
        else:
            subprocess.run(["tc", "qdisc", "del", "dev", self.outside, "root"], capture_output=True)

    def secure_origin_args(self, port: int) -> list[str]:
        """Chromium flags that let the page at jalsa's veth address use the camera and
        microphone (a plain-http origin on a non-loopback address otherwise may not)."""
        return [f"--unsafely-treat-insecure-origin-as-secure=http://{self.jalsa_address}:{port}"]
