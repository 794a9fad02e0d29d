"""Deliver each fetched record to its stream without four tasks per record.

Faust's consumer hands every fetched record to the topic conductor through
``await self.wait_first(callback(message), self.suspend_flow.wait())``:
``wait_first`` wraps the delivery, the flow-suspension wait and the
consumer's own stopped/crashed waits in a task each and runs
``asyncio.wait`` over them — about 30 µs of CPU per record (25 % of the bare
counting agent's CPU per event under ``smarttrip bench join``, py-spy), for a
delivery that almost always completes without ever suspending (it puts the
event on a stream queue that has room).

:func:`install_eager_delivery` makes the app's consumer run that delivery
coroutine eagerly, in the caller's task: if it finishes in its first step
(the common case) its result is returned as ``wait_first`` would have
returned it, with no task created; if it suspends (a full stream buffer,
flow control, the producer buffer's back-pressure), the partly run
coroutine is resumed inside Faust's own ``wait_first``, so the slow path
keeps its semantics (it races the suspension event and the consumer's
stop). Only the drain loop's call is taken over (recognised by the code
object of the conductor's callback); every other ``wait_first`` call goes
to Faust unchanged. Records are still delivered one by one, in fetch order.

Both stream worker modes (the join and the bare counting agent) install it,
so the join benchmark's ratio measures the join against the same Faust.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import CodeType
from typing import Any

import faust
from mode.services import WaitResults

__all__ = ["EagerWaitFirst", "install_eager_delivery"]


def install_eager_delivery(app: faust.App) -> None:
    """Make the consumer ``app`` creates (lazily, at worker start) deliver records eagerly."""
    new_consumer: Callable[[], Any] = app._new_consumer

    def _new_consumer() -> Any:
        consumer = new_consumer()
        consumer.wait_first = EagerWaitFirst(consumer.wait_first, consumer.callback)
        return consumer

    app._new_consumer = _new_consumer  # type: ignore[method-assign]


class EagerWaitFirst:
    """A consumer's ``wait_first`` that runs the record-delivery coroutine eagerly.

    Parameters
    ----------
    slow
        The consumer's own ``wait_first`` (every other call goes there).
    callback
        The consumer's record callback (the conductor's ``on_message``); a
        call whose first argument is a coroutine of this function is a
        record delivery.
    """

    __slots__ = ("_code", "_slow", "eager", "resumed")

    def __init__(self, slow: Callable[..., Awaitable[WaitResults]], callback: Callable[..., Any]) -> None:
        self._slow = slow
        self._code: CodeType | None = getattr(callback, "__code__", None)
        #: Deliveries finished in their first step / resumed in Faust's ``wait_first``.
        self.eager = 0
        self.resumed = 0

    async def __call__(self, *coros: Any, timeout: float | None = None) -> WaitResults:
        first = coros[0] if coros else None
        if timeout is not None or getattr(first, "cr_code", None) is not self._code or self._code is None:
            return await self._slow(*coros, timeout=timeout)
        delivery: Coroutine[Any, Any, Any] = first  # type: ignore[assignment]
        try:
            pending = delivery.send(None)
        except BaseException as exc:
            for other in coros[1:]:  # never started: close them, as Faust cancels the losers
                other.close()
            if type(exc) is not StopIteration:
                raise  # the delivery failed: its error propagates, as from Faust's wait_first
            self.eager += 1
            return WaitResults([delivery], [exc.value], False)
        self.resumed += 1
        return await self._slow(_Resumed(delivery, pending).run(), *coros[1:])


class _Resumed:
    """The rest of a coroutine that already ran its first step and yielded ``pending``.

    Awaiting :meth:`run` continues it exactly as ``await coro`` would have
    (``yield from``'s protocol: values sent or thrown in are forwarded).
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    async def run(self) -> Any:
        return await self

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # forwarded into the coroutine, as yield from does
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value
