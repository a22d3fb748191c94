"""nginx with the RTMP module: a platform's ingest, on loopback, for the tests.

:class:`NginxRtmp` runs a real nginx-rtmp in a temp dir on a free port, with two
applications: ``live`` (relays, records nothing) and ``rec`` (``record all``: every stream
published to it is written to ``<root>/rec/<stream>.flv``, so a test can ffprobe what a
"platform" actually received). When nginx closes a recording (its publisher gone) it
touches ``<root>/done/<stream>``: :meth:`NginxRtmp.wait_recorded` waits for that rather
than for a guessed while. Likewise a publish to either app touches
``<root>/published/<stream>`` (:meth:`NginxRtmp.wait_published`).

nginx runs as root here and its worker as ``nobody``: the worker must be able to reach
and write the record dir, so :meth:`NginxRtmp.start` makes ``root`` and the record dir
world-writable and adds search (x) permission to the parents of ``root`` that lack it
(pytest's base temp dir is 0700).

Example::

    with NginxRtmp(tmp_path) as nginx:
        push(nginx.url("rec", "test"))
        nginx.wait_recorded("test")
        probe(nginx.recording("test"))
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Final

from waiting import wait_for

NGINX: Final = "/usr/sbin/nginx"
TOUCH: Final = "/usr/bin/touch"
MODULE: Final = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
_START_ATTEMPTS: Final = 3  # a free port can be taken between choosing and binding it

CONFIG: Final = """\
load_module {module};
daemon on;
pid {pid};
error_log {error_log} warn;
# A graceful quit closes what is left after this, so stop() never hangs on a publisher.
worker_shutdown_timeout 3s;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{ live on; record off; exec_publish {touch} {published_dir}/$name; }}
    application rec {{
      live on;
      record all;
      record_path {record_dir};
      record_unique off;
      exec_publish {touch} {published_dir}/$name;
      exec_record_done {touch} {done_dir}/$name;
    }}
  }}
}}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (an exited daemon may not be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class NginxRtmp:
    """An nginx-rtmp sink in ``root``, standing in for a platform's RTMP ingest.

    Args:
        root: A private directory for the config, pid file, logs and recordings; it is
            also nginx's prefix, so nothing is written outside it.

    Attributes:
        root: The directory above.
        port: The RTMP port on 127.0.0.1 (chosen here, changed by :meth:`start` only if
            it was taken meanwhile).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.port = free_port()
        self._pid: int | None = None

    @property
    def conf_path(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def pid_path(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.root / "logs" / "error.log"

    @property
    def record_dir(self) -> Path:
        return self.root / "rec"

    @property
    def pid(self) -> int | None:
        """The master process id while running."""
        return self._pid

    def url(self, app: str, stream: str) -> str:
        """The RTMP URL of ``stream`` in ``app`` (``"live"`` or ``"rec"``)."""
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    @property
    def done_dir(self) -> Path:
        return self.root / "done"

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    def wait_published(self, stream: str, timeout: float = 10.0) -> None:
        """Until someone has published ``stream`` (to either app).

        Raises:
            AssertionError: nobody did within ``timeout`` seconds.
        """
        marker = self.published_dir / stream
        wait_for(marker.exists, timeout, f"{stream} published", detail=self.errors)

    def recording(self, stream: str) -> Path:
        """Where the ``rec`` app writes ``stream`` (it exists once publishing started)."""
        return self.record_dir / f"{stream}.flv"

    def recorded(self, stream: str) -> bool:
        """Whether nginx has closed ``stream``'s recording and not written to it since
        (a new publisher reopens it)."""
        try:
            done = (self.done_dir / stream).stat().st_mtime_ns
            written = self.recording(stream).stat().st_mtime_ns
        except FileNotFoundError:
            return False
        return done >= written

    def wait_recorded(self, *streams: str, timeout: float = 10.0) -> None:
        """Until the recordings of ``streams`` (default: every one there is) are closed,
        once their publishers have gone.

        Raises:
            AssertionError: one is still open after ``timeout`` seconds.
        """
        names = streams or tuple(path.stem for path in self.record_dir.glob("*.flv"))
        wait_for(
            lambda: [name for name in names if not self.recorded(name)] == [],
            timeout,
            f"nginx to close the recordings of {', '.join(names)}",
            detail=lambda: (
                "still open: "
                + ", ".join(name for name in names if not self.recorded(name))
                + f"\n{self.errors()[-2000:]}"
            ),
        )

    def errors(self) -> str:
        """The error log so far (for assertion messages)."""
        try:
            return self.error_log.read_text()
        except OSError:
            return ""

    def start(self) -> None:
        """Write the config, start nginx and wait until the port accepts connections.

        Raises:
            RuntimeError: If already running, or nginx does not come up (the message
                carries its error log).
        """
        if self._pid is not None:
            raise RuntimeError("nginx already started")
        self._prepare_dirs()
        failure = ""
        for attempt in range(_START_ATTEMPTS):
            if attempt:
                self.port = free_port()
            self.conf_path.write_text(
                CONFIG.format(
                    module=MODULE,
                    pid=self.pid_path,
                    error_log=self.error_log,
                    port=self.port,
                    record_dir=self.record_dir,
                    touch=TOUCH,
                    done_dir=self.done_dir,
                    published_dir=self.published_dir,
                )
            )
            result = subprocess.run(
                [*self._command(), "-e", str(self.error_log)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if result.returncode == 0 and self._wait_listening(10.0):
                return
            failure = result.stderr + self.errors()
            self.stop()
            if "Address already in use" not in failure:
                break
        raise RuntimeError(f"nginx did not start on port {self.port}:\n{failure}")

    def stop(self) -> None:
        """Quit nginx gracefully (recordings are closed), killing it after 10 s.

        Safe to call when not running.
        """
        pid = self._pid if self._pid is not None else self._read_pid()
        self._pid = None
        if pid is None or not _alive(pid) or not self._is_ours(pid):
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [*self._command(), "-s", "quit"], capture_output=True, timeout=10, check=False
            )
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not _alive(pid), 10, "nginx to quit")
            return
        # Only our own master and its workers, by id.
        for victim in [*_children(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)

    def __enter__(self) -> NginxRtmp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        return [NGINX, "-c", str(self.conf_path), "-p", f"{self.root}/"]

    def _prepare_dirs(self) -> None:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.published_dir.mkdir(parents=True, exist_ok=True)
        self.error_log.parent.mkdir(parents=True, exist_ok=True)
        # The worker (nobody) writes recordings here and must traverse down to it.
        for folder in (
            self.root,
            self.record_dir,
            self.done_dir,
            self.published_dir,
            self.error_log.parent,
        ):
            folder.chmod(0o777)
        for parent in self.root.parents:
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o001)

    def _is_ours(self, pid: int) -> bool:
        """Guard against a stale pid file: the master's command line names our config."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.conf_path).encode() in cmdline

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _wait_listening(self, timeout: float) -> bool:
        def listening() -> bool:
            self._pid = self._pid or self._read_pid()
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self._pid is not None

        try:
            wait_for(listening, timeout, "nginx to listen", ignore=(OSError,))
        except AssertionError:
            return False
        return True
