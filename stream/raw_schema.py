"""A topic schema that makes Faust events straight from a record's key and value bytes.

What Faust's ``raw`` key and value serializers return (``want_bytes`` of
bytes is the same bytes), without the serializer registry and codec-chain
calls per record: ~4.6 % of the join worker's profile samples before,
~1.0 % after (py-spy, ``smarttrip bench join``, session 7).

The other per-record cut, delivering a record without mode's ``wait_first``
tasks, is :mod:`stream.eager_delivery`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

__all__ = ["RawSchema"]


class RawSchema(faust.Schema[Any, Any]):
    """Keys and values as the record's bytes (``None`` stays ``None``): Faust's ``raw`` serializers, inlined.

    Examples
    --------
    >>> RawSchema().key_serializer, RawSchema().value_serializer
    ('raw', 'raw')
    """

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: Any, **_: Any) -> Callable[..., Awaitable[Any]]:
        create_event = app.create_event

        async def decode(message: Any, *, propagate: bool = False) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode
