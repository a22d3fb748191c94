"""Reading an operator's JSON body: after the token, and never more than 64 KiB of it.

Every ``/api`` route with a body declares the operator dependency (checked before the
route runs) and takes a bare :class:`~fastapi.Request`, never a body parameter: FastAPI
reads and parses a declared body *before* the dependencies, so a 30 MB body without a
token would be read into memory and parsed just to be answered 401. :func:`read_json`
then reads the body as a stream and stops at the cap: a declared ``Content-Length``
over it is refused unread, and a chunked body is cut off at the first chunk past it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import Request

from orchestrator.api.speaker_access import BodyTooLarge, read_body

MAX_JSON_BODY: Final = 64 * 1024


class BodyRefused(Exception):
    """The body cannot be used: ``status`` 413 (over the cap) or 400 (not JSON)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def read_json(request: Request, limit: int = MAX_JSON_BODY, empty: Any = None) -> Any:
    """The JSON value of the body (``empty`` for a body of only whitespace), read up to
    ``limit`` bytes. NaN and Infinity are refused (they are not JSON).

    Raises:
        BodyRefused: 413 over ``limit`` (the rest is not read), 400 not JSON.
    """
    try:
        data = await read_body(request, limit)
    except BodyTooLarge:
        raise BodyRefused(413, f"the body is over {limit // 1024} KiB") from None
    if not data.strip():
        return empty
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyRefused(400, f"not JSON: {exc}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")
