"""The test suite's kinds, each in its folder: ``unit/`` (pure, no I/O), ``integration/``
(one service or one piece of shared machinery against the real broker and database),
``e2e/`` (journeys across the services, the browser, the demo) and ``faults/`` (the
broker or a worker taken away; marked ``faults``, always run last, in FAULT_ORDER, as
they disturb the broker every other test shares).

The stacks and helpers all of them use are in tests/support/.
"""

from __future__ import annotations

import pytest

from tests.support import containers

# INTERVAL_TESTCONTAINERS=1: the broker and the database in containers, their addresses
# in the environment before the plugins below import tools/stack.py, which reads them
containers.start_if_asked()

pytest_plugins = ["tests.support.stack", "tests.support.clocked"]

# the fault suite's modules, in the order they run (each leaves the broker as it found
# it, and the whole-stack chaos run goes last)
FAULT_ORDER = ("test_broker_outage", "test_worker_outage", "test_cluster", "test_chaos")


KINDS = ("unit", "integration", "e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast kinds first (a unit failure shows in seconds); the fault suite last."""

    def key(item: pytest.Item) -> tuple[int, int]:
        parts = item.path.parts
        kind = next((KINDS.index(p) for p in reversed(parts) if p in KINDS), len(KINDS))
        if item.get_closest_marker("faults") is None:
            # a test that moves the shared clock months ahead goes after every other
            # test that uses that clock (tests/support/clocked.py)
            late = item.get_closest_marker("clock_jump") is not None
            return (KINDS.index("e2e") if late else min(kind, KINDS.index("e2e")), int(late))
        module = item.path.stem
        order = FAULT_ORDER.index(module) if module in FAULT_ORDER else len(FAULT_ORDER)
        return (len(KINDS), order)

    items.sort(key=key)  # stable: within a kind every test keeps its place


def pytest_report_header() -> list[str]:
    return containers.report_header()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure() -> None:
    containers.stop()  # the session's containers go, if it has any
