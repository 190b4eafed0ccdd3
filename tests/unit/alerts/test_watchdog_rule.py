"""The pipeline watchdog's rule (services/alerts/domain/watchdog.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerts.domain import watchdog as rule

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


def test_fresh_stages_are_not_stalled() -> None:
    assert rule.stalled({"heartbeat": ago(1), "timers": NOW}, NOW, 30) == ()


def test_a_stage_exactly_at_the_limit_has_stalled() -> None:
    assert rule.stalled({"heartbeat": ago(30), "timers": ago(29.9)}, NOW, 30) == ("heartbeat",)


def test_every_stalled_stage_is_named_sorted() -> None:
    progress = {
        "timers": ago(31),
        "outbox:intake": ago(100),
        "broker_lag:alerts": ago(45),
        "heartbeat": ago(31),
        "database": ago(2),
    }
    stages = rule.stalled(progress, NOW, 30)
    assert stages == ("broker_lag:alerts", "heartbeat", "outbox:intake", "timers")
    assert rule.reasons(stages) == (
        "broker_lag:alerts",
        "heartbeat_stale",
        "outbox_stale:intake",
        "timers_stale",
    )


def test_reasons_for_the_watchdogs_own_sources() -> None:
    assert rule.reasons(["database", "broker"]) == ("broker_unreachable", "database_unreachable")


def test_a_group_progresses_while_it_has_nothing_to_read_or_commits_move() -> None:
    first = rule.group_progress(None, committed=10, lag=5, now=ago(60))
    assert first.at == ago(60)
    still = rule.group_progress(first, committed=10, lag=5, now=NOW)
    assert still.at == ago(60)  # lag and no commit: no progress since
    assert rule.stalled({"broker_lag:alerts": still.at}, NOW, 30) == ("broker_lag:alerts",)
    assert rule.group_progress(first, committed=11, lag=5, now=NOW).at == NOW
    assert rule.group_progress(first, committed=10, lag=0, now=NOW).at == NOW


def test_an_outbox_is_as_old_as_its_oldest_unpublished_row() -> None:
    assert rule.outbox_progress(None, NOW) == NOW
    assert rule.outbox_progress(ago(40), NOW) == ago(40)
    assert rule.outbox_progress(NOW + timedelta(seconds=1), NOW) == NOW  # clock skew
    assert rule.stalled({"outbox:scheduling": rule.outbox_progress(ago(40), NOW)}, NOW, 30)


def test_without_the_database_only_it_and_the_broker_are_judged() -> None:
    progress = {
        "heartbeat": ago(40),
        "timers": ago(40),
        "outbox:intake": ago(40),
        "database": ago(31),
        "broker": NOW,
        "broker_lag:alerts": ago(35),
    }
    judged = rule.judged(progress, database_ok=False)
    assert set(judged) == {"database", "broker", "broker_lag:alerts"}
    assert rule.reasons(rule.stalled(judged, NOW, 30)) == (
        "broker_lag:alerts",
        "database_unreachable",
    )
    # with the database answering, every stage counts
    assert rule.judged(progress, database_ok=True) == progress
