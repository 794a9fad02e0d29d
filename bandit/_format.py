"""The learners' byte format: a JSON header and numpy arrays, no pickle.

Layout (all integers big-endian)::

    b"STLM"                       magic, 4 bytes
    u16   format version          FORMAT_VERSION (this framing)
    u32   header length           bytes of the UTF-8 JSON header that follows
    JSON  header                  {"kind", "schema", "params", "state", "arrays", "crc32"}
    .npy  array 0, array 1, ...   numpy's own ``.npy`` encoding, in header order

``kind`` names the learner class (``lin_ucb``…) and ``schema`` its state
layout version; ``params`` are the constructor arguments (so ``from_bytes``
rebuilds the same object), ``state`` the scalar learned state, ``arrays`` the
name and byte length of each array, ``crc32`` the checksum of the array
section. The JSON is written with sorted keys and floats in ``repr`` form, so
the same model always gives the same bytes and every float round-trips
exactly. Arrays are read with ``allow_pickle=False`` and must be numeric.

>>> blob = pack("demo", 1, {"alpha": 0.5}, {"n": 3}, {"b": np.arange(3.0)})
>>> blob[:4], unpack(blob, "demo", (1,)).arrays["b"].tolist()
(b'STLM', [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bandit.errors import ModelFormatError

__all__ = ["FORMAT_VERSION", "MAGIC", "Unpacked", "pack", "require", "unpack"]

MAGIC: Final = b"STLM"
FORMAT_VERSION: Final = 1
_PREFIX = struct.Struct(">4sHI")
_MAX_HEADER = 1 << 24
_ARG = "data"


@dataclass(frozen=True)
class Unpacked:
    """A decoded blob: its kind, schema, constructor params, scalar state and arrays."""

    kind: str
    schema: int
    params: dict[str, Any]
    state: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]]


def _npy(array: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def pack(
    kind: str,
    schema: int,
    params: Mapping[str, Any],
    state: Mapping[str, Any],
    arrays: Mapping[str, npt.NDArray[Any]],
) -> bytes:
    """Encode one learner; ``params`` and ``state`` must be JSON (finite floats only)."""
    blobs = [(name, _npy(np.asarray(a))) for name, a in arrays.items()]
    body = b"".join(b for _, b in blobs)
    header = {
        "kind": kind,
        "schema": schema,
        "params": dict(params),
        "state": dict(state),
        "arrays": [[name, len(b)] for name, b in blobs],
        "crc32": zlib.crc32(body),
    }
    raw = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(raw)) + raw + body


def _bad(problem: str) -> ModelFormatError:
    return ModelFormatError(_ARG, problem)


def _read_array(blob: bytes, name: str) -> npt.NDArray[Any]:
    try:
        arr = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _bad(f"array {name!r} is not a valid .npy blob ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise _bad(f"array {name!r} has non-numeric dtype {arr.dtype}")
    return arr


def unpack(data: bytes, kind: str | None, schemas: Collection[int]) -> Unpacked:
    """Decode a blob written by :func:`pack`; ``kind=None`` accepts any kind.

    Raises :class:`~bandit.errors.ModelFormatError` naming what is wrong.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bad(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise _bad("not a SmartTrip learner blob (bad magic)")
    _, version, n_header = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise _bad(f"unsupported format version {version}; this code reads {FORMAT_VERSION}")
    if n_header > _MAX_HEADER or _PREFIX.size + n_header > len(data):
        raise _bad(f"truncated header ({n_header} bytes announced, {len(data) - _PREFIX.size} present)")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + n_header].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"header is not valid JSON ({exc})") from None
    keys = {"kind", "schema", "params", "state", "arrays", "crc32"}
    if not isinstance(header, dict) or set(header) != keys:
        raise _bad(f"header must be an object with keys {sorted(keys)}")
    got_kind, schema = header["kind"], header["schema"]
    if kind is not None and got_kind != kind:
        raise _bad(f"holds a {got_kind!r} model, expected {kind!r}")
    if not isinstance(schema, int) or schema not in schemas:
        raise _bad(f"{got_kind} schema {schema!r} not supported; this code reads {sorted(schemas)}")
    if not isinstance(header["params"], dict) or not isinstance(header["state"], dict):
        raise _bad("header params and state must be objects")
    if not isinstance(header["arrays"], list):
        raise _bad("header arrays must be a list")
    body = data[_PREFIX.size + n_header :]
    if zlib.crc32(body) != header["crc32"]:
        raise _bad("array section is corrupt (crc32 mismatch)")
    arrays: dict[str, npt.NDArray[Any]] = {}
    offset = 0
    for entry in header["arrays"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], int)):
            raise _bad(f"bad array entry {entry!r}")
        name, size = str(entry[0]), entry[1]
        if size < 0 or offset + size > len(body):
            raise _bad(f"array {name!r} is truncated")
        arrays[name] = _read_array(body[offset : offset + size], name)
        offset += size
    if offset != len(body):
        raise _bad(f"{len(body) - offset} trailing bytes after the arrays")
    return Unpacked(str(got_kind), schema, header["params"], header["state"], arrays)


def require(unpacked: Unpacked, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """The float64 array ``name`` of exactly ``shape``, or a :class:`ModelFormatError`."""
    arr = unpacked.arrays.get(name)
    if arr is None:
        raise _bad(f"array {name!r} is missing")
    if arr.shape != shape:
        raise _bad(f"array {name!r} has shape {arr.shape}, expected {shape}")
    out = np.array(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise _bad(f"array {name!r} holds non-finite values")
    return out
