"""Stored secrets (the operator token, the link secret, the event id): made once 0600 in a
0700 state dir; a file that is too short, open to others or not a plain file is refused
with a message naming it and the fix."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.api.auth import operator_token
from orchestrator.event.secret import SecretError, private_dir
from orchestrator.speakers.links import load_secret
from orchestrator.speakers.messages import MessageStore


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


def _stored(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    os.chmod(path, mode)


def test_an_empty_or_short_token_file_is_refused_naming_it_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "operator-token"
    for text in ("", "x", "y" * 31):
        _stored(path, text)
        with pytest.raises(SecretError) as info:
            operator_token(tmp_path, env={})
        message = str(info.value)
        assert str(path) in message and "too short" in message and "delete it" in message
    _stored(path, "z" * 32)
    assert operator_token(tmp_path, env={})[0].reveal() == "z" * 32


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o666, 0o644])
def test_a_secret_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    # Checked from the file's mode bits (fstat), so it holds when the tests run as root.
    path = tmp_path / "operator-token"
    _stored(path, "s" * 43, mode)
    with pytest.raises(SecretError) as info:
        operator_token(tmp_path, env={})
    assert str(path) in str(info.value) and f"chmod 600 {path}" in str(info.value)
    path.rename(tmp_path / "secret")  # the link secret: the same rule
    with pytest.raises(SecretError, match="other users"):
        load_secret(tmp_path, env={})


def test_a_symlinked_secret_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    _stored(target, "s" * 43)
    (tmp_path / "operator-token").symlink_to(target)
    with pytest.raises(SecretError, match="plain file"):
        operator_token(tmp_path, env={})


def test_the_state_dir_and_messages_are_made_0700(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    operator_token(state, env={})
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    store = MessageStore(state, speakers=["guest"])
    store.create("guest", 10, "clip.mp4")
    for folder in (state / "messages", state / "messages" / "uploads"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_an_existing_open_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)
    assert private_dir(state) == state
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_shared_folder_is_refused_not_changed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    with pytest.raises(SecretError, match="folder of its own"):
        operator_token(shared, env={})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(SecretError, match="not a directory"):
        operator_token(afile, env={})


def test_racing_creators_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: operator_token(tmp_path, env={}), range(16)))
    assert len({token.reveal() for token, _ in made}) == 1
    assert sum(created for _, created in made) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["operator-token"]  # no temporary left
