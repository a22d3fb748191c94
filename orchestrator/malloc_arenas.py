"""glibc's malloc arenas, limited for a long event.

glibc gives threads that allocate their own arenas (up to 8 per core) and does not hand
back memory freed inside one while the arena holds anything else. With speakers' threads
coming and going (aiortc's decoders and jitter buffers), a 60-minute run grew from 293 to
373 MB in ten 64 MB arenas (+27 %). With the arenas limited to two (what
``MALLOC_ARENA_MAX=2`` does), the same 60 minutes grew +18 %, most of it one step at minute
30, with the same CPU and media/wall (bench/README.md, "Endurance").
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(environ: dict[str, str] | None = None) -> bool:
    """At most ``max(2, cores)`` malloc arenas from now on; True if glibc took it.

    Nothing is changed when ``MALLOC_ARENA_MAX`` is set (the operator's choice), nor on
    a C library without ``mallopt``.
    """
    if "MALLOC_ARENA_MAX" in (os.environ if environ is None else environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    arenas = max(2, os.cpu_count() or 2)
    if not mallopt(M_ARENA_MAX, arenas):
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
        return False
    return True
