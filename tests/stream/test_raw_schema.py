"""RawSchema decodes a record as Faust's raw serializers do."""

from __future__ import annotations

from typing import Any

import faust
import pytest

from stream.raw_schema import RawSchema


@pytest.mark.parametrize(
    ("key", "value"),
    [(b"session-1", b'{"v": 1}'), (None, b"x"), (b"k", None), (b"", b""), (b"\xff\x00", b"\x00" * 300)],
)
async def test_raw_schema_decodes_as_fausts_raw_serializers(key: bytes | None, value: bytes | None) -> None:
    app = faust.App("fastpath-test", broker="kafka://127.0.0.1:9", store="memory://")
    ours = app.topic("a", schema=RawSchema())
    theirs = app.topic("a", key_serializer="raw", value_serializer="raw")
    message: Any = faust.types.Message(
        topic="a", partition=0, offset=1, timestamp=0.0, timestamp_type=0, headers=[("h", b"1")],
        key=key, value=value, checksum=None,
    )  # fmt: skip
    got, want = await ours.decode(message, propagate=True), await theirs.decode(message, propagate=True)
    assert (got.key, got.value, got.headers, got.message) == (
        want.key,
        want.value,
        want.headers,
        want.message,
    )
    assert type(got.key) is type(want.key) and type(got.value) is type(want.value)
