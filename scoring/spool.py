r"""The append-only local spool that holds Kafka records while the broker is away.

Files (in ``SMARTTRIP_SPOOL_DIR``):

``spool.log``
    One record per line, appended in the order records were spooled::

        <crc32 of the rest, 8 hex digits>\t<topic>\t<key>\t<value>\n

    ``topic`` is a Kafka topic name, ``key`` the record key (a session id,
    validated to hold no control characters), ``value`` the record's compact
    JSON (no raw tab or newline can occur in either). A torn last line (the
    process died mid-write) is cut off at startup; a line whose CRC does not
    match is skipped and counted as dropped.
``spool.cursor``
    The byte offset in ``spool.log`` up to which every record has been
    acknowledged by Kafka; replaced atomically (write + rename). Replay starts
    there after a restart, so delivery is at-least-once: a record acknowledged
    after the last cursor write is sent again (consumers dedupe impressions by
    request id and interactions by event id).

When every spooled record is acknowledged the two files are emptied. The
disk bound (``SMARTTRIP_SPOOL_MAX_BYTES``) applies to the size of
``spool.log``; a record that would pass it is dropped, never written.

>>> import tempfile
>>> s = Spool(Path(tempfile.mkdtemp()), max_bytes=1 << 20)
>>> s.append([("impressions", b"s1", b'{"a":1}'), ("impressions", b"s2", b'{"a":2}')])
2
>>> [(r.key, r.value) for r in s.read(10)]
[(b's1', b'{"a":1}'), (b's2', b'{"a":2}')]
>>> s.commit(s.read_offset, 2); s.pending_records
0
>>> s.close()
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpoolRecord"]

log = logging.getLogger(__name__)

_LOG = "spool.log"
_CURSOR = "spool.cursor"


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    topic: str
    key: bytes
    value: bytes
    end: int  # byte offset just past this record's line
    lines: int = 1  # lines this record accounts for (itself and corrupt lines skipped before it)


def _line(topic: str, key: bytes, value: bytes) -> bytes:
    body = topic.encode() + b"\t" + key + b"\t" + value
    return b"%08x\t%s\n" % (zlib.crc32(body), body)


class Spool:
    """Append-only record spool with a committed cursor (see the module docstring)."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self.corrupt = 0
        self._path = directory / _LOG
        self._cursor_path = directory / _CURSOR
        self._path.touch(exist_ok=True)
        self._cut_torn_tail()
        self._writer = self._path.open("ab")
        self._size = self._path.stat().st_size
        self._committed = min(self._read_cursor(), self._size)
        self.read_offset = self._committed
        self._seen = self._committed
        self._pending = self._count(self._committed)

    # -- state
    @property
    def size(self) -> int:
        """Bytes in ``spool.log`` (what the disk bound applies to)."""
        return self._size

    @property
    def committed(self) -> int:
        """The cursor: every record before this byte offset is acknowledged."""
        return self._committed

    @property
    def pending_bytes(self) -> int:
        return self._size - self._committed

    @property
    def pending_records(self) -> int:
        """Records spooled and not yet acknowledged."""
        return self._pending

    @property
    def empty(self) -> bool:
        return self._committed >= self._size

    # -- writing
    def append(self, records: Sequence[tuple[str, bytes, bytes]]) -> int:
        """Append records in order; returns how many fit under the disk bound (the rest are not written)."""
        lines = []
        size = self._size
        for topic, key, value in records:
            line = _line(topic, key, value)
            if size + len(line) > self.max_bytes:
                break
            lines.append(line)
            size += len(line)
        if lines:
            self._writer.write(b"".join(lines))
            self._writer.flush()
            self._size = size
            self._pending += len(lines)
        return len(lines)

    # -- reading and acknowledging
    def read(self, max_records: int) -> list[SpoolRecord]:
        """Up to ``max_records`` records from :attr:`read_offset` on (which advances past them)."""
        out: list[SpoolRecord] = []
        if self.read_offset >= self._size:
            return out
        with self._path.open("rb") as f:
            f.seek(self.read_offset)
            pos = self.read_offset
            skipped = 0
            while len(out) < max_records and pos < self._size:
                raw = f.readline()
                if not raw.endswith(b"\n"):
                    break
                pos += len(raw)
                record = self._parse(raw, pos, skipped + 1)
                if record is None:
                    skipped += 1
                    if pos > self._seen:
                        self.corrupt += 1
                        log.error("spool: skipping a corrupt record ending at byte %d (CRC mismatch)", pos)
                    continue
                skipped = 0
                out.append(record)
            self._seen = max(self._seen, pos)
            self.read_offset = pos
        return out

    def rewind(self) -> None:
        """Read again from the committed cursor (the records after it were not all acknowledged)."""
        self.read_offset = self._committed

    def commit(self, offset: int, lines: int | None = None) -> None:
        """Every record before byte ``offset`` is acknowledged.

        ``lines``: how many lines that covers since the last commit (the sum of
        :attr:`SpoolRecord.lines`); None counts them from the file.
        """
        if offset <= self._committed:
            return
        self._committed = min(offset, self._size)
        self._pending = max(self._pending - lines, 0) if lines is not None else self._count(self._committed)
        if self.empty:
            self._reset()
        else:
            self._write_cursor(self._committed)

    def close(self) -> None:
        self._writer.close()

    # -- internals
    def _reset(self) -> None:
        self._writer.truncate(0)
        self._writer.seek(0)
        self._size = self._committed = self.read_offset = self._pending = self._seen = 0
        self._write_cursor(0)

    def _parse(self, raw: bytes, end: int, lines: int) -> SpoolRecord | None:
        parts = raw[:-1].split(b"\t", 3)
        if len(parts) != 4 or len(parts[0]) != 8:
            return None
        body = raw[9:-1]
        try:
            if int(parts[0], 16) != zlib.crc32(body):
                return None
            topic = parts[1].decode()
        except ValueError:  # bad hex or UTF-8
            return None
        return SpoolRecord(topic, parts[2], parts[3], end, lines)

    def _count(self, start: int) -> int:
        with self._path.open("rb") as f:
            f.seek(start)
            return sum(1 for line in f if line.endswith(b"\n"))

    def _cut_torn_tail(self) -> None:
        data_size = self._path.stat().st_size
        if data_size == 0:
            return
        with self._path.open("rb+") as f:
            f.seek(max(data_size - 1, 0))
            if f.read(1) == b"\n":
                return
            # Walk back to the last newline: the rest is a record cut short by a crash.
            pos = data_size
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    pos = pos - step + nl + 1
                    break
                pos -= step
            log.error("spool: cutting a torn last record (%d bytes) left by a crash", data_size - pos)
            self.corrupt += 1
            f.truncate(pos)

    def _read_cursor(self) -> int:
        try:
            return max(int(self._cursor_path.read_text().strip() or 0), 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _write_cursor(self, offset: int) -> None:
        tmp = self._cursor_path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self._cursor_path)
