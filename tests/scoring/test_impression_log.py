"""The spool file and the impression log's states, against a scripted in-memory producer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitoring.scoring_metrics import ScoringMetrics
from scoring.impression_log import ImpressionLog
from scoring.spool import Spool


# -- the spool file
def test_spool_round_trip_cursor_and_reset(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=1 << 20)
    assert s.append([("imp", b"k1", b'{"n":1}'), ("imp", b"k2", b'{"n":2}'), ("int", b"k3", b'{"n":3}')]) == 3
    first = s.read(2)
    assert [(r.topic, r.key, r.value) for r in first] == [
        ("imp", b"k1", b'{"n":1}'),
        ("imp", b"k2", b'{"n":2}'),
    ]
    s.commit(first[-1].end, 2)
    s.close()
    again = Spool(tmp_path, max_bytes=1 << 20)  # a restart resumes after the cursor
    assert again.pending_records == 1
    rest = again.read(10)
    assert [r.value for r in rest] == [b'{"n":3}']
    again.commit(rest[-1].end, 1)
    assert again.empty and again.size == 0 and (tmp_path / "spool.log").stat().st_size == 0
    again.close()


def test_spool_disk_bound(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=100)
    assert s.append([("t", b"k", b"x" * 40), ("t", b"k", b"y" * 40), ("t", b"k", b"z" * 40)]) == 1
    assert s.size <= 100
    s.close()


def test_spool_cuts_a_torn_tail_and_skips_corrupt_lines(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=1 << 20)
    s.append([("t", b"a", b"1"), ("t", b"b", b"2"), ("t", b"c", b"3")])
    s.close()
    path = tmp_path / "spool.log"
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"\tb\t", b"\tB\t")  # CRC no longer matches
    path.write_bytes(b"\n".join(lines[:3]) + b"\n" + b"0000abcd\tt\tpartial")
    s = Spool(tmp_path, max_bytes=1 << 20)
    records = s.read(10)
    assert [r.key for r in records] == [b"a", b"c"] and records[1].lines == 2
    assert s.corrupt == 2  # the torn tail and the bad CRC
    s.commit(records[-1].end, sum(r.lines for r in records))
    assert s.empty
    s.close()


# -- the impression log
class FakeProducer:
    """Delivers at once while ``up``; while not, holds futures (and blocks sends past ``capacity``)."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def start(self) -> None:
        if not self.world.up:
            raise ConnectionError("broker down")

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        w = self.world
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        while not w.up and len(w.held) >= w.capacity:
            await asyncio.sleep(0.01)  # batches full: aiokafka's send would wait here too
        if w.up:
            w.delivered.append(value)
            fut.set_result(None)
        else:
            w.held.append((value, fut))
        return fut


class World:
    def __init__(self) -> None:
        self.up = True
        self.capacity = 5
        self.delivered: list[bytes] = []
        self.held: list[tuple[bytes, asyncio.Future[Any]]] = []

    def restore(self) -> None:
        self.up = True
        for value, fut in self.held:
            self.delivered.append(value)
            fut.set_result(None)
        self.held.clear()


def _counter(m: ScoringMetrics, outcome: str) -> float:
    return sum(
        s.value
        for fam in m.registry.collect()
        for s in fam.samples
        if s.name == "smarttrip_scoring_log_records_total" and s.labels["outcome"] == outcome
    )


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.timeout(30)
async def test_outage_spools_then_replays_everything_in_order(tmp_path: Path) -> None:
    world, metrics = World(), ScoringMetrics()
    log = ImpressionLog(lambda: FakeProducer(world), Spool(tmp_path, max_bytes=1 << 20), metrics,
                        stall_s=0.2, retry_s=0.05, replay_window=7)  # fmt: skip
    await log.start()
    await _until(lambda: log.state == "direct")
    for i in range(20):
        log.submit("imp", b"k", str(i).encode())
    await _until(lambda: len(world.delivered) == 20)
    world.up = False
    for i in range(20, 120):
        log.submit("imp", b"k", (lambda i=i: str(i).encode()))  # built lazily by the sender
        await asyncio.sleep(0.002)
    await _until(lambda: log.state == "spooling")
    await _until(lambda: log.spool.pending_records > 50)
    assert log.status()["kafka"] == "unreachable" and metrics.kafka_up._value.get() == 0
    world.restore()
    await _until(lambda: len(world.delivered) == 120 and log.state == "direct")
    await _until(lambda: _counter(metrics, "sent") + _counter(metrics, "replayed") == 120 and log.spool.empty)
    assert [int(v) for v in world.delivered] == list(range(120))  # nothing lost, nothing twice, in order
    assert _counter(metrics, "spooled") == _counter(metrics, "replayed") > 0
    assert _counter(metrics, "dropped") == 0 and log.spool.empty
    await log.stop()


