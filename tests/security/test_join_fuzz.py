"""Property-based fuzzing of what a speaker's link reaches besides WHIP (issue 12): the
join page's status report and the resumable message upload, with a real link, over real
HTTP. Generated bodies (bytes, JSON of any shape) and headers (``Upload-Length``,
``Upload-Offset``, ``Upload-Name``, ``Content-Type``, ``Content-Length``), in the order a
client uses them (create, then HEAD and PATCH on what was created, or on a made-up id):
never a 5xx, never a hang, and the server still answers after. Bounded and derandomized.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_app import Served

TIMEOUT = 10.0  # seconds: an answer later than this is a hang
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
NUMBERISH = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "1", "8388608", "8388609", "-0", "+5", "1e3", "0x10", " 7", ""]),
    HEADER_TEXT,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
BODY = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=2048),
    st.just(b"x" * 5000),  # over the status report's cap
)
CONTENT_TYPE = st.sampled_from(
    ["application/json", "application/offset+octet-stream", "video/mp4", "text/plain", ""]
)


def call(
    web: Served, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    assert response.status < 500, (method, path, headers, response.status, text[:300])
    return response.status, dict(response.headers)


def without_empty(headers: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if value is not None}


def test_the_status_report_and_the_upload_never_get_a_5xx(web: Served) -> None:
    status, made, _ = web.call("POST", "/api/speakers/remote/link")
    assert status == 200
    join = "/join/" + made["url"].rsplit("/", 1)[1]
    answered: dict[str, set[int]] = {"status": set(), "create": set(), "patch": set()}

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        report=BODY,
        report_type=CONTENT_TYPE,
        length=st.none() | NUMBERISH,
        name=st.none() | HEADER_TEXT,
        create_type=CONTENT_TYPE,
        offset=st.none() | st.just("0") | NUMBERISH,  # "0": the first chunk's, right
        patch_type=st.just("application/offset+octet-stream") | CONTENT_TYPE,
        chunk=st.binary(max_size=4096),
        made_up=st.booleans(),
    )
    def client(
        report: bytes,
        report_type: str,
        length: str | None,
        name: str | None,
        create_type: str,
        offset: str | None,
        patch_type: str,
        chunk: bytes,
        made_up: bool,
    ) -> None:
        code, _ = call(web, "POST", f"{join}/status", {"Content-Type": report_type}, report)
        answered["status"].add(code)
        headers = without_empty(
            {"Upload-Length": length, "Upload-Name": name, "Content-Type": create_type}
        )
        code, created = call(web, "POST", f"{join}/message", headers, b"")
        answered["create"].add(code)
        location = created.get("Location") or created.get("location")
        if made_up or not location:
            location = f"{join}/message/made-up-id-0123456789"
        call(web, "HEAD", location, {})
        headers = without_empty({"Upload-Offset": offset, "Content-Type": patch_type})
        code, _ = call(web, "PATCH", location, headers, chunk)
        answered["patch"].add(code)

    client()
    assert 200 in answered["status"] and len(answered["status"]) > 1
    assert 201 in answered["create"] and len(answered["create"]) > 1
    assert 204 in answered["patch"] and len(answered["patch"]) > 1  # chunks taken, refused
    assert call(web, "GET", "/healthz", {})[0] == 200
