"""Property-based fuzzing of the operator API from its own OpenAPI schema (schemathesis)
and of WHIP with generated SDP (hypothesis), against the real app over real HTTP with the
operator token (issue 12).

Every operation of ``/api/openapi.json`` (fetched with the token, as an operator's tool
would) is called with schemathesis' generated path parameters and bodies, in two passes:
any values, with any JSON value as the body of a route that reads one by hand
(``orchestrator/api/body.py``: none declares it to FastAPI but ``POST /api/destinations``);
then the event's own ids and the fields each such route takes, so the calls get past the
404s and 400s. Checks: without the token only a 401; with it no 5xx, the content type and
the body the schema states for the status, an answer within the client's timeout (no
hang). WHIP gets a real browser-like offer with lines deleted, duplicated, changed or
added, and junk: no 5xx. Bounded: a fixed number of examples, derandomized, so the module
runs in CI in well under a minute.
"""

from __future__ import annotations

import asyncio
import copy
import http.client
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from web_app import TOKEN, Served, served_app

WHIP_EXAMPLES = 80
SPEAKERS = WHIP_EXAMPLES  # live ones: each may open a session once a second, so one each
TIMEOUT = 10.0  # seconds: an answer later than this is a hang
FUZZ = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# What the served event has: the second pass takes only these, and bodies with the
# fields the route reads (hypothesis-jsonschema would fold "these or any string" into
# "any string"), so that generated requests reach past the 404s and 400s too.
KNOWN: dict[str, list[str]] = {
    "speaker": ["host", "guest", "remote"],
    "name": ["mirror", "recording"],
    "item": ["host", "guest"],
}
ANY: dict[str, Any] = {}  # any JSON value at all


def likely(*values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


# The fields of the routes that read their JSON by hand (orchestrator/api/rundown.py's
# docstring lists them); the version is set to the rundown's current one before the call.
RUNDOWN_FIELDS: dict[str, Any] = {
    "item": likely(*KNOWN["item"], "nobody", 3),
    "speaker": likely(*KNOWN["speaker"], "nobody", None),
    "duration": likely("30s", "5m", "1h30m", "0s", "-5s", "", 0, -1, 1e308, 86400 * 400),
    "after": likely(None, *KNOWN["item"], "nobody", 0),
    "text": {"type": "string"},
}
RUNDOWN_BODIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/api/rundown/next"): (),
    ("post", "/api/rundown/take"): ("item", "speaker", "duration"),
    ("patch", "/api/rundown/items/{item}"): ("duration",),
    ("delete", "/api/rundown/items/{item}"): (),
    ("post", "/api/rundown/items"): ("speaker", "duration", "after"),
    ("post", "/api/rundown/move"): ("item", "after"),
    ("post", "/api/rundown/hold"): ("text",),
    ("post", "/api/rundown/resume"): (),
    ("post", "/api/rundown/end"): (),
}


def rundown_body(fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "version": {"type": "integer"},
            **{name: RUNDOWN_FIELDS[name] for name in fields},
        },
        "required": ["version"],
        "additionalProperties": False,
    }


AUDIO_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "muted": likely(True, False, None, 1, "yes"),
        "gain_db": likely(-6, 0, 12, -20, 20, 20.001, -1e308, 1e308, 0.5, "6", None),
    },
    "additionalProperties": False,
}


