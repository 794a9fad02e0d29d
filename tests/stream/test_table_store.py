"""TableStore's dict shortcuts (get, in, pop) behave as the MutableMapping methods they replace."""

from __future__ import annotations

import orjson
import pytest

from stream.session import SessionState
from stream.table_store import StateTable, TableStore


def test_get_contains_and_pop_act_as_on_a_mapping_and_mark_writes() -> None:
    a, b = SessionState("a"), SessionState("b")
    table: StateTable = {"a": a, "b": orjson.dumps(b.to_compact())}  # an object and changelog bytes
    store = TableStore(table, ["a", "b", "missing"])
    assert store.get("a") is a and store.get("b") == b and store.get("missing") is None
    assert store.get("missing", a) is a
    assert "a" in store and "missing" not in store
    assert store.flush() == []  # reading writes nothing

    assert store.pop("a") is a and store.pop("a", None) is None and "a" not in store
    with pytest.raises(KeyError):
        store.pop("a")
    with pytest.raises(TypeError):
        store.pop("a", None, None)
    assert store.flush() == [("a", None)]  # the popped session is deleted from the table
    assert "a" not in table and table["b"] == orjson.dumps(b.to_compact())  # b was never written back
