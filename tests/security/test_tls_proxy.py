"""jalsa behind the TLS reverse proxy of docs/security.md: deploy/nginx/jalsa-tls.conf,
run as it is (its ports, certificate and log paths swapped for the test's) by a real nginx
in front of jalsa's real web app.

Speakers' links reach jalsa over TLS and stay out of the access log (their lines have no
URL); links made through the proxy are https:// for the proxy's address; the console's
WebSocket goes through; the guess limits count each client by the address nginx forwards,
not nginx's own; plain http redirects.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
from jalsa_run import free_port
from tls_terminator import Certificates, make_certificates
from waiting import wait_for
from web_app import TOKEN, Served, served_app
from websockets.asyncio.client import connect

from orchestrator.api.link_guesses import MAX_BAD_LINKS

NGINX: Final = "/usr/sbin/nginx"
DEPLOYED: Final = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "jalsa-tls.conf"
MAIN: Final = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  include {root}/jalsa-tls.conf;
}}
"""


@dataclass
class Proxied:
    web: Served
    port: int  # https
    plain_port: int  # http
    root: Path
    certificates: Certificates

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        source: str = "127.0.0.1",
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        context = ssl.create_default_context(cafile=str(self.certificates.ca))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=10, context=context, source_address=(source, 0)
        )
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), response
        finally:
            connection.close()

    def access_log(self) -> str:
        path = self.root / "access.log"
        return path.read_text() if path.exists() else ""

    def errors(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def deployed_config(
    root: Path, origin: int, port: int, plain_port: int, certs: Certificates
) -> str:
    conf = DEPLOYED.read_text()
    for deployed, ours in (
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{origin};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("listen 80;", f"listen 127.0.0.1:{plain_port};"),
        ("/etc/letsencrypt/live/jalsa.example.org/fullchain.pem", str(certs.cert)),
        ("/etc/letsencrypt/live/jalsa.example.org/privkey.pem", str(certs.key)),
        ("/var/log/nginx/jalsa-access.log", str(root / "access.log")),
    ):
        assert deployed in conf, f"{deployed!r} is no longer in {DEPLOYED}"
        conf = conf.replace(deployed, ours)
    return conf


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    work = tmp_path_factory.mktemp("tls-proxy")
    root = work / "nginx"
    root.mkdir()
    certificates = make_certificates(work / "certs")
    port, plain_port = free_port(), free_port()
    with served_app(work) as web:
        conf = deployed_config(root, web.port, port, plain_port, certificates)
        (root / "jalsa-tls.conf").write_text(conf)
        user = "user root;" if os.geteuid() == 0 else ""  # else the workers are nobody
        (root / "nginx.conf").write_text(MAIN.format(root=root, user=user))
        process = subprocess.Popen(
            [NGINX, "-c", str(root / "nginx.conf"), "-p", f"{root}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proxied = Proxied(web, port, plain_port, root, certificates)

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"nginx exited:\n{proxied.errors()}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 10, "nginx to listen", detail=proxied.errors)
        try:
            yield proxied
        finally:
            process.terminate()
            process.wait(10)


def link_through(proxied: Proxied) -> str:
    status, body, _ = proxied.request("POST", "/api/speakers/remote/link", token=TOKEN)
    assert status == 200, body
    url: str = json.loads(body)["url"]
    return url


def test_links_are_made_for_https_and_stay_out_of_the_access_log(proxied: Proxied) -> None:
    url = link_through(proxied)
    assert url.startswith(f"https://127.0.0.1:{proxied.port}/join/")
    path = url.split(str(proxied.port), 1)[1]
    token = path.removeprefix("/join/")
    assert proxied.request("GET", path)[0] == 200
    assert proxied.request("GET", f"{path}/ice")[0] == 200
    assert proxied.request("POST", f"/whip/{token}")[0] == 415  # reached WHIP, no SDP
    assert proxied.request("GET", "/api/state", token=TOKEN)[0] == 200

    def logged() -> str:
        log = proxied.access_log()
        return log if log.count("(a speaker link)") >= 3 and "/api/state" in log else ""

    log = wait_for(logged, 10, "nginx to log the requests", detail=proxied.access_log)
    assert token not in log and "/join/" not in log and "/whip/" not in log, log
    assert '"POST /api/speakers/remote/link HTTP/' in log  # the others as usual


def test_guesses_are_counted_per_client_behind_the_proxy(proxied: Proxied) -> None:
    path = link_through(proxied).split(str(proxied.port), 1)[1]
    for _ in range(MAX_BAD_LINKS):
        assert proxied.request("GET", "/join/not-a-link", source="127.0.0.2")[0] == 401
    status, _, response = proxied.request("GET", path, source="127.0.0.2")
    assert status == 429 and int(response.headers["Retry-After"]) > 0
    # another client through the same nginx is not blocked
    assert proxied.request("GET", path, source="127.0.0.3")[0] == 200


def test_plain_http_is_redirected_to_https(proxied: Proxied) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxied.plain_port, timeout=10)
    try:
        connection.request("GET", "/join/some-link", headers={"Host": "jalsa.example.org"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 301
    assert response.headers["Location"] == "https://jalsa.example.org/join/some-link"
    assert "some-link" not in proxied.access_log()


async def test_the_consoles_live_channel_works_through_the_proxy(proxied: Proxied) -> None:
    context = ssl.create_default_context(cafile=str(proxied.certificates.ca))
    url = f"wss://127.0.0.1:{proxied.port}/api/live"
    async with connect(url, ssl=context) as ws:
        await ws.send(json.dumps({"token": TOKEN}))
        async with asyncio.timeout(10):
            first = json.loads(await ws.recv())
    assert isinstance(first, dict) and first  # the live channel's first state
