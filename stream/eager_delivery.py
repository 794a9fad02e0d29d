"""Faust's per-record delivery without mode's ``wait_first`` tasks when the delivery does not wait.

Faust hands every fetched record to the stream in ``Consumer._drain_messages``::

    await self.wait_first(callback(message), self.suspend_flow.wait())

``wait_first`` (mode's ``Service.wait_first``) wraps both coroutines and the
consumer's ``stopped``/``crashed`` events in four tasks and an
``asyncio.wait`` — for a callback that, in a worker keeping up, finishes at
its first step: it only decodes the record and puts it in a stream queue
that has room (py-spy of the join worker in ``smarttrip bench join``: ~14 %
of its samples, ~25 % of the bare counting agent's).
:func:`deliver_eagerly` gives the consumer a ``wait_first`` that first runs
the callback's first step itself; when that step finishes the callback (no
await had to wait), the result is what ``wait_first`` would have returned
with the callback first done and the flow-suspension coroutine is closed
unstarted. When the callback does suspend (a full stream buffer, flow
control, a full producer buffer), it goes on as a task under mode's own
``wait_first``, resumed exactly where it stopped, so a rebalance
(``suspend_flow`` set) still abandons it as before. Nothing else changes:
no record is delivered while the flow is suspended or the consumer stopped
(those calls take mode's path from the start), the read offset is still set
only after the callback returned, and the callback's exceptions propagate
as they did.

Why not simply ``await callback(message)``: a callback blocked on a full
buffer through a rebalance would then complete *after* the seek to the
committed offsets and move the read offset past the records to be read
again (measured in session 4: the survivor of the two-workers-one-killed
test skipped ~1,000 impressions). Here such a callback is cancelled by the
suspension, as in Faust.

What does change in effect: more records are delivered per turn of the
event loop, so a rebalance that starts meanwhile finds more fetched records
to drop. Faust reads them again from the committed offsets — except where
there are none (a new log after a broker restart), and then the partition
stalled: a join worker frozen through a broker restart emitted none or few
of the new log's examples in 3 of 3 runs (session 8). The join worker
therefore runs :mod:`stream.delivery_watch`, which reads such records again.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from mode.services import WaitResults

__all__ = ["deliver_eagerly", "resume"]


class _Resumed:
    """Awaitable that goes on driving ``coro`` after its first step yielded ``yielded``."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # cancellation included: the coroutine decides
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Await ``coro`` from where its first ``send(None)`` left it (it yielded ``yielded``).

    Examples
    --------
    >>> import asyncio
    >>> async def twice():
    ...     await asyncio.sleep(0)
    ...     return 2
    >>> async def main():
    ...     c = twice()
    ...     return await resume(c, c.send(None))
    >>> asyncio.run(main())
    2
    """
    return await _Resumed(coro, yielded)


def deliver_eagerly(consumer: Any) -> None:
    """Give a Faust consumer the eager ``wait_first`` described in the module docstring (idempotent)."""
    if getattr(consumer, "_smarttrip_eager", False):
        return
    slow: Callable[..., Awaitable[WaitResults]] = consumer.wait_first  # mode's, bound

    async def wait_first(*coros: Any, timeout: Any = None) -> WaitResults:
        if (
            len(coros) != 2
            or timeout is not None
            or not all(isinstance(c, types.CoroutineType) for c in coros)
            or consumer.suspend_flow.is_set()
            or consumer._stopped.is_set()
            or consumer._crashed.is_set()
        ):
            return await slow(*coros, timeout=timeout)
        first, other = coros
        try:
            yielded = first.send(None)
        except StopIteration as stop:  # done at once: the first to complete, as mode would report it
            other.close()
            return WaitResults([first], [stop.value], False)
        except BaseException:
            other.close()
            raise
        return await slow(resume(first, yielded), other)

    consumer.wait_first = wait_first
    consumer._smarttrip_eager = True
