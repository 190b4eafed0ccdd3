"""The garbage collector off the safety path's tail.

A full (generation 2) collection walks every tracked object the process holds, and a
service holds hundreds of thousands from its imports alone (FastAPI, pydantic, faust,
structlog), none of them ever garbage: a 42 ms pause of the intake API, collecting
nothing, was one of the slowest ideation pages of a benchmark run. ``freeze_startup``,
called once a process has started, moves what exists then into the collector's permanent
generation, so later collections walk only what was made since; garbage made later is
collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup() -> int:
    """Collect once, then freeze every object that survived; the number frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
