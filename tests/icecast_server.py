"""A real Icecast 2 on loopback for the tests: a generated config, a free port, a temp dir."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from pathlib import Path
from types import TracebackType

from waiting import wait_for

CONFIG = """\
<icecast>
  <location>test</location>
  <admin>test@localhost</admin>
  <limits>
    <clients>20</clients>
    <sources>8</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>{password}</source-password>
    <admin-user>admin</admin-user>
    <admin-password>{password}-admin</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket>
    <port>{port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>{root}</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>3</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    {changeowner}
  </security>
{extra}
</icecast>
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Icecast:
    """Start/stop ``icecast2`` in ``root``; ``source_url`` is what jalsa pushes to."""

    def __init__(self, root: Path, password: str = "hackme-source-pw", extra: str = "") -> None:
        """``extra``: more of the config inside ``<icecast>`` (a relay's ``<relay>``)."""
        self.root = root
        self.password = password
        self.extra = extra
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Icecast:
        self.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Icecast will not run as root: it drops to nobody, who must write the logs.
        changeowner = ""
        if os.geteuid() == 0:
            changeowner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
            self.root.chmod(0o777)
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        conf = self.root / "icecast.xml"
        conf.write_text(
            CONFIG.format(
                password=self.password,
                port=self.port,
                root=self.root,
                changeowner=changeowner,
                extra=self.extra,
            )
        )
        with (self.root / "stderr.log").open("wb") as stderr:
            self._process = subprocess.Popen(
                ["icecast2", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        process = self._process

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"icecast exited: {self.errors()}")
            self.status()
            return True

        try:
            wait_for(up, 10, "icecast to serve its status", ignore=(OSError,))
        except (AssertionError, RuntimeError) as error:
            self.stop()
            raise RuntimeError(f"icecast did not start: {self.errors()}") from error

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def source_url(self, mount: str, password: str | None = None) -> str:
        return f"icecast://source:{password or self.password}@127.0.0.1:{self.port}/{mount}"

    def listen_url(self, mount: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mount}"

    def status(self) -> str:
        """The raw status-json.xsl text (Icecast 2.4.4's JSON is malformed with some
        libxslt versions, so it is not parsed here)."""
        url = f"http://127.0.0.1:{self.port}/status-json.xsl"
        with urllib.request.urlopen(url, timeout=3) as response:
            return str(response.read().decode("utf-8", "replace"))

    def errors(self) -> str:
        parts = [self.root / "error.log", self.root / "stderr.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())
