"""The experiment in force, shared by every scoring worker through Redis.

Key ``<namespace>:experiment`` holds the experiment's JSON, allocation table
included (:meth:`scoring.experiment.Experiment.to_dict`). At start a worker
writes its initial experiment (``SMARTTRIP_EXPERIMENT``, else
:data:`DEFAULT_EXPERIMENT`) only if the key is absent (``SET NX``), then reads
the key back, so every worker follows the first one written. Workers re-read
the key with each model poll (``SMARTTRIP_MODEL_POLL_S``), so an admin PUT on
one worker is in force on all of them within one poll interval (at once on
the worker that took it).

A PUT is a compare-and-set (``WATCH``/``MULTI``): the new allocation table is
derived from the stored one with minimal moves, and an optional
``revision`` in the body must equal the stored revision (409 otherwise).
With Redis away the worker keeps its last experiment and a PUT answers 503
(retriable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

import redis.asyncio as aredis
import redis.exceptions as rex

from monitoring.scoring_metrics import ScoringMetrics
from scoring.errors import Conflict, RequestError, Unavailable
from scoring.experiment import Experiment
from scoring.model_cache import RedisHealth

__all__ = ["DEFAULT_EXPERIMENT", "ExperimentStore", "initial_experiment"]

log = logging.getLogger(__name__)

#: Used when SMARTTRIP_EXPERIMENT is unset and Redis holds none: the rule baseline
#: against LinUCB, half of the users each, both exploring.
DEFAULT_EXPERIMENT: Final[dict[str, Any]] = {
    "name": "default",
    "salt": "smarttrip-default",
    "variants": [
        {"name": "control", "policy": "rules", "traffic": 0.5, "epsilon": 0.1},
        {"name": "linucb", "policy": "linucb", "traffic": 0.5, "epsilon": 0.05},
    ],
}


def initial_experiment(raw_json: str) -> Experiment:
    """The experiment of ``SMARTTRIP_EXPERIMENT`` (JSON), or the default one when empty."""
    if not raw_json.strip():
        return Experiment.from_request(DEFAULT_EXPERIMENT, None)
    try:
        body = json.loads(raw_json)
    except json.JSONDecodeError as exc:
        raise RequestError("SMARTTRIP_EXPERIMENT", f"not valid JSON ({exc.msg})") from None
    return Experiment.from_request(body, None)


class ExperimentStore:
    """Holds :attr:`current` (read by every request) and keeps it in step with Redis."""

    def __init__(
        self,
        client: aredis.Redis,
        *,
        namespace: str,
        initial: Experiment,
        metrics: ScoringMetrics,
        health: RedisHealth,
    ) -> None:
        self.client = client
        self.key = f"{namespace}:experiment"
        self.current = initial
        self.metrics = metrics
        self.health = health
        self.synced = False  # whether `current` came from Redis
        metrics.experiment_revision.set(initial.revision)

    async def start(self) -> None:
        """Write the initial experiment if Redis has none, then adopt what Redis holds."""
        try:
            await self.client.set(self.key, _encode(self.current), nx=True)
            await self.refresh()
        except rex.RedisError as exc:
            self.health.failure(exc)
            log.error("experiment: redis unreachable at start; using the initial experiment")

    async def refresh(self) -> None:
        """Adopt the stored experiment if it changed (called with every model poll)."""
        try:
            raw = await self.client.get(self.key)
        except rex.RedisError as exc:
            self.health.failure(exc)
            return
        self.health.success()
        if raw is None:  # Redis came back empty: store ours again
            try:
                await self.client.set(self.key, _encode(self.current), nx=True)
            except rex.RedisError as exc:
                self.health.failure(exc)
            return
        try:
            stored = Experiment.from_dict(json.loads(raw))
        except (RequestError, ValueError) as exc:
            log.error("experiment: the stored experiment is invalid (%s); keeping revision %d",
                      exc, self.current.revision)  # fmt: skip
            return
        self.synced = True
        if stored.revision != self.current.revision or stored.to_dict() != self.current.to_dict():
            self._adopt(stored)

    async def put(self, body: Mapping[str, Any]) -> Experiment:
        """Replace the experiment (admin); minimal moves from the stored one."""
        expected = body.get("revision")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise RequestError("revision", "must be an integer (the revision you read)")
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.watch(self.key)
                raw = await pipe.get(self.key)
                previous = Experiment.from_dict(json.loads(raw)) if raw is not None else self.current
                if expected is not None and expected != previous.revision:
                    raise Conflict("revision", f"is {previous.revision}, not {expected}; read it again")
                new = Experiment.from_request(body, previous)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(self.key, _encode(new))
                await pipe.execute()
        except rex.WatchError:
            raise Conflict("revision", "the experiment changed during the update; read it again") from None
        except rex.RedisError as exc:
            self.health.failure(exc)
            raise Unavailable(None, f"redis unreachable; the experiment was not changed ({exc})") from None
        self.health.success()
        self._adopt(new)
        return new

    def _adopt(self, experiment: Experiment) -> None:
        log.warning("experiment %s revision %d in force: %s", experiment.name, experiment.revision,
                    experiment.counts())  # fmt: skip
        self.current = experiment
        self.synced = True
        self.metrics.experiment_revision.set(experiment.revision)


def _encode(experiment: Experiment) -> str:
    return json.dumps(experiment.to_dict(), separators=(",", ":"), sort_keys=True)
