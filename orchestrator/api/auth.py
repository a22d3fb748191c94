"""The operator token: every /api endpoint needs ``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import HTTPException, Request, status

from orchestrator.secret import Secret

TOKEN_ENV = "JALSA_OPERATOR_TOKEN"
TOKEN_FILE = "operator-token"
MIN_TOKEN_LENGTH = 16


class TokenError(ValueError):
    """The operator token given in the environment is unusable."""


def operator_token(state_dir: Path, env: dict[str, str] | None = None) -> tuple[Secret, bool]:
    """The token from ``JALSA_OPERATOR_TOKEN``, or the one kept in the state dir.

    Returns the token and whether it was created just now (so it is shown once).

    Raises:
        TokenError: the environment's token is shorter than 16 characters.
    """
    environ = os.environ if env is None else env
    value = environ.get(TOKEN_ENV, "")
    if value:
        if len(value) < MIN_TOKEN_LENGTH:
            raise TokenError(
                f"{TOKEN_ENV} is too short: use at least {MIN_TOKEN_LENGTH} characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return Secret(value), False
    path = state_dir / TOKEN_FILE
    if path.exists():
        return Secret(path.read_text().strip()), False
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return Secret(token), True


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
