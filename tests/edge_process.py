"""A ``jalsa edge`` process and the files of an edge test: a studio event whose
destinations go via the edge, and the edge's own file (tests/e2e/test_edge_blip.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import BinaryIO

from event_toml import event_toml, slot, speaker
from nginx_rtmp import NginxRtmp
from prometheus_client.parser import text_string_to_metric_families
from tls_terminator import Certificates

EDGE_KEY = "edge-contribution-key-4f9a1c77e2"
STREAMS = ("edge-yt-3f1a", "edge-fb-9c2e")


class EdgeProcess:
    """``jalsa edge`` as ops would run it: a process, real ports, TLS, signals."""

    def __init__(
        self, edge_file: Path, state_dir: Path, listen: int, metrics: int, host: str = "127.0.0.1"
    ) -> None:
        """``host``: the address ``--listen`` binds (the contribution route's)."""
        self.edge_file, self.state_dir, self.host = edge_file, state_dir, host
        self.listen, self.metrics_port = listen, metrics
        self.log_path = state_dir.parent / "edge.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> None:
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "edge", str(self.edge_file),
             "--listen", f"{self.host}:{self.listen}",
             "--metrics", f"127.0.0.1:{self.metrics_port}", "--state", str(self.state_dir)],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "EDGE_KEY": EDGE_KEY},
        )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    @property
    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the edge's /metrics (None when it has no such series)."""
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return None

    def __enter__(self) -> EdgeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self._log is not None:
            self._log.close()


def edge_file(
    path: Path,
    nginx: NginxRtmp,
    certs: Certificates,
    streams: tuple[str, str] = STREAMS,
    more: str = "",
) -> Path:
    """The edge's file: destinations ``yt`` and ``fb`` publish ``streams`` to nginx's rec;
    ``more``: further TOML (destination tables) at its end."""
    rec = f"rtmp://127.0.0.1:{nginx.port}/rec"
    path.write_text(
        f'[edge]\nname = "test-edge"\nkey = "${{EDGE_KEY}}"\n'
        f'tls_cert = "{certs.cert}"\ntls_key = "{certs.key}"\n'
        + "".join(
            f'\n[[destinations]]\nname = "{name}"\nurl = "{rec}"\nkey = "{stream}"\n'
            for name, stream in zip(("yt", "fb"), streams, strict=True)
        )
        + more
    )
    return path


def studio_file(
    path: Path, nginx: NginxRtmp, certs: Certificates, edge_port: int, preset: str = "ultrafast"
) -> Path:
    """The studio's event: ``yt`` and ``fb`` via the edge at ``edge_port`` (the edge's
    own, or a proxy's in front of it), a local recording; a small program at ``preset``."""
    rec = f"rtmp://127.0.0.1:{nginx.port}/rec"
    text = event_toml(
        "Edge Test",
        event={"on_end": "slate"},
        program={"width": 320, "height": 180, "fps": 15, "preset": preset},
        speakers=[speaker("host", source="testsrc")],
        rundown=[slot("host", "10m")],
        destinations=[
            {"name": "yt", "url": rec, "key": "unused-at-the-studio", "via": "test-edge"},
            {"name": "fb", "url": rec, "key": "unused-at-the-studio-2", "via": "test-edge"},
            {"name": "local", "url": "local.mkv"},
        ],
    )
    path.write_text(
        text
        + f'\n[[edges]]\nname = "test-edge"\nurl = "https://127.0.0.1:{edge_port}/contribute"\n'
        f'key = "${{EDGE_KEY}}"\nca_file = "{certs.ca}"\n'
    )
    return path
