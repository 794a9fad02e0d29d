"""Key layout, settings, records and their wire form, shared by the sync and async stores.

Key layout for one (policy, segment) — every key carries the hash tag
``{<policy>:<segment>}`` so all of them map to one Redis Cluster slot::

    <ns>:{<policy>:<segment>}:current    int   latest version (monotonic; 0/absent = none)
    <ns>:{<policy>:<segment>}:v:<n>      bytes the model of version n (bandit byte format)
    <ns>:{<policy>:<segment>}:meta:<n>   JSON  ModelMeta of version n
    <ns>:{<policy>:<segment>}:history    zset  the newest N versions (score = member = n)
    <ns>:{<policy>:<segment>}:pin        int   pinned version, if any
    <ns>:{<policy>:<segment>}:promoted   int   version the promotion gate let serve, if any
    <ns>:{<policy>:<segment>}:nominated  int   version the gate is judging (shadow-scored), if any
    <ns>:{<policy>:<segment>}:decision:<n> JSON the gate's decision on version n (GateVerdict)
    <ns>:{<policy>:<segment>}:rejected   hash  guardrail refusals: code -> count, "last" -> JSON

and two global names (no hash tag; never in a multi-key operation)::

    <ns>:index                           set   "<policy>:<segment>" of every published model
    <ns>:models                          pub/sub channel of ModelNotice JSON

Policy and segment names match ``[A-Za-z0-9_.-]{1,64}``, so neither holds the
``:``, ``{`` or ``}`` the layout relies on.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from stream._model_store_errors import (
    CorruptRecord,
    ModelInputError,
    ModelStoreError,
    NotPromoted,
    UnknownModel,
    UnknownVersion,
    VersionConflict,
)
from stream._model_store_verdict import GateVerdict

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_REDIS_URL",
    "META_SCHEMA",
    "ModelKeys",
    "ModelMeta",
    "ModelNotice",
    "ModelRecord",
    "ModelStoreSettings",
    "ModelSummary",
    "VersionInfo",
    "check_name",
    "check_version",
    "checked_offsets",
    "decode_meta",
    "decode_notice",
    "encode_meta",
    "finite_metrics",
    "notice_head",
    "opt_int",
    "parse_publish",
    "parse_read",
    "text",
]

META_SCHEMA: Final = 1
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE: Final = "smarttrip"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
Event = Literal["publish", "rollback", "pin", "unpin", "promote", "nominate"]


def check_name(field_name: str, value: object) -> str:
    """``value`` if it is a valid policy/segment name, else :class:`ModelInputError`."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ModelInputError(field_name, f"must match [A-Za-z0-9_.-]{{1,64}}, got {value!r}")
    return value


def check_version(field_name: str, value: object, *, low: int = 1) -> int:
    """``value`` if it is an integer >= ``low``, else :class:`ModelInputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelInputError(field_name, f"must be an integer >= {low}, got {value!r}")
    return value


@dataclass(frozen=True)
class ModelStoreSettings:
    """Where the store lives: ``SMARTTRIP_REDIS_URL``, ``_MODEL_NAMESPACE``, ``_MODEL_HISTORY``."""

    redis_url: str = DEFAULT_REDIS_URL
    namespace: str = DEFAULT_NAMESPACE
    history: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ModelStoreSettings:
        env = os.environ if env is None else env
        raw = env.get("SMARTTRIP_MODEL_HISTORY", str(cls.history))
        if not raw.isdigit() or int(raw) < 1:
            raise ModelInputError("SMARTTRIP_MODEL_HISTORY", f"must be an integer >= 1, got {raw!r}")
        return cls(
            redis_url=env.get("SMARTTRIP_REDIS_URL", cls.redis_url),
            namespace=env.get("SMARTTRIP_MODEL_NAMESPACE", cls.namespace),
            history=int(raw),
        )


@dataclass(frozen=True)
class ModelKeys:
    """The Redis names of one (policy, segment) under a namespace."""

    namespace: str
    policy: str
    segment: str

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not _NAMESPACE.fullmatch(self.namespace):
            raise ModelInputError("namespace", f"must match [A-Za-z0-9_.:-]{{1,64}}, got {self.namespace!r}")
        check_name("policy", self.policy)
        check_name("segment", self.segment)

    @property
    def member(self) -> str:
        """This model's entry in the index set."""
        return f"{self.policy}:{self.segment}"

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:{{{self.policy}:{self.segment}}}:"

    @property
    def current(self) -> str:
        return self.prefix + "current"

    @property
    def history(self) -> str:
        return self.prefix + "history"

    @property
    def pin(self) -> str:
        return self.prefix + "pin"

    @property
    def promoted(self) -> str:
        return self.prefix + "promoted"

    @property
    def rejected(self) -> str:
        return self.prefix + "rejected"

    @property
    def nominated(self) -> str:
        return self.prefix + "nominated"

    @property
    def writes(self) -> list[str]:
        """The KEYS of the write scripts: current, history, pin, promoted, nominated."""
        return [self.current, self.history, self.pin, self.promoted, self.nominated]

    @property
    def reads(self) -> list[str]:
        """The KEYS of the READ script: current, pin, promoted."""
        return [self.current, self.pin, self.promoted]

    def decision(self, version: int) -> str:
        return f"{self.prefix}decision:{version}"

    def blob(self, version: int) -> str:
        return f"{self.prefix}v:{version}"

    def meta(self, version: int) -> str:
        return f"{self.prefix}meta:{version}"


