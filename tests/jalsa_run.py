"""Run ``jalsa`` as a user would: a real process, real ports, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def jalsa(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one jalsa command to completion (check, links, …)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class JalsaRun:
    def __init__(
        self,
        event: Path | None,
        state_dir: Path,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        prefix: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        """``args``: more arguments for ``jalsa run`` (like ``--fresh``); ``prefix``: a
        command it runs through (``ip netns exec <ns>``), ``host``: the address its HTTP
        and metrics ports listen on (and the test reaches them at)."""
        self.event = event
        self.args = tuple(args)
        self.prefix, self.host = tuple(prefix), host
        self.state_dir = state_dir
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def __enter__(self) -> JalsaRun:
        self.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self._log is not None:
            self._log.close()

    def start(self) -> None:
        args = [*self.prefix, sys.executable, "-m", "orchestrator.cli", "run"]
        if self.event is not None:
            args.append(str(self.event))
        args += [
            "--http",
            f"{self.host}:{self.http_port}",
            "--metrics",
            f"{self.host}:{self.metrics_port}",
            "--state",
            str(self.state_dir),
            *self.args,
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env
        )

    @property
    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def http(
        self, path: str, token: str | None = None, port: int | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://{self.host}:{port or self.http_port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metrics_text(self) -> str:
        return self.http("/metrics", port=self.metrics_port)[1].decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        samples = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def wait_ready(self, timeout: float = 60) -> None:
        """Until /metrics says the program is up (or the process died: then raise)."""
        self.wait_for(lambda: self.metric("jalsa_program_up") == 1, timeout, "jalsa to be ready")

    def media_seconds(self) -> float:
        """Seconds of program media made so far (the program's clock)."""
        return self.metric("jalsa_program_media_seconds_total") or 0.0

    def media_flows(self, seconds: float) -> float:
        """Until the program has made ``seconds`` more media: a test lets the show run by
        its own clock, not the wall's. Returns the media seconds then."""
        until = self.media_seconds() + seconds
        return self.wait_for(
            lambda: (now := self.media_seconds()) >= until and now,
            seconds + 20,
            f"{seconds:g} s more of program",
        )

    def alive(self) -> None:
        """Raise (with the log) if jalsa has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"jalsa exited with {self.process.returncode}:\n{self.logs}")

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """:func:`waiting.wait_for` while jalsa runs: it raises at once if jalsa exits,
        and a timeout's message ends with the log's tail. An unreachable port counts as
        "not yet" (jalsa still starting)."""

        def alive_and(predicate: Callable[[], T] = predicate) -> T:
            self.alive()
            return predicate()

        return wait_for(
            alive_and,
            timeout,
            what,
            ignore=(OSError, urllib.error.URLError),
            detail=lambda: self.logs[-3000:],
        )

    def links(self, *extra: str) -> dict[str, str]:
        """``jalsa links`` for this run's event and state dir: speaker id → join URL."""
        assert self.event is not None
        result = jalsa(
            "links",
            str(self.event),
            "--base-url",
            f"http://127.0.0.1:{self.http_port}",
            "--state",
            str(self.state_dir),
            *extra,
            env=self.env,
        )
        assert result.returncode == 0, result.stderr
        return dict(line.split(" ", 1) for line in result.stdout.splitlines())

    def token(self) -> str:
        return (self.state_dir / "operator-token").read_text().strip()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, float]:
        """Signal jalsa and wait: (exit code, seconds it took to exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)
