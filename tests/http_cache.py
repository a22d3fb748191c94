"""A real nginx ``proxy_cache`` in front of jalsa's mirror: deploy/nginx/jalsa-mirror.conf.

:class:`HttpCache` runs that very file (its origin, port and cache folder swapped for the
test's) under a minimal nginx.conf in a temp dir, on loopback, and logs every request
with ``$upstream_addr``: a line whose upstream is not ``-`` is a request jalsa served
(:meth:`HttpCache.origin_requests`).
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Final

from jalsa_run import free_port
from waiting import wait_for

NGINX: Final = "/usr/sbin/nginx"
DEPLOYED: Final = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "jalsa-mirror.conf"

MAIN: Final = """\
daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
  log_format origin '$upstream_addr $upstream_cache_status $status $uri';
  access_log {root}/access.log origin;
  log_subrequest on;  # the cache's background refreshes of playlists are requests to jalsa too
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  include {root}/jalsa-mirror.conf;
}}
"""


class HttpCache:
    """nginx with the deployed mirror config, caching ``origin_port`` (jalsa's --http)."""

    def __init__(self, root: Path, origin_port: int) -> None:
        self.root = root.resolve()
        self.origin_port = origin_port
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = DEPLOYED.read_text()
        for deployed, ours in (
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{self.origin_port};"),
            ("listen 8088;", f"listen 127.0.0.1:{self.port};"),
            ("/var/cache/nginx/jalsa-mirror", str(self.root / "cache")),
        ):
            assert deployed in conf, f"{deployed!r} is no longer in {DEPLOYED}"
            conf = conf.replace(deployed, ours)
        (self.root / "jalsa-mirror.conf").write_text(conf)
        # As root, the workers would run as nobody, who cannot write our temp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(MAIN.format(root=self.root, user=user))
        self._process = subprocess.Popen(
            [NGINX, "-c", str(self.root / "nginx.conf"), "-p", f"{self.root}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, 10, "nginx to listen", detail=self.errors)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # fast shutdown of our own master and its worker
            self._process.wait(10)

    def __enter__(self) -> HttpCache:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def errors(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def origin_requests(self) -> Counter[str]:
        """How many requests for each path nginx passed on to jalsa so far."""
        counts: Counter[str] = Counter()
        path = self.root / "access.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            upstream, _status, _code, uri = line.split(" ", 3)
            if upstream != "-":
                counts[uri] += 1
        return counts

    def _listening(self) -> bool:
        import socket

        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"nginx exited:\n{self.errors()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0
