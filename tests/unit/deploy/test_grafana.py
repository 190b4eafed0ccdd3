"""The Grafana dashboard in deploy/ graphs only metrics the code defines, so it cannot
drift from them: every panel's expression is parsed for metric names, which are checked
against what the modules register with prometheus_client."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "interval-dashboard.json"

# Every module that defines metrics (importing one registers them; none connects).
METRIC_MODULES = [
    "shared.consumer",
    "shared.processing",
    "shared.lag_exporter",
    "shared.outbox",
    "shared.relay",
    "shared.web",
    "services.intake.commands",
    "services.scheduling.planner.followups",
    "services.scheduling.planner.booking",
    "services.alerts.alerting.raising",
    "services.alerts.alerting.delivery",
    "services.alerts.commands",
    "services.alerts.timers",
]

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}

PROMQL_WORDS = {
    # aggregations and their modifiers
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "group", "count_values", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "and", "or", "unless", "offset",
    # functions
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile",
    "abs", "ceil", "floor", "round", "clamp_min", "clamp_max", "vector", "scalar", "time",
    "absent", "changes", "resets", "label_replace", "sort", "sort_desc",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "last_over_time",
}  # fmt: skip


def defined_series() -> set[str]:
    """Every sample name the project's metrics can expose (declared, even if unobserved)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        for suffix in SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not its functions, labels or numbers)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS}


def load() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_metric_names_are_parsed_from_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, job) (rate(x_seconds_bucket{job="a"}[5m])))'
    ) == {"x_seconds_bucket"}
    assert metric_names("sum(rate(a_total[$__rate_interval])) / max by (s) (b)") == {
        "a_total",
        "b",
    }


def test_every_panel_graphs_only_metrics_the_code_defines() -> None:
    known = defined_series()
    seen: set[str] = set()
    for panel in panels(load()):
        for target in panel.get("targets", []):
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            unknown = names - known
            assert not unknown, f"{panel['title']}: {sorted(unknown)} are not defined"
            seen |= names
    # the list of what ops graph is all on the dashboard
    for required in [
        "intakes_total",
        "series_proposed_total",
        "series_waitlisted_total",
        "appointments_changed_total",
        "alerts_raised_total",
        "page_delivery_seconds_bucket",
        "alert_time_to_acknowledge_seconds_bucket",
        "outbox_backlog",
        "outbox_oldest_unpublished_age_seconds",
        "consumer_lag",
        "kafka_consumergroup_lag",
        "kafka_consumergroup_oldest_unconsumed_age_seconds",
        "kafka_consumergroup_members",
        "events_dead_lettered_total",
        "consumer_retries_total",
    ]:
        assert required in seen, f"no panel graphs {required}"


def test_dashboard_is_importable_and_uses_the_datasource_variable() -> None:
    d = load()
    assert d["schemaVersion"] >= 39
    assert d["uid"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels(d):
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
