"""Revoking a link over the API when the revocation list is corrupt (issue 12): the
answer was a 500 with nothing to go on. It is 503 naming the file and the fix (restore
or repair it: never delete it, which would make every revoked link work again), joins are
refused from then on, and once the file is repaired the same call revokes."""

from __future__ import annotations

import json

from web_app import Served

from orchestrator.speakers.links import REVOKED_FILE, read_generations


def test_a_corrupt_list_is_503_naming_the_file_and_never_advising_to_delete_it(
    web: Served,
) -> None:
    path = web.state_dir / REVOKED_FILE
    status, body, _ = web.call("POST", "/api/speakers/remote/revoke")
    assert status == 200 and body["generation"] == 1
    status, made, _ = web.call("POST", "/api/speakers/remote/link")
    assert status == 200
    join = made["url"].removeprefix(f"http://127.0.0.1:{web.port}")
    assert web.call("GET", join, token=None)[0] == 200
    path.write_text('{"speakers": {"remote": 1')  # torn: what a crash without fsync leaves

    status, body, _ = web.call("POST", "/api/speakers/remote/revoke")
    assert status == 503, body
    detail = body["detail"]
    assert str(path) in detail
    assert "NOT saved" in detail and "Restore it from a backup" in detail
    assert "Do NOT delete it" in detail  # the only mention of deleting is the warning
    assert "revoke again" in detail
    # no one joins while the list is unreadable, at once (not at the next refresh)
    assert web.call("GET", join, token=None)[0] == 503

    path.write_text(json.dumps({"speakers": {"remote": 1}}))  # repaired by hand
    status, body, _ = web.call("POST", "/api/speakers/remote/revoke")
    assert status == 200 and body["generation"] == 2
    assert read_generations(web.state_dir) == {"remote": 2}
