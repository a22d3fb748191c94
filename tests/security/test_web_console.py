"""The console's protections (issue 12, item 10): the join page's headers on ``GET /``
and ``/console-assets/`` (a CSP with ``frame-ancestors 'none'``, X-Frame-Options,
nosniff, no referrer), the schema behind the operator token, and the token kept in
sessionStorage (a tab's), not localStorage (the browser profile's, for good). Before the
fix the console had none of these headers and ``/api/openapi.json`` was public."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest
from web_app import Served, served_app


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("web-console")) as served:
        yield served


@pytest.mark.parametrize("path", ["/", "/console-assets/console.js", "/console-assets/console.css"])
def test_the_console_has_the_join_pages_protections(web: Served, path: str) -> None:
    status, _, response = web.call("GET", path, token=None)
    assert status == 200
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_schema_needs_the_operator_token(web: Served) -> None:
    status, _, _ = web.call("GET", "/api/openapi.json", token=None)
    assert status == 401
    status, _, _ = web.call("GET", "/api/openapi.json", token="not-the-operator-token-00")
    assert status == 401
    status, schema, response = web.call("GET", "/api/openapi.json")
    assert status == 200 and response.headers["Cache-Control"] == "no-store"
    assert "/api/destinations" in schema["paths"]
    # the body read by hand after the token is still described
    add = schema["paths"]["/api/destinations"]["post"]
    assert "application/json" in add["requestBody"]["content"]
    # and no public copy elsewhere
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert web.call("GET", path, token=None)[0] == 404


def test_the_console_keeps_the_token_in_session_storage() -> None:
    script = resources.files("orchestrator.api").joinpath("static/console.js").read_text()
    assert 'sessionStorage.setItem("jalsa-token"' in script
    assert 'localStorage.setItem("jalsa-token"' not in script
    assert 'localStorage.removeItem("jalsa-token")' in script  # an older console's copy