def fuzzable(schema: dict[str, Any], known: bool) -> dict[str, Any]:
    """``schema`` with a body for every POST, PUT and PATCH that reads one by hand: any
    JSON; or, when ``known``, the fields the route takes, and the event's ids as the only
    values of path parameters."""
    schema = copy.deepcopy(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if known and parameter["in"] == "path" and parameter["name"] in KNOWN:
                    parameter["schema"] = {"enum": KNOWN[parameter["name"]]}
            takes = method in {"post", "put", "patch"} or (method, path) in RUNDOWN_BODIES
            if takes and "requestBody" not in operation:
                shape = ANY
                if known and (method, path) in RUNDOWN_BODIES:
                    shape = rundown_body(RUNDOWN_BODIES[method, path])
                elif known and path.endswith("/audio"):
                    shape = AUDIO_BODY
                operation["requestBody"] = {
                    "required": False,
                    "content": {"application/json": {"schema": shape}},
                }
    return schema


def operations(web: Served, known: bool) -> list[Any]:
    status, schema, _ = web.call("GET", "/api/openapi.json")
    assert status == 200
    loaded = schemathesis.openapi.from_dict(fuzzable(schema, known))
    found = [result.ok() for result in loaded.get_all_operations()]
    found.sort(key=lambda operation: operation.path == "/api/rundown/end")  # it ends all
    assert len(found) >= 25  # the whole API, not a schema that lost its routes
    return found


@pytest.mark.parametrize(("known", "examples"), [(False, 6), (True, 10)], ids=["any", "known"])
def test_the_operator_api_has_no_5xx_and_answers_as_its_schema_says(
    web: Served, known: bool, examples: int
) -> None:
    base = f"http://127.0.0.1:{web.port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    checks = [not_a_server_error, content_type_conformance, response_schema_conformance]
    answered: Counter[tuple[str, int]] = Counter()
    anonymous: set[str] = set()
    with requests.Session() as session:
        for operation in operations(web, known):

            @settings(FUZZ, max_examples=examples)
            @given(case=operation.as_strategy())
            def fuzz(case: schemathesis.Case) -> None:
                rundown = case.path.startswith("/api/rundown")
                if rundown and isinstance(case.body, dict) and "version" in case.body:
                    current = web.call("GET", "/api/rundown")[1]["version"]
                    case.body["version"] = current  # past the 409
                if case.operation.label not in anonymous:  # without the token: only a 401
                    refused = case.call(base_url=base, session=session, timeout=TIMEOUT)
                    assert refused.status_code == 401, (case.operation.label, refused.text)
                    case.validate_response(refused, checks=checks)
                    anonymous.add(case.operation.label)
                response = case.call_and_validate(
                    base_url=base,
                    session=session,
                    headers=headers,
                    checks=checks,
                    timeout=TIMEOUT,
                )
                answered[case.operation.label, response.status_code] += 1

            fuzz()
    print("answers:", sorted(answered.items()))
    assert len({label for label, _ in answered}) >= 25  # the whole API was tried
    if known:  # and the known ids got past the 404s, the fields past the 400s
        done = {label for label, status in answered if status < 300 and label[0] != "G"}
        assert len(done) >= 3 and any("rundown/" in label for label in done), answered
    assert web.call("GET", "/healthz", token=None)[0] == 200


# -- WHIP ----------------------------------------------------------------------------------

_TOKEN_CHARS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789+/=-_"), max_size=12)
_LINE_VALUES = st.one_of(
    _TOKEN_CHARS,
    st.integers(-(2**40), 2**40).map(str),
    st.text(max_size=40),  # anything, unicode included
)
_ADDRESSES = st.sampled_from(
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.9",
        "8.8.8.8",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "2001:db8::1",
        "a1b2c3d4-0000-4000-8000-0123456789ab.local",
        "example.com",
        "",
        "999.1.1.1",
    ]
)
_CANDIDATE = st.builds(
    lambda foundation, component, transport, priority, address, port, kind: (
        f"a=candidate:{foundation} {component} {transport} {priority} {address} {port} typ {kind}"
    ),
    _TOKEN_CHARS,
    st.integers(-1, 300),
    st.sampled_from(["udp", "UDP", "tcp", "sctp", ""]),
    st.integers(-1, 2**33),
    _ADDRESSES,
    st.integers(-1, 70000),
    st.sampled_from(["host", "srflx", "relay", "prflx", "bogus"]),
)
_MEDIA = st.builds(
    lambda kind, port, proto, formats: f"m={kind} {port} {proto} {formats}",
    st.sampled_from(["audio", "video", "application", "text"]),
    st.integers(-1, 70000),
    st.sampled_from(["UDP/TLS/RTP/SAVPF", "RTP/AVP", "UDP/DTLS/SCTP", "x"]),
    st.lists(st.integers(-1, 300).map(str), max_size=4).map(" ".join),
)
_ATTRIBUTE = st.one_of(
    _CANDIDATE,
    st.builds(lambda v: f"a=fingerprint:sha-256 {v}", _TOKEN_CHARS),
    st.builds(lambda v: f"a=ice-ufrag:{v}", _TOKEN_CHARS),
    st.builds(lambda v: f"a=ice-pwd:{v}", _TOKEN_CHARS),
    st.builds(lambda v: f"a=rtpmap:{v}", _LINE_VALUES),
    st.builds(lambda v: f"a=mid:{v}", _LINE_VALUES),
    st.sampled_from(
        [
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
            "a=rtcp-mux",
            "a=setup:actpass",
            "a=setup:active",
            "a=group:BUNDLE 0 1",
            "c=IN IP4 0.0.0.0",
        ]
    ),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(list("abcikmorstuvz")), _LINE_VALUES),
)


