"""Consumer lag as the broker sees it (shared/lag.py): the pure computation, and the
subscriptions it assumes are the workers' own."""

from __future__ import annotations

import pytest

from services.alerts.app import create_processor as alerts_processor
from services.alerts.safety import create_safety_processor
from services.alerts.settings import AlertsSettings
from services.scheduling.app import create_processor as scheduling_processor
from services.scheduling.settings import SchedulingSettings
from shared.lag import TP, GroupInfo, lag, lag_rows, position, to_read
from shared.lag_exporter import LagSettings

T = "alert.raised"
P0: TP = (T, 0)
P1: TP = (T, 1)
NOW = 1_700_000_100.0  # seconds since the epoch
STABLE = GroupInfo("g", "Stable", 2)


def rows(
    committed: dict[TP, int],
    log_end: dict[TP, int],
    stamps: dict[tuple[TP, int], int] | None = None,
    log_start: dict[TP, int] | None = None,
    info: GroupInfo = STABLE,
    reset: str = "earliest",
) -> dict[TP, tuple[int | None, int, int, float | None]]:
    [group] = lag_rows(
        [info],
        {info.group: sorted(log_end)},
        {info.group: committed},
        log_start or {},
        log_end,
        stamps or {},
        NOW,
        reset,  # type: ignore[arg-type]
    )
    assert group.info == info
    return {
        (p.topic, p.partition): (p.committed, p.position, p.lag, p.oldest_age_s)
        for p in group.partitions
    }


def test_caught_up_is_lag_zero_and_age_zero() -> None:
    assert rows({P0: 7}, {P0: 7}) == {P0: (7, 7, 0, 0.0)}


def test_lag_n_is_end_minus_committed_and_the_age_of_the_record_at_the_commit() -> None:
    got = rows(
        {P0: 3, P1: 10}, {P0: 8, P1: 12}, {(P0, 3): 1_700_000_040_000, (P1, 10): 1_700_000_099_500}
    )
    assert got == {P0: (3, 3, 5, 60.0), P1: (10, 10, 2, 0.5)}


def test_no_committed_offset_counts_from_the_log_start_with_earliest() -> None:
    got = rows({}, {P0: 20}, {(P0, 4): 1_700_000_000_000}, log_start={P0: 4})
    assert got == {P0: (None, 4, 16, 100.0)}


def test_no_committed_offset_with_latest_is_lag_zero() -> None:
    assert rows({}, {P0: 20}, reset="latest") == {P0: (None, 20, 0, 0.0)}


def test_an_empty_partition_without_commit_is_lag_zero() -> None:
    assert rows({}, {P0: 0}) == {P0: (None, 0, 0, 0.0)}


def test_the_stalled_worker_case_members_zero_and_the_lag() -> None:
    """No member (the worker is gone), offsets committed long ago, events arriving."""
    empty = GroupInfo("alerts", "Empty", 0)
    got = rows({P0: 5}, {P0: 25}, {(P0, 5): 1_699_999_800_000}, info=empty)
    assert got == {P0: (5, 5, 20, 300.0)}


def test_age_is_never_negative_and_unknown_when_the_record_was_not_read() -> None:
    # a producer clock ahead of ours
    assert rows({P0: 0}, {P0: 1}, {(P0, 0): int(NOW * 1000) + 5000})[P0][3] == 0.0
    assert rows({P0: 0}, {P0: 1}, {})[P0][3] is None  # not read in time
    assert rows({P0: 0}, {P0: 1}, {(P0, 0): -1})[P0][3] is None  # no timestamp


def test_commits_outside_the_log() -> None:
    # below the log start (retention deleted them): lag counts them, the age is the start's
    assert rows({P0: 2}, {P0: 10}, {(P0, 6): 1_700_000_090_000}, log_start={P0: 6}) == {
        P0: (2, 6, 8, 10.0)
    }
    # past the end (the topic was recreated): nothing to read
    assert rows({P0: 50}, {P0: 10}) == {P0: (50, 10, 0, 0.0)}


def test_position_and_lag_helpers() -> None:
    assert position(None, 3, 9, "earliest") == 3
    assert position(None, 3, 9, "latest") == 9
    assert position(5, 3, 9, "earliest") == 5
    assert lag(5, 3, 9, "earliest") == 4
    assert lag(None, 3, 9, "earliest") == 6
    assert lag(None, 3, 9, "latest") == 0


def test_to_read_asks_for_each_lagging_partitions_first_unconsumed_record_once() -> None:
    parts = {"a": [P0, P1], "b": [P0], "c": [("gone", 0)]}
    committed = {"a": {P0: 3, P1: 9}, "b": {P0: 3}}
    assert to_read(parts, committed, {}, {P0: 5, P1: 9}, "earliest") == {(P0, 3)}


def test_a_partition_of_a_deleted_topic_is_skipped_and_a_group_without_topics_has_a_row() -> None:
    [a, b] = lag_rows(
        [GroupInfo("b", "Dead", 0), GroupInfo("a", "Stable", 1)],
        {"a": [("gone", 0), P0]},
        {},
        {},
        {P0: 0},
        {},
        NOW,
    )
    assert (a.info.group, [p.topic for p in a.partitions], a.total_lag) == ("a", [T], 0)
    assert (b.info, b.partitions) == (GroupInfo("b", "Dead", 0), ())


def test_subscriptions_are_the_workers_own() -> None:
    """SUBSCRIPTIONS mirrors each service's create_processor (prefix and group as set)."""
    sched = SchedulingSettings(kafka_topic_prefix="x.", scheduling_consumer_group="s1")
    alerts = AlertsSettings(kafka_topic_prefix="x.", alerts_consumer_group="a1")
    lag_settings = LagSettings(
        kafka_topic_prefix="x.", scheduling_consumer_group="s1", alerts_consumer_group="a1"
    )
    safety = create_safety_processor(alerts)
    want = {
        "s1": set(scheduling_processor(sched).routes),
        "a1": set(alerts_processor(alerts).routes),
        safety.group: set(safety.routes),
    }
    assert {g: set(ts) for g, ts in lag_settings.groups().items()} == want


@pytest.mark.parametrize(("interval", "stale"), [(5.0, 15.0), (10.0, 30.0)])
def test_health_goes_stale_after_three_intervals(interval: float, stale: float) -> None:
    assert LagSettings(lag_exporter_interval_s=interval).stale_after_s == stale


def test_extra_groups_are_watched_for_what_they_committed_on() -> None:
    settings = LagSettings(lag_exporter_extra_groups=" a-new-lane, ,x ")
    assert settings.groups()["a-new-lane"] == []
    assert set(settings.groups()) == {"scheduling", "alerts", "alerts-safety", "a-new-lane", "x"}
