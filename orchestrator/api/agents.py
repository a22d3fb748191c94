"""``POST /agents/<id>/rounds``: where pushing probe agents deliver their rounds.

No operator token: each body is signed with its agent's own key
(:mod:`monitoring.agent_link`), and :class:`~monitoring.agent_ingest.AgentIngest`
decides. The body is read up to 64 KiB (a larger one is 413, unread and counted as
``malformed``). The answer is small JSON, ``{"result": "accepted" | "late round
accepted" | <reason>}``, and never says more about an agent than its own link knows.

An agent the registry does not know makes jalsa re-read it first (in a thread, at most
once a second whoever asks): a volunteer whose link was made a moment ago is accepted at
their first round, not refused until the next periodic re-read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from monitoring.agent_ingest import AgentIngest
from monitoring.agent_link import SIGNATURE_HEADER
from monitoring.round_wire import MAX_BODY
from orchestrator.api.speaker_access import BodyTooLarge, read_body

REREAD_SECONDS: Final = 1.0


def add_agent_routes(app: FastAPI, ingest: AgentIngest) -> None:
    reread = [0.0]  # when an unknown agent last made jalsa re-read the registry

    async def know(agent: str) -> None:
        now = time.monotonic()
        if agent not in ingest.registry.agents and now - reread[0] >= REREAD_SECONDS:
            reread[0] = now
            await asyncio.to_thread(ingest.registry.refresh)

    @app.post("/agents/{agent}/rounds", include_in_schema=False)
    async def agent_round(agent: str, request: Request) -> JSONResponse:
        try:
            body = await read_body(request, MAX_BODY)
        except BodyTooLarge:
            ingest.rejected["malformed"] += 1
            return JSONResponse({"result": "malformed"}, status_code=413)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        await know(agent)
        verdict = ingest.submit(agent, body, signature, time.time())
        return JSONResponse(
            {"result": verdict.text},
            status_code=verdict.status,
            headers={"Cache-Control": "no-store"},
        )
