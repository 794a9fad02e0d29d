"""Field readers for untrusted JSON objects (private).

Why: every decoder checks types, ranges and sizes the same way and names the
offending field the same way (``slate[3].propensity: ...``); keeping the
checks here lets :mod:`stream.events` read like the topic contract.

JSON numbers: ``bool`` is never accepted where a number is expected (Python
says ``True == 1``; the contract does not), integers are accepted where a
float is expected, and floats are never accepted where an integer is expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from stream.errors import EventError

MAX_ID_LEN: Final = 128
MAX_TEXT_LEN: Final = 1024

_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    bool: "bool",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def type_name(value: object) -> str:
    """JSON name of a decoded value's type, for messages."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def show(value: object) -> str:
    """Bounded ``repr`` of a bad value, safe to put in a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def join(prefix: str, key: str) -> str:
    """Field path ``prefix.key`` (``key`` alone at the top level)."""
    return f"{prefix}.{key}" if prefix else key


def as_object(value: object, path: str) -> Mapping[str, object]:
    """``value`` as a JSON object, or an error naming ``path``."""
    if not isinstance(value, dict):
        raise EventError(path, f"must be an object, got {type_name(value)}")
    return value


def require(obj: Mapping[str, object], key: str, prefix: str) -> object:
    """The value under ``key``; missing keys and ``null`` are both 'required'."""
    value = obj.get(key)
    if value is None:
        raise EventError(join(prefix, key), "is required")
    return value


def check_str(value: object, path: str, *, max_len: int = MAX_ID_LEN) -> str:
    """A non-empty string of at most ``max_len`` characters."""
    if not isinstance(value, str):
        raise EventError(path, f"must be a string, got {type_name(value)}")
    if not value:
        raise EventError(path, "must be a non-empty string")
    if len(value) > max_len:
        raise EventError(path, f"must be at most {max_len} characters, got {len(value)}")
    return value


def req_str(obj: Mapping[str, object], key: str, prefix: str = "", *, max_len: int = MAX_ID_LEN) -> str:
    """Required bounded string field."""
    return check_str(require(obj, key, prefix), join(prefix, key), max_len=max_len)


def opt_str(obj: Mapping[str, object], key: str, prefix: str = "") -> str | None:
    """Optional bounded string field (absent or ``null`` mean ``None``)."""
    value = obj.get(key)
    return None if value is None else check_str(value, join(prefix, key))


def check_float(value: object, path: str) -> float:
    """A finite JSON number (integers allowed, booleans not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(path, f"must be a number, got {type_name(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise EventError(path, f"must be finite, got {show(value)}")
    return number


def req_float(obj: Mapping[str, object], key: str, prefix: str = "") -> float:
    """Required finite number field."""
    return check_float(require(obj, key, prefix), join(prefix, key))


def check_int(value: object, path: str, *, lo: int, hi: int) -> int:
    """An integer (not bool, not float) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(path, f"must be an integer, got {type_name(value)}")
    if not lo <= value <= hi:
        raise EventError(path, f"must be in [{lo}, {hi}], got {show(value)}")
    return value


def req_int(obj: Mapping[str, object], key: str, prefix: str = "", *, lo: int, hi: int) -> int:
    """Required bounded integer field."""
    return check_int(require(obj, key, prefix), join(prefix, key), lo=lo, hi=hi)


def req_bool(obj: Mapping[str, object], key: str, prefix: str = "") -> bool:
    """Required boolean field (``0``/``1`` are not booleans)."""
    value = require(obj, key, prefix)
    if not isinstance(value, bool):
        raise EventError(join(prefix, key), f"must be a boolean, got {type_name(value)}")
    return value


def opt_bool(obj: Mapping[str, object], key: str, prefix: str = "") -> bool:
    """Optional boolean field, False when absent (``0``/``1`` are not booleans)."""
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise EventError(join(prefix, key), f"must be a boolean, got {type_name(value)}")
    return value


def check_list(value: object, path: str, *, min_len: int, max_len: int) -> list[object]:
    """A JSON array with ``min_len`` to ``max_len`` items."""
    if not isinstance(value, list):
        raise EventError(path, f"must be an array, got {type_name(value)}")
    if not min_len <= len(value) <= max_len:
        raise EventError(path, f"must have {min_len} to {max_len} items, got {len(value)}")
    return value


def opt_list(obj: Mapping[str, object], key: str, prefix: str = "", *, max_len: int) -> list[object]:
    """Optional array field; absent or ``null`` mean empty."""
    value = obj.get(key)
    return [] if value is None else check_list(value, join(prefix, key), min_len=0, max_len=max_len)


_NUMBER_TYPES = frozenset({float, int})


def float_row(value: object, path: str, *, max_len: int) -> tuple[float, ...]:
    """An array of finite numbers, as a tuple."""
    items = check_list(value, path, min_len=0, max_len=max_len)
    # Fast path for the common case (φ rows): all floats/ints and a finite sum.
    if set(map(type, items)) <= _NUMBER_TYPES:
        row = tuple(map(float, items))  # type: ignore[arg-type]  # all int|float, checked above
        try:
            if math.isfinite(math.fsum(row)):
                return row
        except OverflowError:
            pass  # huge finite values: the exact check below decides
    return tuple(check_float(x, f"{path}[{i}]") for i, x in enumerate(items))


def str_row(value: object, path: str, *, max_len: int) -> tuple[str, ...]:
    """An array of distinct bounded strings, as a tuple."""
    items = check_list(value, path, min_len=0, max_len=max_len)
    row = tuple(check_str(x, f"{path}[{i}]") for i, x in enumerate(items))
    seen: set[str] = set()
    for i, name in enumerate(row):
        if name in seen:
            raise EventError(f"{path}[{i}]", f"duplicate value {show(name)}")
        seen.add(name)
    return row


def in_range(number: float, path: str, *, lo: float, hi: float, lo_open: bool = False) -> float:
    """Check ``lo < number <= hi`` (``lo_open``) or ``lo <= number <= hi``."""
    ok = (lo < number if lo_open else lo <= number) and number <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise EventError(path, f"must be in {bracket}{show_num(lo)}, {show_num(hi)}], got {show_num(number)}")
    return number


def show_num(number: float) -> str:
    """Shortest readable form: ``0`` for 0.0, ``0.25`` for 0.25."""
    number = float(number)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def at_least(number: float, path: str, *, lo: float) -> float:
    """Check ``number >= lo``."""
    if number < lo:
        raise EventError(path, f"must be >= {show_num(lo)}, got {show_num(number)}")
    return number
