"""The impression–interaction join of one session, as pure functions.

Why pure: the Faust join agent keeps one :class:`SessionState` per
``session_id`` in a changelog-backed table, and a table only persists values
written back (``table[k] = v``). So every step takes a state and an event and
returns ``(new_state, outcomes)`` without mutating anything; ``None`` means
"no session any more, delete the key". :class:`stream.join.SessionJoin` drives
these functions for a whole partition; the replay tools and tests call them
without Kafka.

Rules (all times are event times, float seconds):

Window
    A slate's attribution window is ``[ts, ts + window_s]`` (``end`` included).
    It *closes* once the watermark passes ``end``; it then emits one
    :class:`~stream.events.Example` per shown trip, in slate order, with
    labels, reward and examined flag from :mod:`stream.labeling`.
Watermark
    Supplied by the caller (``SessionJoin``: max event ts seen minus
    ``watermark_delay_s``). Deadlines fire when ``watermark > deadline``.
Attribution
    With ``request_id``, an interaction joins that slate (in the same
    session) if the trip was shown (else ``not_in_slate``) and ``ts <= end``
    (else ``outside_window``; earlier ``ts`` is accepted as clock skew).
    Without it, it joins the most recent slate of the session that showed
    the trip with ``slate.ts <= ts <= end`` (latest arrival wins ties).
Grace
    An interaction that matches no slate yet is held until the watermark
    passes ``ts + grace_s``, waiting for its impression; then it is
    dead-lettered ``orphan``. One that already arrives past that point is
    ``too_late``. At most ``max_held`` wait per session (oldest out first).
Lateness
    A closed slate is kept until the watermark passes
    ``end + allowed_lateness_s``. An interaction joining it then produces
    corrections: the examples whose content changed, re-emitted with the same
    ``example_id`` and ``revision + 1``. An impression arriving after its
    slate would have been forgotten is ``too_late``.
Duplicates
    A repeated ``event_id`` (among the last ``max_seen_event_ids`` of the
    session) or ``request_id`` is dropped and counted. Memory is per live
    session: a session is forgotten once it has no slate and nothing held.
Bounds
    At most ``max_open_slates`` open slates per session: the oldest is closed
    early (``forced_close``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import orjson

from stream._fields import as_object, check_int, check_list, check_str, req_bool, req_str, require
from stream.codec import encode, impression_from_dict, interaction_from_dict, to_dict
from stream.errors import EventError, JoinReason
from stream.events import DeadLetter, Example, Impression, Interaction, Record
from stream.labeling import RewardConfig, SlateOutcome, examples_from, label_slate
from stream.packed_impression import PackedImpression

__all__ = [
    "CountName",
    "Counted",
    "DeadLettered",
    "Emitted",
    "EmittedSlate",
    "JoinConfig",
    "Outcome",
    "SessionState",
    "SlateState",
    "apply_impression",
    "apply_interaction",
    "apply_watermark",
    "join_dead_letter",
]


@dataclass(frozen=True, slots=True)
class JoinConfig:
    """Join settings (seconds of event time), validated on construction."""

    window_s: float = 600.0
    watermark_delay_s: float = 5.0
    grace_s: float = 30.0
    allowed_lateness_s: float = 300.0
    max_open_slates: int = 64
    max_held: int = 256
    max_seen_event_ids: int = 2048
    no_click_examined_top_n: int = 3
    reward: RewardConfig = field(default_factory=RewardConfig)
    impressions_topic: str = "impressions"
    interactions_topic: str = "interactions"
    lazy_examples: bool = False  # emit one EmittedSlate per slate instead of an Emitted per example

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"JoinConfig.window_s: must be > 0, got {self.window_s!r}")
        for name in ("watermark_delay_s", "grace_s", "allowed_lateness_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"JoinConfig.{name}: must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_open_slates", "max_held", "max_seen_event_ids"):
            if getattr(self, name) < 1:
                raise ValueError(f"JoinConfig.{name}: must be >= 1, got {getattr(self, name)!r}")
        if self.no_click_examined_top_n < 0:
            raise ValueError(
                f"JoinConfig.no_click_examined_top_n: must be >= 0, got {self.no_click_examined_top_n}"
            )


@dataclass(frozen=True, slots=True)
class Emitted:
    """An example to publish on the ``examples`` topic."""

    example: Example


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A record to publish on the ``deadletter`` topic (stage ``join``)."""

    dead_letter: DeadLetter


CountName = Literal[
    "attached", "held", "late_attached", "duplicate_interaction", "duplicate_impression", "forced_close"
]


@dataclass(frozen=True, slots=True)
class Counted:
    """Something to count in metrics that produces no record."""

    name: CountName


