"""The operator token: every /api endpoint needs ``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import HTTPException, Request, status

from orchestrator.event.secret import Secret, stored_secret

TOKEN_ENV = "JALSA_OPERATOR_TOKEN"
TOKEN_FILE = "operator-token"
MIN_TOKEN_LENGTH = 16


def operator_token(state_dir: Path, env: dict[str, str] | None = None) -> tuple[Secret, bool]:
    """The token from ``JALSA_OPERATOR_TOKEN``, or the one kept in the state dir.

    Returns the token and whether it was created just now (so it is shown once).

    Raises:
        SecretError: the environment's token is shorter than 16 characters.
    """
    return stored_secret(state_dir, TOKEN_FILE, TOKEN_ENV, env, min_length=MIN_TOKEN_LENGTH)


class RequireOperator:
    """A FastAPI dependency: 401 unless the request carries the operator token."""

    def __init__(self, token: Secret) -> None:
        self._token = token.reveal().encode()

    def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self._token
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="operator token required: send 'Authorization: Bearer <token>' "
                "(the token is in JALSA_OPERATOR_TOKEN or <state dir>/operator-token)",
                headers={"WWW-Authenticate": "Bearer"},
            )
