"""A paused lane's partition, resumed, keeps faust's consumer fetching (shared/consumer.py
faust_tp): faust's ``resume_partitions`` adds what it is given to its active set as it
is, and its next fetch asserts every member is faust's own TP."""

from __future__ import annotations

from aiokafka import TopicPartition
from faust.types import TP

from shared.consumer import faust_tp


def test_an_aiokafka_partition_becomes_fausts_own() -> None:
    got = faust_tp(TopicPartition("intake.screened", 3))
    assert type(got) is TP
    assert got == TP("intake.screened", 3)


def test_fausts_own_partition_is_kept() -> None:
    tp = TP("checkin.recorded", 1)
    assert faust_tp(tp) is tp
