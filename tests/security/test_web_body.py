"""/api bodies (issue 12, item 2): the operator token is checked before a byte of the body
is read, and a body is read as a stream up to 64 KiB at most (413 past it).

Before the fix ``POST /api/destinations`` declared its body to FastAPI, which reads and
parses a declared body before the dependencies run: a 30 MB body with no token was read
and parsed (RSS +118 MB) to be answered 401. A raw socket shows what the server does
before the body is sent: it must answer at once, from the headers alone."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from web_app import TOKEN, Served, served_app

from orchestrator.api.body import MAX_JSON_BODY

HUGE = 30 * 1024 * 1024
_PARAMS = {"name": "mirror", "item": "host", "message_id": "m0", "speaker": "host"}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("web-body")) as served:
        yield served


def body_routes(served: Served) -> list[tuple[str, str]]:
    """(method, path) of every /api route that may take a body (params filled in)."""
    routes = []
    for route in served.app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/"):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: _PARAMS.get(m.group(1), "x"), route.path)
        routes += [(m, path) for m in sorted(route.methods) if m in {"POST", "PATCH", "PUT"}]
        if "DELETE" in route.methods:
            routes.append(("DELETE", path))
    return routes


def head_only(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send only the request head (a body is announced, none sent): the status the server
    answers within 3 s, and what it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        fields = [f"{key}: {value}" for key, value in headers.items()]
        lines = [f"{method} {path} HTTP/1.1", "Host: jalsa", *fields]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            return 0, answer  # still waiting for the body
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return (int(match.group(1)) if match else 0), answer


def test_every_body_route_is_covered(web: Served) -> None:
    routes = body_routes(web)
    assert ("POST", "/api/destinations") in routes
    assert ("POST", "/api/rundown/next") in routes
    assert ("POST", "/api/speakers/host/audio") in routes
    assert ("POST", "/api/messages/m0/approve") in routes


def test_without_a_token_every_body_route_answers_401_before_the_body(web: Served) -> None:
    announced = {"Content-Type": "application/json", "Content-Length": str(HUGE)}
    answers = {(m, p): head_only(web.port, m, p, announced)[0] for m, p in body_routes(web)}
    assert answers and all(status == 401 for status in answers.values()), answers


def test_a_wrong_token_is_401_before_the_body_too(web: Served) -> None:
    headers = {
        "Authorization": "Bearer not-the-operator-token-000",
        "Content-Type": "application/json",
        "Content-Length": str(HUGE),
    }
    assert head_only(web.port, "POST", "/api/destinations", headers)[0] == 401


def test_with_the_token_an_announced_body_over_the_cap_is_413_unread(web: Served) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Content-Length": str(MAX_JSON_BODY + 1),
    }
    answers = {(m, p): head_only(web.port, m, p, headers)[0] for m, p in body_routes(web)}
    # 413 from every route that reads a body; 404 from one whose path names no such item
    # (checked before the body); never a wait for the body.
    assert all(status in (413, 404) for status in answers.values()), answers
    assert answers[("POST", "/api/destinations")] == 413
    assert answers[("POST", "/api/rundown/next")] == 413
    assert answers[("POST", "/api/speakers/host/audio")] == 413


def test_a_chunked_body_is_cut_off_at_the_cap(web: Served) -> None:
    """No Content-Length to refuse by: the server stops reading past 64 KiB and answers
    413 while the client still sends; far less than the whole body is ever sent."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
        head = (
            "POST /api/destinations HTTP/1.1\r\nHost: jalsa\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
        sent, answer = 0, b""
        sock.settimeout(0.05)
        deadline = time.monotonic() + 10
        while b"\r\n" not in answer and time.monotonic() < deadline and sent < HUGE:
            try:
                sock.sendall(chunk)
                sent += 16384
            except OSError:  # the server closed: read its answer
                break
            with contextlib.suppress(TimeoutError):
                answer += sock.recv(4096)
        sock.settimeout(5)
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 4 * 1024 * 1024


def test_bodies_within_the_cap_still_work(web: Served, tmp_path: Path) -> None:
    status, body, _ = web.call("POST", "/api/rundown/next", {"version": 999})
    assert status == 409 and body["field"] == "version"
    status, body, _ = web.call("POST", "/api/speakers/host/audio", {"gain_db": -3})
    assert status == 200 and body["gain_db"] == -3
    status, body, _ = web.call("POST", "/api/destinations", {"name": "yt", "platform": "youtube"})
    assert status == 422 and any(p["key"] == "key" for p in body["detail"])


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"{not json", 400), (b"[1, 2]", 422), (b'{"name": NaN}', 400)],
    ids=["not-json", "not-an-object", "nan"],
)
def test_a_destination_body_that_is_not_an_object_is_refused(
    web: Served, raw: bytes, status: int
) -> None:
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
        head = (
            f"POST /api/destinations HTTP/1.1\r\nHost: jalsa\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + raw)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 %d" % status), answer[:300]
    assert b'"key":"body"' in answer
