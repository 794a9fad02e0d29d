"""Consumer lag of a Faust worker: records in its assigned partitions that it has not processed yet.

Lag per partition is the high watermark (the offset the next produced record
will get, as the last fetch response reported it) minus the worker's
position: one past the last offset its agent took (``progress``, kept by the
agent), else one past the last offset Faust's consumer read, else its
committed offset, else the start of the log. Faust's read offset moves when a
record enters its stream buffer, not when the agent takes it: a learner
thousands of records behind, all buffered, reported a lag of 0 (measured:
12,000 records behind, lag 0), so workers pass their agent's progress. Partitions whose high
watermark is not known yet (no fetch answered) are left out rather than
guessed. The result is summed per topic, the label the bundles export, so
cardinality stays at the number of source topics.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["consumer_lag", "partition_lag"]

log = logging.getLogger(__name__)


def partition_lag(highwater: int | None, last_read: int | None, committed: int | None) -> int | None:
    """Lag of one partition, or None when the high watermark is unknown.

    >>> partition_lag(100, 89, 50), partition_lag(100, None, 40), partition_lag(100, None, None)
    (10, 60, 100)
    >>> partition_lag(None, 5, 5) is None, partition_lag(10, 12, None)
    (True, 0)
    """
    if highwater is None:
        return None
    if last_read is not None:
        position = last_read + 1
    elif committed is not None:
        position = committed
    else:
        position = 0
    return max(highwater - position, 0)


def consumer_lag(
    app: Any, topics: Collection[str], progress: Mapping[tuple[str, int], int] | None = None
) -> dict[str, int]:
    """Summed lag per topic of ``topics`` over the partitions ``app`` (a ``faust.App``) owns.

    Every topic in ``topics`` is in the result (0 when the worker owns none of
    its partitions), so the gauge exists from the first scrape on.
    """
    lag = dict.fromkeys(topics, 0)
    for (topic, _), value in partition_lags(app, topics, progress).items():
        lag[topic] += value
    return lag


def partition_lags(
    app: Any, topics: Collection[str], progress: Mapping[tuple[str, int], int] | None = None
) -> dict[tuple[str, int], int]:
    """Lag of each (topic, partition) of ``topics`` that ``app`` owns and whose high watermark is known.

    ``progress`` maps (topic, partition) to the last offset the agent took;
    when it is given, a partition missing from it counts from its committed
    offset (Faust's read offset would count buffered records as done). Faust
    keeps the read and committed offsets in its consumer (``_read_offset``,
    ``_committed_offset``); they are read, never changed.
    """
    out: dict[tuple[str, int], int] = {}
    try:
        consumer = app.consumer
        assigned = app.consumer.assignment()
    except Exception:  # not started yet, or shutting down: nothing owned
        return out
    read: Mapping[Any, int] = getattr(consumer, "_read_offset", {})
    committed = getattr(consumer, "_committed_offset", {})
    for tp in assigned:
        if tp.topic not in topics:
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # noqa: S112  # partition being revoked: the next round sees the new owner
            continue
        taken = read.get(tp) if progress is None else progress.get((tp.topic, tp.partition))
        value = partition_lag(highwater, taken, committed.get(tp))
        if value is not None:
            out[(tp.topic, tp.partition)] = value
    return out
