"""The bulk produce path: same records and partitions as per-record sends; state only after its examples are in the log."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from stream.batch_producer import BatchSender, murmur2_partition, sender_for
from stream.embedded import EmbeddedServices, ensure_topics
from stream.faust_app import send_outputs
from stream.join_runtime import Output

PARTITIONS = 4


def _outputs(examples: str, deadletter: str, state: str, n_sessions: int = 60) -> list[Output]:
    """What a join call returns: examples keyed by segment, a dead letter, then state writes and tombstones."""
    out: list[Output] = []
    for s in range(n_sessions):
        segment = f"seg-{s % 3}".encode()
        out.extend(Output(examples, segment, b'{"example_id":"r%d:t%d"}' % (s, k)) for k in range(5))
        if s % 17 == 0:
            out.append(Output(deadletter, b"impressions", b'{"reason":"bad_json","n":%d}' % s))
    out.extend(
        Output(state, b"session-%d" % s, None if s % 4 == 0 else b'{"s":%d}' % s) for s in range(n_sessions)
    )
    return out


# --- against the embedded broker: byte for byte what per-record sends give ---------------------------


def _read_all(svc: EmbeddedServices, topic: str, n: int) -> dict[int, list[tuple[bytes, bytes | None]]]:
    consumer = KafkaConsumer(bootstrap_servers=svc.bootstrap_servers, enable_auto_commit=False, group_id=None)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
    try:
        for _ in range(100):
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend((r.key, r.value) for r in records)
            if sum(map(len, got.values())) >= n:
                break
    finally:
        consumer.close()
    return dict(got)


@pytest.mark.integration
async def test_bulk_sends_give_the_same_records_keys_and_partitions_as_per_record_sends(
    services: EmbeddedServices,
) -> None:
    uid = uuid.uuid4().hex[:8]
    old = {k: f"bp-old-{k}-{uid}" for k in ("examples", "deadletter", "state")}
    new = {k: f"bp-new-{k}-{uid}" for k in ("examples", "deadletter", "state")}
    ensure_topics(services.bootstrap_servers, dict.fromkeys([*old.values(), *new.values()], PARTITIONS))
    old_records = _outputs(old["examples"], old["deadletter"], old["state"])
    new_records = _outputs(new["examples"], new["deadletter"], new["state"])
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap_servers)
    await producer.start()
    try:
        # the old path: one send per record, the producer's partitioner choosing (Faust's send_soon ends here)
        for o in old_records:
            await producer.send(o.topic, key=o.key, value=o.value)
        sender = BatchSender(producer)
        half = len(new_records) // 2  # two calls, as consecutive micro-batches would be
        await sender.send(new_records[:half], state_topic=new["state"])
        await sender.send(new_records[half:], state_topic=new["state"])
        await producer.flush()
    finally:
        await producer.stop()
    for kind in ("examples", "deadletter", "state"):
        n = sum(o.topic == old[kind] for o in old_records)
        before, after = _read_all(services, old[kind], n), _read_all(services, new[kind], n)
        assert sum(map(len, before.values())) == n
        assert after == before, kind  # same partitions, same keys and bytes, same order in each
    for p, records in _read_all(services, new["state"], 60).items():
        assert {murmur2_partition(key, PARTITIONS) for key, _ in records} == {p}


# --- ordering and the commit, against a producer whose acks the test controls --------------------------


class _Batch:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []
        self._capacity = capacity

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) >= self._capacity:
            return None
        self.records.append((key, value))
        return object()


class _Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))


class _Client:
    cluster = _Cluster()

    async def _wait_on_metadata(self, topic: str) -> None:
        return None


class _AckedByTest:
    """An aiokafka producer stand-in: logs each batch handed over; the test acknowledges them."""

    client = _Client()

    def __init__(self, capacity: int = 1000) -> None:
        self.log: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.acks: list[asyncio.Future[None]] = []
        self._capacity = capacity

    def create_batch(self) -> _Batch:
        return _Batch(self._capacity)

    def _partition(self, topic: str, partition: None, key: bytes, value: None, k: bytes, v: None) -> int:
        return murmur2_partition(key, PARTITIONS)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.log.append((topic, partition, batch.records))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(fut)
        return fut

    def ack_all(self) -> None:
        for f in self.acks:
            if not f.done():
                f.set_result(None)

    async def flush(self) -> None:  # aiokafka's: wait for every batch handed over so far
        await asyncio.gather(*list(self.acks))


class _FaustProducer:
    def __init__(self, kafka: _AckedByTest) -> None:
        self._kafka = kafka

    def _ensure_producer(self) -> _AckedByTest:
        return self._kafka

    async def flush(self) -> None:
        await self._kafka.flush()


class _App:
    def __init__(self, kafka: _AckedByTest) -> None:
        self.producer: Any = _FaustProducer(kafka)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _topics(log: list[tuple[str, int, list[tuple[bytes, bytes | None]]]]) -> list[str]:
    return [topic for topic, _, _ in log]


async def test_state_is_sent_only_once_the_examples_are_acknowledged_and_a_commit_flush_waits_for_it() -> (
    None
):
    kafka = _AckedByTest()
    app = _App(kafka)
    send = asyncio.ensure_future(send_outputs(app, _outputs("ex", "dl", "chg"), state_topic="chg"))  # type: ignore[arg-type]
    await _settle()
    assert set(_topics(kafka.log)) == {"ex", "dl"}  # the examples are not acknowledged: no state yet
    assert not send.done()  # the events of this call are not acked to Faust either: no commit covers them
    kafka.ack_all()  # the broker acknowledges the examples: the state records follow, after one wait
    await asyncio.wait_for(send, 1)
    first_state = _topics(kafka.log).index("chg")
    assert set(_topics(kafka.log)[:first_state]) == {"ex", "dl"}
    assert set(_topics(kafka.log)[first_state:]) == {"chg"}
    assert len({p for t, p, _ in kafka.log if t == "chg"}) == PARTITIONS  # every state partition, one wait

    committed: list[bool] = []

    async def commit() -> None:  # what Faust's consumer does: flush the producer, then commit offsets
        await app.producer.flush()
        committed.append(True)

    task = asyncio.ensure_future(commit())
    await _settle()
    assert not committed  # the state records are handed over, not acknowledged
    kafka.ack_all()
    await asyncio.wait_for(task, 1)
    assert committed == [True]
    state = [rec for topic, _, recs in kafka.log if topic == "chg" for rec in recs]
    assert len(state) == 60 and sum(v is None for _, v in state) == 15  # tombstones kept


async def test_a_failed_example_ack_fails_the_call_and_sends_no_state() -> None:
    kafka = _AckedByTest()
    app = _App(kafka)
    send = asyncio.ensure_future(
        send_outputs(app, [Output("ex", b"a", b"1"), Output("chg", b"s1", b"v")], state_topic="chg")  # type: ignore[arg-type]
    )
    await _settle()
    kafka.acks[0].set_exception(RuntimeError("broker said no"))
    with pytest.raises(RuntimeError, match="broker said no"):
        await asyncio.wait_for(send, 1)
    assert "chg" not in _topics(kafka.log)


async def test_a_full_batch_is_shipped_and_a_new_one_started_in_order() -> None:
    kafka = _AckedByTest(capacity=3)
    sender = BatchSender(kafka)
    records = [Output("ex", b"k", b"%d" % i) for i in range(7)]
    await sender.send(records)
    assert [len(recs) for _, _, recs in kafka.log] == [3, 3, 1]
    assert [v for _, _, recs in kafka.log for _, v in recs] == [o.value for o in records]


def test_sender_for_keeps_one_sender_per_app() -> None:
    app = _App(_AckedByTest())
    assert sender_for(app) is sender_for(app)
    assert sender_for(_App(_AckedByTest())) is not sender_for(app)