@dataclass(frozen=True)
class ModelMeta:
    """What is stored next to each version's bytes.

    ``offsets`` maps a partition of the examples topic to the highest offset
    whose example is already in this model, and ``log_epoch`` identifies the
    log those offsets refer to (a broker restart with an emptied log gets a new
    epoch, and old offsets then mean nothing). ``parent_version`` is the
    version the publisher started from (its compare-and-set base), or None for
    an unconditional publish; ``rolled_back_from`` the version whose bytes a
    rollback re-published. ``size`` and ``sha256`` describe the bytes.
    """

    kind: str
    examples_seen: int
    created_at: float
    log_epoch: str
    size: int
    sha256: str
    offsets: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    parent_version: int | None = None
    rolled_back_from: int | None = None
    event: Literal["publish", "rollback"] = "publish"

    def covers(self, partition: int, offset: int, log_epoch: str) -> bool:
        """True when the example at (``partition``, ``offset``) of ``log_epoch`` is already learned.

        >>> m = ModelMeta("lin_ucb", 3, 0.0, "e1", 1, "", offsets={0: 41})
        >>> m.covers(0, 41, "e1"), m.covers(0, 42, "e1"), m.covers(0, 5, "e2"), m.covers(1, 0, "e1")
        (True, False, False, False)
        """
        return log_epoch == self.log_epoch and offset <= self.offsets.get(partition, -1)


def encode_meta(meta: ModelMeta) -> str:
    """Canonical JSON (sorted keys, floats in ``repr`` form so they round-trip exactly)."""
    body = asdict(meta)
    body["offsets"] = {str(p): o for p, o in meta.offsets.items()}
    body["schema"] = META_SCHEMA
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # a non-finite float slipped past validation
        raise ModelInputError("meta", f"not JSON-encodable ({exc})") from None


def _field(body: Mapping[str, Any], name: str, *kinds: type) -> Any:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise CorruptRecord(f"meta.{name}: expected {expected}, got {value!r}")
    return value


def decode_meta(raw: bytes | str) -> ModelMeta:
    """Parse stored metadata; unknown extra keys are ignored, a newer schema is refused."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptRecord(f"meta: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CorruptRecord("meta: expected a JSON object")
    if body.get("schema") != META_SCHEMA:
        raise CorruptRecord(f"meta.schema: this code reads {META_SCHEMA}, got {body.get('schema')!r}")
    try:
        offsets = {int(p): int(o) for p, o in _field(body, "offsets", dict).items()}
        metrics = {str(k): float(v) for k, v in _field(body, "metrics", dict).items()}
        weights = {str(k): float(v) for k, v in _field(body, "weights", dict).items()}
    except (TypeError, ValueError) as exc:
        raise CorruptRecord(f"meta: bad offsets, metrics or weights ({exc})") from None
    event = _field(body, "event", str)
    if event not in ("publish", "rollback"):
        raise CorruptRecord(f"meta.event: unknown event {event!r}")
    return ModelMeta(
        kind=_field(body, "kind", str),
        examples_seen=_field(body, "examples_seen", int),
        created_at=float(_field(body, "created_at", int, float)),
        log_epoch=_field(body, "log_epoch", str),
        size=_field(body, "size", int),
        sha256=_field(body, "sha256", str),
        offsets=offsets,
        metrics=metrics,
        weights=weights,
        parent_version=_field(body, "parent_version", int, type(None)),
        rolled_back_from=_field(body, "rolled_back_from", int, type(None)),
        event=event,
    )


@dataclass(frozen=True)
class ModelRecord:
    """One stored version: its bytes and metadata, plus the model's state when read."""

    policy: str
    segment: str
    version: int
    model_bytes: bytes
    meta: ModelMeta
    current_version: int
    pinned_version: int | None
    promoted_version: int | None = None

    @property
    def serving_version(self) -> int:
        """The version served with the gate off: the pin if any, else the current one."""
        return self.current_version if self.pinned_version is None else self.pinned_version


@dataclass(frozen=True)
class VersionInfo:
    """One entry of a model's history (no bytes), with the gate's verdict on it if any."""

    version: int
    meta: ModelMeta
    current: bool
    pinned: bool
    promoted: bool = False
    verdict: GateVerdict | None = None