@dataclass(frozen=True, slots=True)
class EmittedSlate:
    """Examples of one slate not built yet (:attr:`JoinConfig.lazy_examples`): items ``indices``.

    :meth:`examples` gives exactly the :class:`Emitted` examples the join
    would otherwise return, in the same order; the join worker encodes them
    from these columns instead (:mod:`stream.example_bytes`), which saves
    building ten example objects per closed slate.
    """

    shown: PackedImpression
    outcome: SlateOutcome
    revisions: tuple[int, ...]  # every item's revision after this emission
    indices: tuple[int, ...]

    def examples(self) -> list[Example]:
        """The examples this stands for."""
        return examples_from(self.shown, self.outcome, self.revisions, self.indices)


Outcome = Emitted | EmittedSlate | DeadLettered | Counted


@dataclass(frozen=True, slots=True)
class SlateState:
    """One slate of a session: its impression (packed, see
    :mod:`stream.packed_impression`), the interactions joined to it, and once
    closed, the revision last emitted for each item (slate order)."""

    shown: PackedImpression
    attached: tuple[Interaction, ...] = ()
    closed: bool = False
    revisions: tuple[int, ...] = ()

    @property
    def impression(self) -> Impression:
        """The impression record of this slate."""
        return self.shown.impression()

    def shows(self, trip_id: str) -> bool:
        """Whether the trip is in this slate."""
        return trip_id in self.shown.index

    def end(self, config: JoinConfig) -> float:
        """End of the attribution window (inclusive)."""
        return self.shown.ts + config.window_s


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything the join remembers about one session; plain data, JSON-able via :meth:`to_dict`."""

    session_id: str
    slates: tuple[SlateState, ...] = ()
    held: tuple[Interaction, ...] = ()
    seen: tuple[str, ...] = ()

    def next_deadline(self, config: JoinConfig) -> float | None:
        """Smallest event time after which :func:`apply_watermark` has work; ``None`` if empty."""
        window, lateness = config.window_s, config.allowed_lateness_s
        times = [s.shown.ts + window + (lateness if s.closed else 0.0) for s in self.slates]
        if self.held:
            times += [ev.ts + config.grace_s for ev in self.held]
        return min(times, default=None)

    def request_ids(self) -> frozenset[str]:
        """Request ids of the slates still remembered."""
        return frozenset([s.shown.request_id for s in self.slates])

    def to_compact(self) -> dict[str, object]:
        """JSON-able form for the changelog: like :meth:`to_dict`, φ packed (``"cv": 1``)."""
        slates = [
            {"impression": s.shown.to_compact(), "attached": [to_dict(ev) for ev in s.attached],
             "closed": s.closed, "revisions": list(s.revisions)}
            for s in self.slates
        ]  # fmt: skip
        held = [to_dict(ev) for ev in self.held]
        return {
            "cv": 1,
            "session_id": self.session_id,
            "slates": slates,
            "held": held,
            "seen": list(self.seen),
        }

    def compact_json(self) -> bytes:
        """``orjson.dumps(self.to_compact())``, built with fewer copies (the same bytes, tested).

        What the join writes to its changelog for every changed session.
        """
        slates = [
            {"impression": s.shown.compact_fields(), "attached": [to_dict(ev) for ev in s.attached],
             "closed": s.closed, "revisions": s.revisions}
            for s in self.slates
        ]  # fmt: skip
        held = [to_dict(ev) for ev in self.held]
        return orjson.dumps(
            {"cv": 1, "session_id": self.session_id, "slates": slates, "held": held, "seen": self.seen}
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (schema ``"v": 1``: impressions as records), for a changelog-backed table."""
        slates = [
            {"impression": to_dict(s.impression), "attached": [to_dict(ev) for ev in s.attached],
             "closed": s.closed, "revisions": list(s.revisions)}
            for s in self.slates
        ]  # fmt: skip
        held = [to_dict(ev) for ev in self.held]
        return {
            "v": 1,
            "session_id": self.session_id,
            "slates": slates,
            "held": held,
            "seen": list(self.seen),
        }

    @classmethod
    def from_dict(cls, value: object) -> SessionState:
        """Rebuild from :meth:`to_dict` or :meth:`to_compact` output.

        Raises :class:`~stream.errors.EventError` if invalid.
        """
        obj = as_object(value, "state")
        compact = "cv" in obj
        if compact and obj.get("cv") != 1:
            raise EventError(
                "state.cv", f"unsupported compact state version {obj.get('cv')!r}", reason="unknown_version"
            )
        if not compact and obj.get("v") != 1:
            raise EventError(
                "state.v", f"unsupported state version {obj.get('v')!r}", reason="unknown_version"
            )
        session_id = req_str(obj, "session_id", "state")
        slates: list[SlateState] = []
        for i, raw in enumerate(_array(obj, "slates", "state")):
            at = f"state.slates[{i}]"
            item = as_object(raw, at)
            raw_imp, imp_at = require(item, "impression", at), f"{at}.impression"
            shown = (
                PackedImpression.from_compact(raw_imp, imp_at)
                if compact
                else PackedImpression.of(impression_from_dict(raw_imp, imp_at))
            )
            if shown.session_id != session_id:
                raise EventError(f"{at}.impression.session_id", f"must be {session_id!r}")
            evs = tuple(
                interaction_from_dict(ev, f"{at}.attached[{k}]")
                for k, ev in enumerate(_array(item, "attached", at))
            )
            revisions = tuple(
                check_int(r, f"{at}.revisions[{k}]", lo=0, hi=10**9)
                for k, r in enumerate(_array(item, "revisions", at))
            )
            closed = req_bool(item, "closed", at)
            if len(revisions) != (len(shown) if closed else 0):
                raise EventError(f"{at}.revisions", "must have one entry per item when closed, else none")
            slates.append(SlateState(shown, evs, closed, revisions))
        held = tuple(
            interaction_from_dict(ev, f"state.held[{k}]") for k, ev in enumerate(_array(obj, "held", "state"))
        )
        seen = tuple(check_str(e, f"state.seen[{k}]") for k, e in enumerate(_array(obj, "seen", "state")))
        return cls(session_id, tuple(slates), held, seen)


