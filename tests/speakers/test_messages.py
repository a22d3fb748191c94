"""The recorded-message store: resumable appends, limits, probing; approval, replacement,
deletion, and what survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.event.event_file import parse_event
from orchestrator.event.problems import EventError
from orchestrator.speakers.messages import (
    Change,
    MessageRefused,
    MessageStore,
    OffsetMismatch,
    probe,
)


def _upload(store: MessageStore, clip: Path, speaker: str = "guest", **kw: bool) -> Change:
    data = clip.read_bytes()
    upload = store.create(speaker, len(data), clip.name)
    return store.finish(store.append(upload.id, speaker, 0, data), **kw)


def _files(store: MessageStore) -> set[str]:
    return {p.name for p in store.folder.iterdir() if p.is_file()}


def test_a_resumed_upload_is_probed_and_waits_for_approval(clips: Path, tmp_path: Path) -> None:
    data = (clips / "green.mp4").read_bytes()
    store = MessageStore(tmp_path, clock=lambda: 1000.0)
    upload = store.create("guest", len(data), "My Message.MP4")
    assert upload.offset == 0 and upload.suffix == ".mp4"
    half = len(data) // 2
    assert store.append(upload.id, "guest", 0, data[:half]).offset == half
    with pytest.raises(OffsetMismatch) as mismatch:
        store.append(upload.id, "guest", 0, data[:half])  # a retry of a chunk that landed
    assert mismatch.value.offset == half
    assert store.get(upload.id, "other") is None  # never another speaker's
    # A new store (a restarted jalsa) resumes from what is on disk.
    again = MessageStore(tmp_path, clock=lambda: 1000.0)
    current = again.get(upload.id, "guest")
    assert current is not None and current.offset == half
    done = again.append(upload.id, "guest", half, data[half:])
    change = again.finish(done)
    message = change.message
    assert (message.speaker, message.status, message.size) == ("guest", "pending", len(data))
    assert message.video and message.audio and message.duration == pytest.approx(3, abs=0.2)
    assert message.uploaded_at == 1000.0 and message.approved_at is None
    assert message.public()["content_type"] == "video/mp4"
    path = again.path(message)
    assert path == tmp_path / "messages" / f"{message.id}.mp4" and path.read_bytes() == data
    assert change.approved == {} and again.approved() == (change.version, {})  # not on air

    approved = again.approve(message.id)
    assert approved.message.status == "approved" and approved.message.approved_at == 1000.0
    assert approved.approved == {"guest": str(path)} and approved.version > change.version
    assert again.approve(message.id).version == approved.version  # twice changes nothing
    # The approval is on disk: a restart has it on air again.
    restarted = MessageStore(tmp_path)
    assert restarted.approved()[1] == {"guest": str(path)}
    assert restarted.messages() == [approved.message]
    meta = json.loads((tmp_path / "messages" / f"{message.id}.json").read_text())
    assert meta["status"] == "approved" and meta["speaker"] == "guest"


def test_a_new_upload_replaces_the_pending_one_never_the_approved(
    clips: Path, tmp_path: Path
) -> None:
    store = MessageStore(tmp_path)
    first = _upload(store, clips / "green.mp4").message
    store.approve(first.id)
    second = _upload(store, clips / "red.mp4").message
    third = _upload(store, clips / "blue.mp4")
    # The approved one stays on air; the newest pending one replaced the other.
    assert [m.id for m in store.messages()] == [first.id, third.message.id]
    assert third.replaced == (second,)
    assert third.approved == {"guest": str(store.path(first))}
    assert f"{second.id}.mp4" not in _files(store) and f"{second.id}.json" not in _files(store)
    # Approving the new one replaces the old approved one (file and metadata gone).
    change = store.approve(third.message.id)
    assert [m.id for m in change.replaced] == [first.id]
    assert change.approved == {"guest": str(store.path(third.message))}
    assert _files(store) == {f"{third.message.id}.mp4", f"{third.message.id}.json"}
    # Other speakers are untouched.
    other = _upload(store, clips / "green.mp4", "ameer").message
    assert store.delete(other.id).approved == {"guest": str(store.path(third.message))}
    assert store.message(other.id) is None
    with pytest.raises(KeyError):
        store.delete(other.id)
    with pytest.raises(KeyError):
        store.approve("no-such-message")


def test_approved_on_upload_replaces_the_approved_one(clips: Path, tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    first = _upload(store, clips / "green.mp4", approve=True)
    assert first.message.status == "approved" and first.approved == {
        "guest": str(store.path(first.message))
    }
    second = _upload(store, clips / "red.mp4", approve=True)
    assert second.replaced == (first.message,)
    assert second.approved == {"guest": str(store.path(second.message))}
    change = store.delete(second.message.id)
    assert change.approved == {} and store.messages() == []
    assert _files(store) == set()


def test_a_restart_keeps_what_is_whole_and_takes_in_older_files(
    clips: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "messages"
    folder.mkdir()
    # A message from before approvals (no metadata): pending, never on air by itself.
    (folder / "guest.mp4").write_bytes((clips / "green.mp4").read_bytes())
    (folder / "stranger.mp4").write_bytes(b"not a speaker of this event")
    # A write cut short by a crash: the temporary file is ignored, and so is metadata
    # that is unreadable or names no file.
    (folder / ".AAAAAAAAAAAAAAAA.json.tmp").write_text('{"spea')
    (folder / "BBBBBBBBBBBBBBBB.json").write_text("{not json")
    gone = {"speaker": "guest", "suffix": ".mp4", "duration": 3.0, "size": 1, "status": "approved"}
    gone |= {"uploaded_at": 1.0, "video": True, "audio": True}
    (folder / "CCCCCCCCCCCCCCCC.json").write_text(json.dumps(gone))
    store = MessageStore(tmp_path, speakers={"guest"})
    (message,) = store.messages()
    assert (message.speaker, message.status) == ("guest", "pending")
    assert store.approved()[1] == {}
    assert not (folder / "guest.mp4").exists() and store.path(message).is_file()
    assert MessageStore(tmp_path, speakers={"guest"}).messages() == [message]


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
    assert store.messages() == []
    # A speaker's new upload replaces their unfinished one.
    first = store.create("guest", 10, "a.mp4")
    store.create("guest", 10, "b.mp4")
    assert store.get(first.id, "guest") is None


def test_probe_refuses_a_file_with_no_media(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(MessageRefused):
        probe(path)


def test_the_event_says_who_approves() -> None:
    def approval(**event: str) -> str:
        data = {
            "event": {"name": "Rally", **event},
            "speakers": [{"id": "host", "name": "Host", "source": "testsrc"}],
            "rundown": [{"speaker": "host", "duration": "5m"}],
        }
        return parse_event(data, base_dir=Path("/srv"), env={}).info.approve_messages

    assert approval() == "operator"
    assert approval(approve_messages="auto") == "auto"
    with pytest.raises(EventError) as refused:
        approval(approve_messages="Auto")
    (problem,) = refused.value.problems
    assert problem.key == "event.approve_messages"
    assert "did you mean 'auto'?" in problem.message and "'operator', 'auto'" in problem.message