@dataclass(frozen=True)
class ModelSummary:
    """One (policy, segment) as listed by ``models list``; ``meta`` is the current version's."""

    policy: str
    segment: str
    current_version: int
    pinned_version: int | None
    meta: ModelMeta | None
    promoted_version: int | None = None
    verdict: GateVerdict | None = None  # the gate's verdict on the current version
    nominated_version: int | None = None  # the version the gate is judging (shadow-scored)
    nominated_verdict: GateVerdict | None = None

    @property
    def serving_version(self) -> int:
        """Served with the gate off: the pin, else the current version."""
        return self.current_version if self.pinned_version is None else self.pinned_version

    @property
    def gated_version(self) -> int | None:
        """Served with the gate on: the pin, else the promoted version (None: the rules policy)."""
        return self.promoted_version if self.pinned_version is None else self.pinned_version

    @property
    def gate_state(self) -> str:
        """``promoted``, ``candidate-held`` or ``candidate-pending``: where the current version stands.

        >>> ModelSummary("linucb", "family", 7, None, None, promoted_version=7).gate_state
        'promoted'
        >>> ModelSummary("linucb", "family", 8, None, None, promoted_version=7).gate_state
        'candidate-pending'
        """
        if self.current_version == self.promoted_version:
            return "promoted"
        if self.verdict is not None and self.verdict.decision == "hold":
            return "candidate-held"
        return "candidate-pending"


@dataclass(frozen=True)
class ModelNotice:
    """A pub/sub message: a new version, rollback, pin or unpin of (policy, segment).

    ``serving_version`` is what the scoring side should load now; ``version``
    is the version the event is about (new, pinned, or current after unpin).
    """

    event: Event
    policy: str
    segment: str
    version: int
    serving_version: int


def notice_head(event: Event, keys: ModelKeys) -> str:
    """The JSON of a notice without its version fields and closing brace (see the Lua scripts)."""
    return json.dumps({"event": event, "policy": keys.policy, "segment": keys.segment}, sort_keys=True)[:-1]


def decode_notice(data: bytes | str) -> ModelNotice:
    """Parse a message of the models channel; :class:`CorruptRecord` if it is not one."""
    try:
        body = json.loads(data)
        notice = ModelNotice(
            event=body["event"],
            policy=str(body["policy"]),
            segment=str(body["segment"]),
            version=int(body["version"]),
            serving_version=int(body["serving_version"]),
        )
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"notice: not a model notice ({exc!r})") from None
    if notice.event not in ("publish", "rollback", "pin", "unpin", "promote", "nominate"):
        raise CorruptRecord(f"notice.event: unknown event {notice.event!r}")
    return notice


def text(value: bytes | str | int) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def opt_int(value: bytes | str | int | None) -> int | None:
    """An optional integer stored as text (None and '' mean absent)."""
    return None if value is None or value in (b"", "") else int(text(value))


def parse_read(keys: ModelKeys, reply: list[Any], which: str) -> ModelRecord:
    """A :class:`ModelRecord` from the READ script's reply, or the matching error."""
    status = text(reply[0])
    if status == "no_model":
        raise UnknownModel(keys.policy, keys.segment)
    if status == "no_promoted":
        raise NotPromoted(keys.policy, keys.segment)
    if status == "no_version":
        raise UnknownVersion(keys.policy, keys.segment, int(reply[3]))
    if status != "ok":
        raise ModelStoreError(f"read {which}: unexpected script reply {status!r}")
    blob = reply[4]
    if not isinstance(blob, bytes):
        raise ModelStoreError("redis client must be created with decode_responses=False")
    return ModelRecord(
        policy=keys.policy,
        segment=keys.segment,
        version=int(reply[3]),
        model_bytes=blob,
        meta=decode_meta(reply[5]),
        current_version=int(reply[1]),
        pinned_version=opt_int(reply[2]),
        promoted_version=opt_int(reply[6]) if len(reply) > 6 else None,
    )


def parse_publish(keys: ModelKeys, reply: list[Any], expected: int | None) -> int:
    """The new version from the PUBLISH script's reply, or :class:`VersionConflict`."""
    status = text(reply[0])
    if status == "conflict":
        raise VersionConflict(keys.policy, keys.segment, expected=expected or 0, actual=int(reply[1]))
    if status != "ok":
        raise ModelStoreError(f"publish: unexpected script reply {status!r}")
    return int(reply[1])


def finite_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    """Validated copy of ``metrics``: string names, finite numbers."""
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items():
        if not isinstance(name, str) or not name:
            raise ModelInputError("metrics", f"names must be non-empty strings, got {name!r}")
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise ModelInputError(f"metrics.{name}", f"must be a finite number, got {value!r}")
        out[name] = float(value)
    return out


def checked_offsets(offsets: Mapping[int, int]) -> dict[int, int]:
    """Validated copy of ``offsets``: partition >= 0 -> offset >= -1 (-1 = nothing consumed)."""
    out: dict[int, int] = {}
    for partition, offset in offsets.items():
        if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
            raise ModelInputError("offsets", f"partitions must be integers >= 0, got {partition!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < -1:
            raise ModelInputError(f"offsets[{partition}]", f"must be an integer >= -1, got {offset!r}")
        out[partition] = offset
    return out
