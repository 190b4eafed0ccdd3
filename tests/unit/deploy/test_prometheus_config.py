"""deploy/prometheus/prometheus.yml scrapes every process deploy/supervisord.conf runs,
on the ports it gives them (promtool validates the file in tests/integration/test_metrics.py)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
HTTP_PORTS = {"intake-api": 8001, "scheduling-api": 8002, "alerts-api": 8003, "dashboard": 8000}


def programs() -> dict[str, int]:
    """Each supervisord program and the port its /metrics is served on."""
    conf = configparser.RawConfigParser(inline_comment_prefixes=None)
    conf.read(DEPLOY / "supervisord.conf")
    out: dict[str, int] = {}
    for section in conf.sections():
        if not section.startswith("program:"):
            continue
        name = section.removeprefix("program:")
        env = conf.get(section, "environment", fallback="")
        found = re.search(r'[A-Z_]*METRICS_PORT="?(\d+)', env)
        out[name] = int(found.group(1)) if found else HTTP_PORTS[name]
    return out


def jobs() -> dict[str, list[dict[str, Any]]]:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    return {j["job_name"]: j["static_configs"] for j in config["scrape_configs"]}


def test_every_program_is_scraped_on_its_port_and_nothing_else() -> None:
    ports = programs()
    assert set(jobs()) == set(ports)
    for name, static in jobs().items():
        assert [t for s in static for t in s["targets"]] == [f"127.0.0.1:{ports[name]}"]
        labels = static[0]["labels"]
        assert {"service", "role"} <= set(labels), name


def test_metrics_ports_are_distinct_and_clear_of_the_broker_and_the_apis() -> None:
    ports = list(programs().values())
    assert len(ports) == len(set(ports))
    assert not set(ports) & {9090, 9092, 9093, 9094}