def apply_impression(
    state: SessionState | None,
    imp: Impression | PackedImpression,
    *,
    watermark: float,
    config: JoinConfig,
) -> tuple[SessionState | None, list[Outcome]]:
    """Open a slate for ``imp`` and give it any held interactions it was waiting for."""
    _check_session(state, imp.session_id)
    if state is not None and imp.request_id in state.request_ids():
        return state, [Counted("duplicate_impression")]
    if imp.ts + config.window_s + config.allowed_lateness_s < watermark:
        detail = (
            f"impression window ended at {imp.ts + config.window_s} beyond lateness; watermark {watermark}"
        )
        record = imp.impression() if isinstance(imp, PackedImpression) else imp
        return state, [join_dead_letter(record, "too_late", detail, config.impressions_topic)]
    base = state or SessionState(imp.session_id)
    shown = imp if isinstance(imp, PackedImpression) else PackedImpression.of(imp)
    slates = (*base.slates, SlateState(shown))
    out: list[Outcome] = []
    while sum(not s.closed for s in slates) > config.max_open_slates:
        oldest = min((i for i, s in enumerate(slates) if not s.closed), key=lambda i: slates[i].shown.ts)
        closed, emitted = _close(slates[oldest], config)
        slates = (*slates[:oldest], closed, *slates[oldest + 1 :])
        out += [*emitted, Counted("forced_close")]
    new = SessionState(base.session_id, slates, (), base.seen)
    for ev in base.held:  # retry every waiting interaction, in arrival order
        new, more = _route(new, ev, watermark=watermark, config=config, fresh=False)
        out += more
    return new, out


def apply_interaction(
    state: SessionState | None, ev: Interaction, *, watermark: float, config: JoinConfig
) -> tuple[SessionState | None, list[Outcome]]:
    """Join ``ev`` to its slate, hold it for its impression, or dead-letter it."""
    _check_session(state, ev.session_id)
    if state is not None and ev.event_id in state.seen:
        return state, [Counted("duplicate_interaction")]
    base = state or SessionState(ev.session_id)
    seen = (*base.seen, ev.event_id)[-config.max_seen_event_ids :]
    new, out = _route(
        SessionState(base.session_id, base.slates, base.held, seen),
        ev,
        watermark=watermark,
        config=config,
        fresh=True,
    )
    return _alive(new), out


def apply_watermark(
    state: SessionState, *, watermark: float, config: JoinConfig
) -> tuple[SessionState | None, list[Outcome]]:
    """Close due windows, forget slates past lateness, expire held orphans.

    Returns ``state`` itself when nothing was due, ``None`` when the session
    has nothing left to remember.
    """
    out: list[Outcome] = []
    slates: list[SlateState] = []
    for slate in state.slates:
        if not slate.closed and slate.end(config) < watermark:
            slate, emitted = _close(slate, config)
            out += emitted
        if slate.end(config) + config.allowed_lateness_s >= watermark:
            slates.append(slate)
    held: list[Interaction] = []
    for ev in state.held:
        if ev.ts + config.grace_s < watermark:
            detail = f"no impression for request {ev.request_id!r} trip {ev.trip_id!r} within grace {config.grace_s} s"
            out.append(join_dead_letter(ev, "orphan", detail, config.interactions_topic))
        else:
            held.append(ev)
    if not out and len(slates) == len(state.slates):
        return state, out
    return _alive(SessionState(state.session_id, tuple(slates), tuple(held), state.seen)), out