def browser_offer() -> list[str]:
    """The lines of a real offer (aiortc's: audio and video, sendonly, its candidates)."""

    async def make() -> str:
        peer = RTCPeerConnection()
        try:
            peer.addTransceiver("audio", direction="sendonly")
            peer.addTransceiver("video", direction="sendonly")
            await peer.setLocalDescription(await peer.createOffer())
            return peer.localDescription.sdp
        finally:
            await peer.close()

    return asyncio.run(make()).splitlines()


def _mutate(lines: list[str], edits: list[tuple[str, int, str]]) -> str:
    lines = list(lines)
    for kind, index, text in edits:
        at = index % (len(lines) + 1)
        if kind == "insert" or not lines:
            lines.insert(at, text)
            continue
        at %= len(lines)
        if kind == "delete":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        else:  # keep the line's type (and attribute name), change its value
            head, colon, _ = lines[at].partition(":")
            lines[at] = f"{head}{colon or '='}{text}" if colon else f"{lines[at][:2]}{text}"
    return "\r\n".join(lines) + "\r\n"


def offers(base: list[str]) -> st.SearchStrategy[str]:
    """A real offer with a few lines deleted, duplicated, changed or added; or junk."""
    edit = st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 200), _ATTRIBUTE),
        st.tuples(st.sampled_from(["delete", "duplicate"]), st.integers(0, 200), st.just("")),
        st.tuples(st.just("change"), st.integers(0, 200), _LINE_VALUES),
    )
    junk = st.one_of(st.binary(max_size=512).map(lambda b: b.decode("latin-1")), st.text())
    mutated = st.lists(edit, min_size=0, max_size=4).map(lambda edits: _mutate(base, edits))
    return st.one_of(mutated, mutated, mutated, junk)


def test_whip_offers_never_get_a_5xx(tmp_path: Path) -> None:
    answered: dict[int, int] = {}
    with served_app(tmp_path, live=SPEAKERS) as web:
        # a speaker may open a session once a second: the next one takes the next offer
        tokens = []
        for speaker in ["remote", *(f"remote{n}" for n in range(2, SPEAKERS + 1))]:
            status, made, _ = web.call("POST", f"/api/speakers/{speaker}/link")
            assert status == 200
            tokens.append(made["url"].rsplit("/", 1)[1])
        turns = itertools.cycle(tokens)
        token = [next(turns)]

        @settings(
            max_examples=WHIP_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(offer=offers(browser_offer()))
        def offer_once(offer: str) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
            try:
                connection.request(
                    "POST",
                    f"/whip/{token[0]}",
                    body=offer.encode("utf-8", "surrogatepass"),
                    headers={"Content-Type": "application/sdp"},
                )
                response = connection.getresponse()
                text = response.read()
            finally:
                connection.close()
            answered[response.status] = answered.get(response.status, 0) + 1
            token[0] = next(turns)
            assert response.status < 500, (response.status, text, offer)
            if response.status == 201:  # an answer: hang up at once (sessions are bounded)
                connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
                connection.request("DELETE", response.headers["Location"])
                assert connection.getresponse().status == 200
                connection.close()

        offer_once()
        assert web.call("GET", "/healthz", token=None)[0] == 200
    print("WHIP answers:", answered)
    assert 429 not in answered  # every offer was checked, none refused as too fast
    assert answered.get(201, 0) >= 5 and answered.get(400, 0) >= 5  # answered and refused
