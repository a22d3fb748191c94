"""A real Prometheus (/usr/bin/prometheus) on a free port, scraping given targets.

Started with a generated config and its TSDB in a temp dir; :meth:`query` runs PromQL
through the HTTP API. Stopped (SIGTERM, then kill) on exit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from jalsa_run import free_port
from waiting import wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class PrometheusServer:
    """Args:
    folder: for the config, the TSDB and the log.
    jobs: job name -> ["host:port", ...] scraped every ``interval`` seconds.
    """

    def __init__(self, folder: Path, jobs: dict[str, list[str]], interval: float = 1.0) -> None:
        self.folder = folder
        self.port = free_port()
        lines = [
            "global:",
            f"  scrape_interval: {interval:g}s",
            f"  scrape_timeout: {interval:g}s",
            f"  evaluation_interval: {interval:g}s",
            "scrape_configs:",
        ]
        for job, targets in jobs.items():
            lines += [
                f"  - job_name: {job}",
                "    honor_labels: true",
                "    static_configs:",
                f"      - targets: {json.dumps(targets)}",
            ]
        self.config = folder / "prometheus.yml"
        self.config.write_text("\n".join(lines) + "\n")
        self.log_path = folder / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()}")
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200

        wait_for(
            ready, 30, "prometheus to be ready", ignore=(OSError,), detail=self.log_path.read_text
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now: [{"metric": {...}, "value": [t, "v"]}]."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Until ``expr`` returns something (then return it)."""
        return wait_for(lambda: self.query(expr), timeout, f"{expr} to return something")
