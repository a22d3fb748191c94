"""nginx with the RTMP module: a platform's ingest, on loopback, for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

CONFIG = """\
load_module {module};
daemon on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{ live on; record off; }}
    application rec {{
      live on;
      record all;
      record_path {root}/rec;
      record_unique off;
    }}
  }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NginxRtmp:
    """Start/stop an nginx-rtmp sink in ``root``; ``rec`` records each stream to a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()

    def __enter__(self) -> NginxRtmp:
        self.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    def start(self) -> None:
        # The worker runs as nobody: it must reach and write the record path.
        (self.root / "rec").mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.root / "rec"):
            folder.chmod(0o777)
        for parent in self.root.parents:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
        conf = self.root / "nginx.conf"
        conf.write_text(CONFIG.format(module=MODULE, root=self.root, port=self.port))
        subprocess.run(
            ["nginx", "-c", str(conf), "-p", str(self.root), "-e", str(self.root / "error.log")],
            check=True,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.port}: {self.errors()}")

    def stop(self) -> None:
        pid_file = self.root / "nginx.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, signal.SIGQUIT)  # graceful: recordings are closed
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def url(self, app: str, stream: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    def recording(self, stream: str) -> Path:
        return self.root / "rec" / f"{stream}.flv"

    def errors(self) -> str:
        log = self.root / "error.log"
        return log.read_text() if log.exists() else ""
