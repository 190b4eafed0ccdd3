"""shared/heap.py: after the freeze, a full collection no longer walks the startup
objects, and garbage made later is still collected. In a child process: a freeze is for
the rest of a process's life."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, time
import fastapi, pydantic  # a service's worth of long-lived objects
from shared.heap import freeze_startup

def full_gc_ms():
    t = time.perf_counter(); gc.collect(2); return (time.perf_counter() - t) * 1000

before = min(full_gc_ms() for _ in range(5))
frozen = freeze_startup()
after = min(full_gc_ms() for _ in range(5))

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after the freeze: still garbage to collect
del a, b
collected = gc.collect()
print(frozen, before, after, collected)
"""


def test_the_startup_heap_leaves_the_collectors_walks_and_later_garbage_does_not() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, before, after, collected = int(out[0]), float(out[1]), float(out[2]), int(out[3])
    assert frozen > 10_000
    assert after < before / 3
    assert collected >= 2
