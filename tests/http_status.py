"""The status of one HTTP request, for tests that only check it."""

from __future__ import annotations

import urllib.error
import urllib.request


def status_of(request: urllib.request.Request | str, timeout: float = 5.0) -> int:
    """``request``'s HTTP status. An error's response is closed here: left open, the
    garbage collector closes its socket later, in whichever test runs then, which pytest
    reports as that test's error."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
