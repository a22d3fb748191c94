"""The recorded-message store: resumable appends, limits, probing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.speakers.messages import (
    MessageRefused,
    MessageStore,
    OffsetMismatch,
    probe,
)


def test_a_resumed_upload_is_probed_and_accepted(clips: Path, tmp_path: Path) -> None:
    data = (clips / "green.mp4").read_bytes()
    store = MessageStore(tmp_path)
    upload = store.create("guest", len(data), "My Message.MP4")
    assert upload.offset == 0 and upload.suffix == ".mp4"
    half = len(data) // 2
    assert store.append(upload.id, "guest", 0, data[:half]).offset == half
    with pytest.raises(OffsetMismatch) as mismatch:
        store.append(upload.id, "guest", 0, data[:half])  # a retry of a chunk that landed
    assert mismatch.value.offset == half
    assert store.get(upload.id, "other") is None  # never another speaker's
    # A new store (a restarted jalsa) resumes from what is on disk.
    again = MessageStore(tmp_path)
    current = again.get(upload.id, "guest")
    assert current is not None and current.offset == half
    done = again.append(upload.id, "guest", half, data[half:])
    path, probed = again.finish(done)
    assert path == tmp_path / "messages" / "guest.mp4"
    assert probed.video and probed.audio and probed.seconds == pytest.approx(3, abs=0.2)
    assert again.accepted(frozenset({"guest"})) == {"guest": str(path)}


def test_limits_and_refusals(tmp_path: Path) -> None:
    store = MessageStore(tmp_path, max_bytes=1000)
    with pytest.raises(MessageRefused, match="larger than"):
        store.create("guest", 1001, "x.mp4")
    with pytest.raises(MessageRefused, match="empty"):
        store.create("guest", 0, "x.mp4")
    upload = store.create("guest", 10, "x.exe")
    assert upload.suffix == ".mp4"
    with pytest.raises(MessageRefused, match="Upload-Length"):
        store.append(upload.id, "guest", 0, b"x" * 11)
    with pytest.raises(KeyError):
        store.append("nope", "guest", 0, b"x")
    done = store.append(upload.id, "guest", 0, b"not media!")
    with pytest.raises(MessageRefused, match="not a video or audio file"):
        store.finish(done)
    assert store.get(upload.id, "guest") is None  # dropped
    # A speaker's new upload replaces their unfinished one.
    first = store.create("guest", 10, "a.mp4")
    store.create("guest", 10, "b.mp4")
    assert store.get(first.id, "guest") is None


def test_probe_refuses_a_file_with_no_media(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(MessageRefused):
        probe(path)
