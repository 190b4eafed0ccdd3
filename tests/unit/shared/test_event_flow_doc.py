"""docs/architecture.md's table of topics is the event flow as wired: every topic in
it, and each consumed by exactly the services whose workers subscribe to it
(shared/lag_exporter.py SUBSCRIPTIONS, which tests/unit/shared/test_lag.py holds to
each service's reactions)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.events import TOPICS
from shared.lag_exporter import SUBSCRIPTIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"
# how the table names each consumer group's service
NAMES = {"scheduling": "scheduling", "alerts": "alerts", "alerts-safety": "safety lane"}


def table() -> dict[str, str]:
    """Topic -> its "Consumed by" cell, in the table under "| Topic | Produced by |"."""
    text = DOC.read_text().split("| Topic | Produced by | Consumed by |", 1)[1]
    rows = {}
    for line in text.splitlines()[2:]:
        if not line.startswith("|"):
            break
        m = re.match(r"^\| `([a-z.]+)` \| [^|]+ \| ([^|]+) \|$", line)
        assert m, line
        rows[m.group(1)] = m.group(2)
    return rows


def test_every_topic_is_in_the_table() -> None:
    assert set(table()) == set(TOPICS)


def test_each_topic_is_consumed_by_the_services_that_subscribe_to_it() -> None:
    for topic, cell in table().items():
        wired = {NAMES[group] for group, topics in SUBSCRIPTIONS.items() if topic in topics}
        words = re.sub(r"`[^`]*`", "", cell)  # module paths name services too
        said = set()
        if "safety lane" in words:  # "the alerts safety lane" is that lane, not the worker
            said.add("safety lane")
            words = words.replace("the alerts safety lane", "").replace("safety lane", "")
        said |= {n for n in ("scheduling", "alerts") if re.search(rf"\b{n}\b", words)}
        assert said == wired, f"{topic}: the table says {sorted(said)}, the code {sorted(wired)}"
