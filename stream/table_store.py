"""Session states in memory over a (changelog-backed) table, written back once per batch.

Split from :mod:`stream.join_runtime`, which keeps one :class:`TableStore`
per input partition's join over the worker's one table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, MutableMapping

import orjson

from stream.errors import EventError
from stream.session import SessionState

__all__ = ["StateTable", "TableStore"]

log = logging.getLogger(__name__)


StateTable = MutableMapping[str, "bytes | SessionState"]
"""A session table: the state objects this worker wrote, or the bytes recovered from a changelog."""


class TableStore(MutableMapping[str, SessionState]):
    """Session states in memory over a table, written back on :meth:`flush`.

    ``flush`` stores each changed state *object* in the table (the bytes of a
    2 KiB state cost up to 8 KiB of RSS for the session's whole life, and the
    object is in memory anyway) and returns the (key, encoded value or None)
    changes so the caller can write them to a changelog topic itself (see
    :class:`JoinRuntime`). Entries recovered from a changelog are bytes
    (:meth:`SessionState.to_compact` JSON, or the older ``to_dict`` form).
    """

    def __init__(self, table: StateTable, keys: Iterable[str]) -> None:
        self._table = table
        self._cache: dict[str, SessionState] = {}
        self._dirty: set[str] = set()
        for key in keys:
            raw = table.get(key)
            if raw is None:
                continue
            if isinstance(raw, SessionState):
                self._cache[key] = raw
                continue
            try:
                self._cache[key] = SessionState.from_dict(orjson.loads(raw))
            except (
                EventError,
                ValueError,
            ) as exc:  # orjson.JSONDecodeError is a ValueError  # a state we cannot read is dropped, loudly
                log.error("dropping unreadable session state %r: %s", key, exc)

    def __getitem__(self, key: str) -> SessionState:
        return self._cache[key]

    # get, in and pop straight on the dict: the Mapping mixins go through __getitem__ and
    # catch its KeyError, which the join pays on every event of a new session.
    def get(self, key: str, default: SessionState | None = None) -> SessionState | None:  # type: ignore[override]
        return self._cache.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def pop(self, key: str, *default: SessionState | None) -> SessionState | None:  # type: ignore[override]
        if key in self._cache:
            self._dirty.add(key)
            return self._cache.pop(key)
        if len(default) > 1:
            raise TypeError(f"pop expected at most 2 arguments, got {1 + len(default)}")
        if default:
            return default[0]
        raise KeyError(key)

    def __setitem__(self, key: str, value: SessionState) -> None:
        self._cache[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._cache[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    def flush(self) -> list[tuple[str, bytes | None]]:
        """Write every session changed since the last flush; returns the changes written."""
        changes: list[tuple[str, bytes | None]] = []
        for key in self._dirty:
            state = self._cache.get(key)
            if state is not None:
                value = state.compact_json()
                self._table[key] = state
                changes.append((key, value))
            elif key in self._table:
                del self._table[key]
                changes.append((key, None))
        self._dirty.clear()
        return changes
