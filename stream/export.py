"""Topic records as files, and topic ranges read from Kafka: the analysts' input.

Export format: JSON Lines (one record per line, optionally gzip-compressed
when the file name ends in ``.gz``), schema version 1::

    {"v": 1, "topic": "impressions", "partition": 0, "offset": 42,
     "timestamp_ms": 1764325800123,            # broker timestamp (0 if unknown)
     "key": "s-123",                           # UTF-8 key, or null
     "value": {...}}                           # the record's JSON (the topic contract)

A value that is not JSON re-encoding to the very same bytes (a malformed
record kept for its dead letter) is stored as ``"value_b64"`` instead, so a
replay of an export sees exactly the bytes the workers saw. Parquet is not
offered: pyarrow is not a dependency.

Reading Kafka: :func:`read_kafka` assigns every partition of the topics
(no consumer group, nothing committed), seeks to ``since`` with
``offsets_for_times`` (or to explicit start offsets) and reads up to ``until``
(default: the call time) or the end, then merges the topics by broker
timestamp.

>>> import io
>>> rec = LogRecord("interactions", 0, 7, 1000, b"s1", b'{"v":1}')
>>> buf = io.BytesIO()
>>> _ = write_records([rec], buf)
>>> list(read_records(buf.getvalue().splitlines())) == [rec]
True
"""

from __future__ import annotations

import base64
import gzip
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

__all__ = ["EXPORT_VERSION", "ExportError", "LogRecord", "read_export", "read_kafka", "read_records",
           "write_export", "write_records"]  # fmt: skip

EXPORT_VERSION = 1


class ExportError(ValueError):
    """A line of an export file is not a record of this format; the message names the line and field."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One Kafka record: where it was, its broker timestamp, and its raw key and value."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def _to_line(rec: LogRecord) -> bytes:
    out: dict[str, object] = {
        "v": EXPORT_VERSION, "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
        "timestamp_ms": rec.timestamp_ms, "key": None if rec.key is None else rec.key.decode("utf-8", "replace"),
    }  # fmt: skip
    if rec.key is not None and out["key"] != rec.key.decode("utf-8", "ignore"):
        out["key_b64"] = base64.b64encode(rec.key).decode("ascii")
    if rec.value is None:
        out["value"] = None
    else:
        try:
            parsed = orjson.loads(rec.value)
            exact = parsed is not None and orjson.dumps(parsed) == rec.value
        except orjson.JSONDecodeError:
            exact = False
        if exact:
            out["value"] = orjson.Fragment(rec.value)
        else:
            out["value_b64"] = base64.b64encode(rec.value).decode("ascii")
    return orjson.dumps(out) + b"\n"


class BinaryWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


def write_records(records: Iterable[LogRecord], out: BinaryWriter) -> int:
    """Write records as JSON lines to a binary stream; returns how many."""
    n = 0
    for rec in records:
        out.write(_to_line(rec))
        n += 1
    return n


def write_export(records: Iterable[LogRecord], path: Path) -> int:
    """Write an export file (gzip when ``path`` ends in ``.gz``); returns the record count."""
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as gz:
            return write_records(records, gz)
    with path.open("wb") as fh:
        return write_records(records, fh)


def _str(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ExportError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _int(obj: Mapping[str, object], key: str, where: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ExportError(f"{where}: field {key!r} must be an integer >= 0, got {value!r}")
    return value


def _from_line(raw: bytes | str, lineno: int) -> LogRecord:
    where = f"line {lineno}"
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{where}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ExportError(f"{where}: must be a JSON object")
    if obj.get("v") != EXPORT_VERSION:
        raise ExportError(f"{where}: field 'v' must be {EXPORT_VERSION}, got {obj.get('v')!r}")
    key_b64, key = obj.get("key_b64"), obj.get("key")
    key_bytes = base64.b64decode(key_b64) if isinstance(key_b64, str) else (
        key.encode() if isinstance(key, str) else None)  # fmt: skip
    if "value_b64" in obj:
        value: bytes | None = base64.b64decode(_str(obj, "value_b64", where))
    elif obj.get("value") is None:
        value = None
    else:
        value = orjson.dumps(obj["value"])
    return LogRecord(
        _str(obj, "topic", where), _int(obj, "partition", where), _int(obj, "offset", where),
        _int(obj, "timestamp_ms", where), key_bytes, value,
    )  # fmt: skip


def read_records(lines: Iterable[bytes | str]) -> Iterator[LogRecord]:
    """Parse export lines (blank lines skipped); :class:`ExportError` names a bad line."""
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            yield _from_line(line, lineno)


def read_export(path: Path) -> Iterator[LogRecord]:
    """Records of an export file, in file order."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as gz:
            yield from read_records(gz)
    else:
        with path.open("rb") as fh:
            yield from read_records(fh)


def read_kafka(
    bootstrap: str,
    topics: Iterable[str],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    start_offsets: Mapping[tuple[str, int], int] | None = None,
    timeout_s: float = 30.0,
) -> list[LogRecord]:
    """Records of ``topics`` in ``[since_ms, until_ms)`` (broker time), merged by timestamp.

    Each partition is read in offset order from ``start_offsets`` (if given for
    it), else from the first offset at or after ``since_ms``, else from the
    beginning, up to the first record stamped at or after ``until_ms`` (default:
    the call time) or the end of the partition. Ties in timestamp keep topic
    order as given, then partition, then offset.
    """
    import time

    from kafka import KafkaConsumer, TopicPartition

    topics = list(topics)
    cutoff = until_ms if until_ms is not None else int(time.time() * 1000) + 1
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        empty: set[TopicPartition] = set()
        if since_ms is not None:
            found = consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
            starts = {tp: (ends[tp] if found.get(tp) is None else found[tp].offset) for tp in tps}
            empty = {tp for tp in tps if found.get(tp) is None}  # nothing stamped at or after since
        for (topic, partition), offset in (start_offsets or {}).items():
            starts[TopicPartition(topic, partition)] = offset
        for tp in tps:
            consumer.seek(tp, starts[tp])
        per_tp: dict[TopicPartition, list[LogRecord]] = {tp: [] for tp in tps}
        deadline = time.monotonic() + timeout_s
        explicit = {TopicPartition(t, p) for t, p in (start_offsets or {})}
        done = empty - explicit
        quiet = dict.fromkeys(tps, 0)
        while len(done) < len(tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read_kafka: partitions not read to their end within {timeout_s} s")
            polled = consumer.poll(timeout_ms=300)
            for tp in tps:
                if tp in done:
                    continue
                batch = polled.get(tp, [])
                for r in batch:
                    if r.timestamp >= cutoff:
                        done.add(tp)
                        consumer.pause(tp)
                        break
                    if since_ms is None or r.timestamp >= since_ms or tp in explicit:
                        per_tp[tp].append(
                            LogRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                        )
                # The end offset is a lower bound (some brokers report the last batch's base
                # offset): past it, a partition is done after two polls without records.
                quiet[tp] = 0 if batch else quiet[tp] + 1
                if consumer.position(tp) >= ends[tp] and quiet[tp] >= 2:
                    done.add(tp)
    finally:
        consumer.close()
    order = {t: i for i, t in enumerate(topics)}
    streams = [
        [((r.timestamp_ms, order[r.topic], r.partition, r.offset), r) for r in recs]
        for recs in per_tp.values()
    ]
    return [r for _, r in heapq.merge(*streams, key=lambda item: item[0])]
