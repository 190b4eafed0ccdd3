"""shared/kafka.py ``murmur2`` and ``partition_of``: the relay picks each key's partition
itself (``send_in_order``), so it must pick what aiokafka's default partitioner (the
Java client's murmur2) picks, or a key would move partition and lose its order."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kafka import murmur2, partition_of


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_murmur2_is_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@settings(max_examples=1000, deadline=None)
@given(key=st.binary(min_size=1, max_size=80), n=st.integers(min_value=1, max_value=64))
def test_a_key_goes_to_the_partition_the_default_partitioner_picks(key: bytes, n: int) -> None:
    partitions = list(range(n))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_values_of_the_java_client() -> None:
    """Values the Java client gives (its ``UtilsTest.testMurmur2``), so the two Python
    versions are not merely equal to each other."""
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, java in cases.items():
        assert murmur2(key) == java & 0xFFFFFFFF, key
