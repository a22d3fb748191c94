"""The error answers of ``/api``, as its OpenAPI schema states them.

FastAPI documents a 422 with its own validation error body on every route with a
parameter, but no route here lets FastAPI validate anything (bodies are read by hand, see
:mod:`orchestrator.api.body`), and jalsa's own errors have another shape: ``detail``, a
sentence or a list of ``{"key", "message"}``, sometimes the ``field`` at fault (a stale
rundown version also carries the rundown now). :func:`with_problems` states that shape as
every ``/api`` operation's ``default`` answer (so every error status is covered), and the
401 and 429 of the operator token with their headers.
"""

from __future__ import annotations

import copy
from typing import Any, Final

PROBLEM: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "message"],
                        "properties": {"key": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            ],
        },
        "field": {"type": "string", "description": "the request's field at fault"},
    },
}
_REF: Final = {"$ref": "#/components/schemas/Problem"}


def _answer(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _REF}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


def with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's) with jalsa's error answers on every ``/api`` operation."""
    schema = copy.deepcopy(schema)
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation error: never sent here
            responses["401"] = _answer(
                "no operator token, or a wrong one",
                **{"WWW-Authenticate": "Bearer"},
            )
            responses["429"] = _answer(
                "this address sent too many wrong operator tokens",
                **{"Retry-After": "seconds until it may try again"},
            )
            responses["default"] = _answer("an error: what was wrong and, where it helps, how")
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM
    return schema
