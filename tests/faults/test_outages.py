"""Redis stopped and restarted, the broker paused, under load, with the whole loop running.

The scoring worker (in process, over real HTTP) serves a steady load of
``/v1/rank`` requests with a LinUCB experiment; a join worker turns its
impressions into examples and a learner worker trains and publishes the
models the scoring worker serves — all against a broker and redis-server of
the test's own. Then, under load:

1. redis-server is stopped for a few seconds and started again, empty (it runs
   without persistence): every request is answered (the last known models or
   the rule fallback), and the learner survives and publishes again;
2. the learner is restarted (SIGTERM): it resumes from the offsets stored with
   the models it republished, without learning anything twice or skipping;
3. the broker is frozen (SIGSTOP) for a few seconds: the scoring worker spools
   impressions and replays them; every impression served arrives on the topic.

The scenario runs once per module; one test checks the serving side (every
request answered, every served impression on the topic and joined into its
ten examples), the other the learner: after all of it, each stored model
ends at the last offset of its segment and holds each of its examples once
(``examples_seen`` against the distinct (example id, revision) pairs on the topic).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from stream.codec import decode_impression
from stream.embedded import EmbeddedServices, embedded_services, ensure_topics
from stream.model_store import ModelStore
from stream.worker_process import WorkerProcess
from tests.faults.helpers import read_records, topic_counts
from tests.faults.serving_load import Load, log_counters, until
from tests.scoring.serving import experiment, new_env, running, settings_for, topic_values
from tests.stream.kafka_helpers import consume_until, distinct_examples, example_dicts

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(360)]

LINUCB_ONLY = orjson.dumps(experiment(("ucb", "linucb", 1.0, 0.1))).decode()
PARTITIONS = 4


def _vw_seen(stored: dict[tuple[str, str], tuple[int, int, dict[int, int]]]) -> int:
    """Examples in the stored VW models (VW learns every example, whatever its position)."""
    return sum(seen for (policy, _), (_, seen, _) in stored.items() if policy == "vw")


def _learned(store: ModelStore) -> int:
    return _vw_seen(_stored(store))


def _stored(store: ModelStore) -> dict[tuple[str, str], tuple[int, int, dict[int, int]]]:
    """(policy, segment) → (version, examples_seen, offsets); empty while Redis is away."""
    try:
        return {
            (m.policy, m.segment): (m.current_version, m.meta.examples_seen, dict(m.meta.offsets))
            for m in store.models()
            if m.meta is not None
        }
    except Exception:  # Redis down: nothing to read
        return {}


Stored = dict[tuple[str, str], tuple[int, int, dict[int, int]]]


@dataclass
class Outcome:
    """What the scenario saw, for the tests to judge."""

    failed: list[Any] = field(default_factory=list)
    served: set[str] = field(default_factory=set)
    impressions: list[str] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    example_ids: set[str] = field(default_factory=set)
    records: list[tuple[int, int, bytes]] = field(default_factory=list)
    stored: Stored = field(default_factory=dict)
    trace: dict[str, Stored] = field(default_factory=dict)
    alive: dict[str, bool] = field(default_factory=dict)
    log: str = ""


@pytest.fixture(scope="module")
def outcome() -> Iterator[Outcome]:
    with embedded_services() as services:
        yield asyncio.run(_scenario(services))


async def _scenario(services: EmbeddedServices) -> Outcome:
    out = Outcome()
    env = new_env(services)
    uid = uuid.uuid4().hex[:8]
    examples, deadletter = f"examples-{uid}", f"deadletter-{uid}"
    ensure_topics(services.bootstrap_servers, {examples: PARTITIONS, deadletter: PARTITIONS})
    common = {
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers,
        "SMARTTRIP_REDIS_URL": services.redis_url,
        "SMARTTRIP_PARTITIONS": str(PARTITIONS),
        "SMARTTRIP_SESSION_TIMEOUT_S": "2",
        "SMARTTRIP_HEARTBEAT_S": "0.2",
        "SMARTTRIP_TOPIC_IMPRESSIONS": env.impressions,
        "SMARTTRIP_TOPIC_INTERACTIONS": env.interactions,
        "SMARTTRIP_TOPIC_EXAMPLES": examples,
        "SMARTTRIP_TOPIC_DEADLETTER": deadletter,
    }
    join_env = {**common, "SMARTTRIP_APP_ID": f"join-{uid}", "SMARTTRIP_JOIN_WINDOW_S": "2",
                "SMARTTRIP_WATERMARK_DELAY_S": "1", "SMARTTRIP_IDLE_S": "3"}  # fmt: skip
    learn_env = {**common, "SMARTTRIP_APP_ID": f"learn-{uid}", "SMARTTRIP_MODEL_NAMESPACE": env.namespace,
                 "SMARTTRIP_PUBLISH_INTERVAL_S": "0.2", "SMARTTRIP_DRIFT_RESPONSE": "0"}  # fmt: skip
    join = WorkerProcess(join_env, name="join-outage")
    learner = WorkerProcess(learn_env, mode="learn", name="learner-outage")
    store = ModelStore.from_url(services.redis_url, namespace=env.namespace)
    try:
        async with running(settings_for(services, env, experiment=LINUCB_ONLY)) as srv:
            load = Load(srv, concurrency=3, pause_s=0.02)
            # The loop is closed: the learner publishes models of what the join made of the load.
            await until(lambda: _learned(store) >= 1000, 120, "models published with 1,000 examples")
            await until(lambda: srv.svc.models.loaded() != [], 20, "models served")

            # 1. Redis away, then back empty.
            out.trace["before_outage"] = _stored(store)
            await asyncio.to_thread(services.stop_redis)
            down_at = load.count()
            await until(lambda: load.count() > down_at + 100, 30, "load while Redis is down")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(services.start_redis)
            before = _vw_seen(out.trace["before_outage"])
            await until(lambda: _learned(store) > before, 60, "a publish after Redis returned")
            out.trace["after_return"] = _stored(store)
            await until(lambda: srv.svc.models.health.ok, 20, "scoring worker sees Redis again")
            assert learner.alive(), learner.log_tail()

            # 2. The learner restarts and resumes from the offsets stored since Redis returned.
            at_restart = _learned(store)
            out.trace["before_restart"] = _stored(store)
            await asyncio.to_thread(learner.stop)
            learner = WorkerProcess(learn_env, mode="learn", name="learner-outage-2")
            await until(lambda: _learned(store) > at_restart, 60, "a publish after the learner restarted")
            out.trace["after_restart"] = _stored(store)

            # 3. The broker frozen under load: impressions are spooled, then replayed.
            log = srv.svc.log
            with services.broker_paused():
                paused_at = load.count()
                await until(lambda: log.state == "spooling", 15, "spooling")
                await until(lambda: load.count() > paused_at + 100, 30, "load while the broker is paused")
            await until(lambda: log.state == "direct" and log.spool.empty, 60, "spool replayed")
            out.trace["after_pause"] = _stored(store)
            await load.stop()
            await until(lambda: log.status()["in_flight"] == 0 and log.queue_depth == 0, 20, "log drained")
            out.counters = log_counters(srv)
        out.failed = load.failed()
        out.served = {body["request_id"] for _, body in load.results}
        values = topic_values(services, env.impressions, len(out.served), 60)
        out.impressions = [decode_impression(v).request_id for v in values]
        examples_values = consume_until(services, examples, distinct_examples(10 * len(out.served)), 90)
        out.example_ids = {str(ex["example_id"]) for v in examples_values for ex in example_dicts(v)}
        # The join has settled (the examples topic stopped growing for 5 s); then the learner catches up:
        # every model's offsets reach the last record of its segment.
        count, still = -1, 0
        while still < 10:
            now = topic_counts(services, examples, PARTITIONS)
            still, count = (still + 1, now) if now == count else (0, now)
            await asyncio.sleep(0.5)
        out.records = read_records(services, examples, PARTITIONS)
        last = {
            example_dicts(v)[0]["segment"]: (p, o) for p, o, v in sorted(out.records, key=lambda r: r[:2])
        }
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and learner.alive():
            out.stored = _stored(store)
            if out.stored and all(offsets.get(last[seg][0]) == last[seg][1]
                                  for (_, seg), (_, _, offsets) in out.stored.items()):  # fmt: skip
                break
            await asyncio.sleep(0.5)
        out.alive = {"join": join.alive(), "learner": learner.alive()}
        out.log = learner.log_tail(200)
    finally:
        join.stop()
        learner.stop()
        store.close()
    return out


def test_serving_answers_every_request_and_every_impression_is_joined(outcome: Outcome) -> None:
    assert outcome.failed == []
    assert len(outcome.served) > 300
    assert set(outcome.impressions) == outcome.served, "impressions missing"
    assert len(outcome.impressions) == len(outcome.served), "impressions doubled"
    c = outcome.counters
    assert c["spooled"] > 0 and c["replayed"] == c["spooled"] and c["dropped"] == 0, c
    assert len(outcome.example_ids) == 10 * len(outcome.served)
    assert outcome.alive == {"join": True, "learner": True}, outcome.log
    print(f"\n{len(outcome.served)} requests served, 0 failed; log counters {c}; "
          f"{len(outcome.example_ids)} examples joined")  # fmt: skip


def test_learner_holds_every_example_exactly_once_after_the_outages(outcome: Outcome) -> None:
    """Each model ends at the last offset of its segment having learned every example of it once."""
    assert outcome.alive["learner"], outcome.log
    print(
        "\nmodels (version, examples, offsets) at each step:", outcome.trace, "\nat the end:", outcome.stored
    )
    per_segment: dict[str, set[tuple[str, int]]] = {}  # distinct (example_id, revision): what must be learned
    last: dict[str, tuple[int, int]] = {}
    for p, o, v in sorted(outcome.records, key=lambda r: r[:2]):
        for ex in example_dicts(v):
            per_segment.setdefault(str(ex["segment"]), set()).add(
                (str(ex["example_id"]), int(ex["revision"]))
            )
            last[str(ex["segment"])] = (p, o)
    print(f"{len(outcome.records)} records, {sum(map(len, per_segment.values()))} distinct (id, revision)")
    assert {k for k in outcome.stored} == {(p, s) for p in ("logistic", "linucb", "vw") for s in per_segment}
    for (policy, segment), (_, seen, offsets) in outcome.stored.items():
        assert offsets == {last[segment][0]: last[segment][1]}, (policy, segment, offsets, outcome.trace)
        assert seen == len(per_segment[segment]), (
            policy,
            segment,
            seen,
            len(per_segment[segment]),
            outcome.trace,
        )