def _array(obj: Mapping[str, object], key: str, prefix: str) -> list[object]:
    return check_list(require(obj, key, prefix), f"{prefix}.{key}", min_len=0, max_len=10**6)


def _check_session(state: SessionState | None, session_id: str) -> None:
    if state is not None and state.session_id != session_id:
        raise ValueError(f"event of session {session_id!r} applied to state of {state.session_id!r}")


def _alive(state: SessionState) -> SessionState | None:
    return state if state.slates or state.held else None


def join_dead_letter(record: Record, reason: JoinReason, detail: str, topic: str) -> DeadLettered:
    """Dead letter (stage ``join``) carrying an excerpt of ``record``'s encoding."""
    raw = encode(record, validate=False)
    return DeadLettered(
        DeadLetter.from_bytes(
            raw, source_topic=topic, reason=reason, stage="join", detail=detail, ts=record.ts
        )
    )


def _resolve(state: SessionState, ev: Interaction, config: JoinConfig) -> int | JoinReason | None:
    """Index of the slate ``ev`` joins, a dead-letter reason, or ``None`` (not known yet)."""
    if ev.request_id is not None:
        for i, slate in enumerate(state.slates):
            if slate.shown.request_id == ev.request_id:
                if not slate.shows(ev.trip_id):
                    return "not_in_slate"
                return i if ev.ts <= slate.end(config) else "outside_window"
        return None
    best: int | None = None
    for i, slate in enumerate(state.slates):
        in_window = slate.shows(ev.trip_id) and slate.shown.ts <= ev.ts <= slate.end(config)
        if in_window and (best is None or slate.shown.ts >= state.slates[best].shown.ts):
            best = i
    return best


def _route(
    state: SessionState, ev: Interaction, *, watermark: float, config: JoinConfig, fresh: bool
) -> tuple[SessionState, list[Outcome]]:
    target = _resolve(state, ev, config)
    if isinstance(target, int):
        return _attach(state, target, ev, config)
    if target is not None:
        detail = f"request {ev.request_id!r} trip {ev.trip_id!r} at {ev.ts}: {target.replace('_', ' ')}"
        return state, [join_dead_letter(ev, target, detail, config.interactions_topic)]
    if fresh and ev.ts + config.grace_s < watermark:
        detail = (
            f"no slate for request {ev.request_id!r} trip {ev.trip_id!r}; watermark {watermark} past grace"
        )
        return state, [join_dead_letter(ev, "too_late", detail, config.interactions_topic)]
    held = (*state.held, ev)
    out: list[Outcome] = [Counted("held")] if fresh else []
    if len(held) > config.max_held:
        out.append(
            join_dead_letter(held[0], "orphan", "held-interaction buffer full", config.interactions_topic)
        )
        held = held[1:]
    return SessionState(state.session_id, state.slates, held, state.seen), out


def _attach(
    state: SessionState, i: int, ev: Interaction, config: JoinConfig
) -> tuple[SessionState, list[Outcome]]:
    slate = state.slates[i]
    grown = SlateState(slate.shown, (*slate.attached, ev), slate.closed, slate.revisions)
    out: list[Outcome] = [Counted("late_attached" if slate.closed else "attached")]
    if slate.closed:  # re-emit what changed, as corrections
        # An item's example changes exactly when its labels, reward or examined flag do
        # (every other field comes from the slate, and clicked from the labels).
        before, after = _label(slate, config), _label(grown, config)
        changed = tuple(k for k in range(len(slate.shown)) if before.item(k) != after.item(k))
        revisions = list(slate.revisions)
        for k in changed:
            revisions[k] += 1
        grown = SlateState(grown.shown, grown.attached, True, tuple(revisions))
        if changed:
            out += _emit(grown, after, changed, config)
    slates = (*state.slates[:i], grown, *state.slates[i + 1 :])
    return SessionState(state.session_id, slates, state.held, state.seen), out


def _close(slate: SlateState, config: JoinConfig) -> tuple[SlateState, list[Outcome]]:
    closed = SlateState(slate.shown, slate.attached, True, (0,) * len(slate.shown))
    return closed, _emit(closed, _label(closed, config), tuple(range(len(slate.shown))), config)


def _label(slate: SlateState, config: JoinConfig) -> SlateOutcome:
    return label_slate(
        slate.shown,
        slate.attached,
        reward=config.reward,
        no_click_examined_top_n=config.no_click_examined_top_n,
    )


def _emit(
    slate: SlateState, outcome: SlateOutcome, indices: tuple[int, ...], config: JoinConfig
) -> list[Outcome]:
    if config.lazy_examples:
        return [EmittedSlate(slate.shown, outcome, slate.revisions, indices)]
    return [Emitted(ex) for ex in examples_from(slate.shown, outcome, slate.revisions, indices)]
