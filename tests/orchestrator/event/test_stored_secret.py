from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.api.auth import operator_token
from orchestrator.event.secret import SecretError


def test_the_operator_token_is_created_once_private_and_then_reused(tmp_path: Path) -> None:
    token, created = operator_token(tmp_path / "state", env={})
    assert created
    path = tmp_path / "state" / "operator-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = operator_token(tmp_path / "state", env={})
    assert again == token and not created_again
    assert "***" in repr(token) and token.reveal() not in repr(token)


def test_the_environment_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    value = "e" * 24
    token, created = operator_token(tmp_path, env={"JALSA_OPERATOR_TOKEN": value})
    assert token.reveal() == value and not created
    assert not (tmp_path / "operator-token").exists()
    with pytest.raises(SecretError, match="JALSA_OPERATOR_TOKEN is too short"):
        operator_token(tmp_path, env={"JALSA_OPERATOR_TOKEN": "short"})


def test_an_empty_token_file_is_reported_not_used(tmp_path: Path) -> None:
    (tmp_path / "operator-token").write_text("")
    with pytest.raises(SecretError, match="is empty"):
        operator_token(tmp_path, env={})
