"""jalsa run and jalsa edge limit glibc's malloc arenas, unless the operator chose."""

from __future__ import annotations

from orchestrator.malloc_arenas import limit_malloc_arenas


def test_glibc_takes_the_limit() -> None:
    assert limit_malloc_arenas({}) is True  # this machine's Python runs on glibc


def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "8"}) is False
