"""Eager record delivery: same results as Faust's ``wait_first``, without its tasks when nothing blocks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mode import Service

from stream.eager_delivery import EagerWaitFirst
from stream.faust_app import create_app
from stream.settings import StreamSettings


class _Consumer(Service):
    """A mode service: its ``wait_first`` is the one Faust's consumer has."""


def _wired(callback: Any) -> tuple[EagerWaitFirst, list[tuple[Any, ...]], _Consumer]:
    svc = _Consumer()
    calls: list[tuple[Any, ...]] = []

    async def slow(*coros: Any, timeout: float | None = None) -> Any:
        calls.append(coros)
        return await svc.wait_first(*coros, timeout=timeout)

    return EagerWaitFirst(slow, callback), calls, svc


async def test_a_delivery_that_does_not_block_returns_its_result_without_faust() -> None:
    seen: list[int] = []

    async def on_message(message: int) -> int:
        seen.append(message)
        return message * 10

    ewf, calls, svc = _wired(on_message)
    for m in range(5):
        delivery = on_message(m)
        res = await ewf(delivery, svc._stopped.wait())  # the drain loop's call: (delivery, suspension wait)
        assert (res.done, res.results, res.stopped) == ([delivery], [m * 10], False)
    assert seen == [0, 1, 2, 3, 4]  # delivered in order, each before the call returned
    assert calls == []
    assert (ewf.eager, ewf.resumed) == (5, 0)


async def test_a_delivery_that_blocks_is_resumed_inside_faust_wait_first() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def on_message(message: str) -> str:
        seen.append(f"start {message}")
        got = await gate  # a full stream buffer: the value sent back in must reach the coroutine
        seen.append(f"end {message} {got}")
        return got + message

    ewf, calls, _ = _wired(on_message)
    suspend = asyncio.Event()
    task = asyncio.ensure_future(ewf(on_message("a"), suspend.wait()))
    await asyncio.sleep(0.01)
    assert seen == ["start a"] and not task.done()
    gate.set_result("room for ")
    res = await asyncio.wait_for(task, 2)
    assert res.results == ["room for a"] and res.stopped is False
    assert seen == ["start a", "end a room for "]
    assert len(calls) == 1 and (ewf.eager, ewf.resumed) == (0, 1)


async def test_a_blocked_delivery_is_cancelled_when_flow_is_suspended_as_faust_does() -> None:
    cancelled: list[bool] = []

    async def on_message(message: str) -> None:
        try:
            await asyncio.Event().wait()  # never room
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    ewf, _, _ = _wired(on_message)
    suspend = asyncio.Event()
    waiting = suspend.wait()
    task = asyncio.ensure_future(ewf(on_message("a"), waiting))
    await asyncio.sleep(0.01)
    suspend.set()  # a rebalance suspends the flow: Faust's wait_first returns, cancelling the delivery
    res = await asyncio.wait_for(task, 2)
    assert res.done == [waiting] and res.stopped is False
    await asyncio.sleep(0)
    assert cancelled == [True]


@pytest.mark.parametrize("blocks", [False, True])
async def test_an_error_in_the_delivery_propagates_on_both_paths(blocks: bool) -> None:
    async def on_message(message: str) -> None:
        if blocks:
            await asyncio.sleep(0)
        raise ValueError(f"bad {message}")

    ewf, _, _ = _wired(on_message)
    with pytest.raises(ValueError, match="bad x"):
        await ewf(on_message("x"), asyncio.Event().wait())


async def test_other_wait_first_calls_go_to_faust_unchanged() -> None:
    async def on_message(message: str) -> str:
        return message

    async def something_else() -> str:
        return "other"

    ewf, calls, _ = _wired(on_message)
    res = await ewf(something_else(), timeout=1.0)
    assert res.results == ["other"] and len(calls) == 1
    res = await ewf(on_message("m"), timeout=1.0)  # a timeout: not the drain loop's call
    assert res.results == ["m"] and len(calls) == 2 and ewf.eager == 0


@pytest.mark.parametrize("mode", ["join", "count"])
def test_both_worker_modes_deliver_through_the_conductor_eagerly(mode: str) -> None:
    built = create_app(StreamSettings.from_env({"SMARTTRIP_KAFKA_BOOTSTRAP": "127.0.0.1:1"}), mode=mode)  # type: ignore[arg-type]
    consumer = built.app.consumer  # created, not started: no thread, no connection
    try:
        assert isinstance(consumer.wait_first, EagerWaitFirst)
        # the drain loop's callback is the conductor's compiled on_message: its code is what is matched
        assert consumer.callback.__code__ is consumer.wait_first._code
        assert consumer.callback.__code__ is built.app.topics.on_message.__code__
    finally:  # the loops Faust made for them
        for loop in {built.app.loop, consumer.loop, consumer._thread.thread_loop}:
            loop.close()
