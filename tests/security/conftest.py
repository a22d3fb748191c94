"""Adversarial tests, one module per surface an outsider can reach (issue 12): each
finding of the review is a test that failed on the code before its fix."""

from collections.abc import Iterator

import pytest
from web_app import Served, served_app


@pytest.fixture
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """jalsa's web app on a fresh state dir, served on loopback (a module may override it)."""
    with served_app(tmp_path_factory.mktemp("web")) as served:
        yield served