@pytest.mark.timeout(30)
async def test_broker_down_at_start_then_up(tmp_path: Path) -> None:
    world, metrics = World(), ScoringMetrics()
    world.up = False
    log = ImpressionLog(lambda: FakeProducer(world), Spool(tmp_path, max_bytes=1 << 20), metrics,
                        stall_s=0.2, retry_s=0.05)  # fmt: skip
    await log.start()
    for i in range(10):
        log.submit("imp", b"k", str(i).encode())
    await _until(lambda: log.spool.pending_records == 10)
    world.up = True
    await _until(lambda: len(world.delivered) == 10 and log.state == "direct")
    assert [int(v) for v in world.delivered] == list(range(10))
    await log.stop()


@pytest.mark.timeout(30)
async def test_drops_only_past_the_disk_bound_and_says_so(tmp_path: Path, caplog: Any) -> None:
    world, metrics = World(), ScoringMetrics()
    world.up = False
    log = ImpressionLog(lambda: FakeProducer(world), Spool(tmp_path, max_bytes=300), metrics,
                        stall_s=0.2, retry_s=0.05)  # fmt: skip
    await log.start()
    for _ in range(30):
        log.submit("imp", b"k", b"x" * 20)
    await _until(lambda: _counter(metrics, "spooled") + _counter(metrics, "dropped") == 30)
    assert 0 < _counter(metrics, "spooled") < 30 and _counter(metrics, "dropped") > 0
    assert any("DROPPING" in r.message for r in caplog.records)
    await log.stop()


@pytest.mark.timeout(30)
async def test_queue_overflow_spills_to_the_spool_in_order(tmp_path: Path) -> None:
    world, metrics = World(), ScoringMetrics()
    log = ImpressionLog(lambda: FakeProducer(world), Spool(tmp_path, max_bytes=1 << 20), metrics,
                        queue_max=10, stall_s=0.2, retry_s=0.05)  # fmt: skip
    await log.start()
    await _until(lambda: log.state == "direct")
    for i in range(25):  # no await: the sender cannot run, so the queue passes its bound
        log.submit("imp", b"k", str(i).encode())
    assert log.queue_depth <= 10 and log.spool.pending_records >= 15
    await _until(lambda: len(world.delivered) == 25 and log.state == "direct")
    assert [int(v) for v in world.delivered] == list(range(25))
    await log.stop()


@pytest.mark.timeout(30)
async def test_stop_spools_what_kafka_did_not_take(tmp_path: Path) -> None:
    world, metrics = World(), ScoringMetrics()
    log = ImpressionLog(lambda: FakeProducer(world), Spool(tmp_path, max_bytes=1 << 20), metrics,
                        stall_s=5.0, retry_s=0.05)  # fmt: skip
    await log.start()
    await _until(lambda: log.state == "direct")
    world.up = False
    for i in range(3):
        log.submit("imp", b"k", str(i).encode())
    await _until(lambda: len(world.held) == 3)
    await log.stop(timeout=0.2)
    restarted = Spool(tmp_path, max_bytes=1 << 20)
    assert [r.value for r in restarted.read(10)] == [b"0", b"1", b"2"]
    restarted.close()
