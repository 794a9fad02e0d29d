"""stream.eager_delivery without a broker: eager delivery keeps mode's wait_first semantics."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from mode import Service

from stream.eager_delivery import deliver_eagerly, resume

pytestmark = pytest.mark.timeout(30)


class _Consumer(Service):
    """What Faust's consumer offers the drain loop: mode's wait_first and a suspend_flow event."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


async def _sync_callback(log: list[str], value: int) -> int:
    log.append("ran")
    return value


async def _blocked_callback(log: list[str], gate: asyncio.Future[int]) -> int:
    log.append("started")
    try:
        got = await gate
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    log.append("resumed")
    return got + 1


async def test_a_callback_done_at_its_first_step_completes_without_a_task() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)
    log: list[str] = []
    tasks_before = len(asyncio.all_tasks())
    cb = _sync_callback(log, 7)
    result = await consumer.wait_first(cb, consumer.suspend_flow.wait())
    assert log == ["ran"]
    assert result.results == [7] and result.done == [cb] and not result.stopped
    assert len(asyncio.all_tasks()) == tasks_before  # nothing left running; the other coroutine was closed


async def test_a_suspended_callback_is_resumed_where_it_stopped() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)
    log: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, gate.set_result, 41)
    result = await consumer.wait_first(_blocked_callback(log, gate), consumer.suspend_flow.wait())
    assert log == ["started", "resumed"]
    assert result.results == [42] and not result.stopped


async def test_a_suspended_callback_is_cancelled_when_the_flow_is_suspended() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)
    log: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()  # never resolved: a full buffer
    asyncio.get_running_loop().call_later(0.05, consumer.suspend_flow.set)  # a rebalance starts
    result = await consumer.wait_first(_blocked_callback(log, gate), consumer.suspend_flow.wait())
    await asyncio.sleep(0)  # let the cancellation reach the callback
    assert log == ["started", "cancelled"]
    assert result.results == [True]  # the suspension won (Event.wait returns True), as in mode's wait_first
    assert gate.cancelled()


async def test_while_the_flow_is_suspended_nothing_is_delivered_eagerly() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)
    consumer.suspend_flow.set()
    log: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    result = await consumer.wait_first(_blocked_callback(log, gate), consumer.suspend_flow.wait())
    await asyncio.sleep(0)
    # mode's own path: both coroutines become tasks, the suspension is done first, the callback is cancelled
    assert result.results == [True]
    assert log in ([], ["started", "cancelled"])


async def test_a_callback_error_propagates_and_the_other_coroutine_is_closed() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)

    async def broken() -> None:
        raise ValueError("decode failed")

    other = consumer.suspend_flow.wait()
    with pytest.raises(ValueError, match="decode failed"):
        await consumer.wait_first(broken(), other)
    assert inspect.getcoroutinestate(other) == inspect.CORO_CLOSED  # so no "never awaited" warning either


async def test_other_calls_take_modes_path() -> None:
    consumer = _Consumer()
    deliver_eagerly(consumer)
    deliver_eagerly(consumer)  # idempotent
    log: list[str] = []
    result = await consumer.wait_first(_sync_callback(log, 1), timeout=1.0)
    assert log == ["ran"] and result.results == [1]


async def test_resume_passes_exceptions_and_results_through() -> None:
    async def fails_after_a_turn() -> None:
        await asyncio.sleep(0)
        raise KeyError("k")

    coro = fails_after_a_turn()
    with pytest.raises(KeyError):
        await resume(coro, coro.send(None))
