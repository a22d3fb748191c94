"""Audio at Spaces scale: Icecast's own master/slave relay, with two real icecast2 servers.

jalsa pushes the program's audio to the master; the second server relays that mount
(``<relay>``, always on: the config of docs/mirror.md); listeners on both hear it, and
``jalsa_listeners{platform="icecast"}`` is the sum of both servers' listeners (the relay's
own pull from the master not counted).
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from event_toml import event_toml, program, slot, speaker
from icecast_server import Icecast
from jalsa_run import JalsaRun
from waiting import wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.skipif(shutil.which("icecast2") is None, reason="icecast2 is not installed"),
]

MOUNT = "/jalsa.aac"
RELAY = """\
  <relay>
    <server>127.0.0.1</server>
    <port>{port}</port>
    <mount>{mount}</mount>
    <local-mount>{mount}</local-mount>
    <on-demand>0</on-demand>
    <relay-shoutcast-metadata>0</relay-shoutcast-metadata>
  </relay>
"""


class Listener:
    """One listener of ``port``'s mount: reads the stream on its own thread until closed."""

    def __init__(self, port: int) -> None:
        self.received = 0
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.sendall(f"GET {MOUNT} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := self._sock.recv(65536):
                self.received += len(chunk)
        except OSError:
            return

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        listener.close()


def test_listeners_of_master_and_relay_are_summed(
    tmp_path: Path, listeners: list[Listener]
) -> None:
    with ExitStack() as stack:
        master = stack.enter_context(Icecast(tmp_path / "master"))
        relay = Icecast(tmp_path / "relay", extra=RELAY.format(port=master.port, mount=MOUNT))
        event = tmp_path / "event.toml"
        event.write_text(
            event_toml(
                "Radio Jalsa",
                event={"on_end": "slate"},
                program=program(),
                speakers=[speaker("host", source="testsrc")],
                rundown=[slot("host", "10m")],
                destinations=[
                    {
                        "name": "radio",
                        "url": master.source_url(MOUNT.lstrip("/")),
                        "listeners": {
                            "poll_seconds": 5,
                            "relays": [f"http://127.0.0.1:{relay.port}/status-json.xsl"],
                        },
                    }
                ],
            )
        )
        run = stack.enter_context(JalsaRun(event, tmp_path / "state"))
        run.wait_ready()
        wait_for(lambda: MOUNT in master.status(), 30, "jalsa's mount on the master")
        stack.enter_context(relay)  # the relay pulls the mount as soon as it starts
        wait_for(lambda: MOUNT in relay.status(), 30, "the relayed mount", detail=relay.errors)
        listeners += [Listener(master.port) for _ in range(3)]
        listeners += [Listener(relay.port) for _ in range(2)]
        wait_for(
            lambda: all(listener.received > 4096 for listener in listeners),
            30,
            "every listener hearing the program",
        )
        # 3 on the master (+ the relay's own pull, not counted) and 2 on the relay
        run.wait_for(
            lambda: run.metric("jalsa_listeners", platform="icecast") == 5,
            40,
            "jalsa_listeners{platform=icecast} to be 5",
        )
        listeners.pop().close()  # one relay listener leaves
        run.wait_for(
            lambda: run.metric("jalsa_listeners", platform="icecast") == 4,
            40,
            "jalsa_listeners{platform=icecast} to be 4",
        )
        run.alive()
