"""The learner against a Redis that restarts empty (no persistence): nothing learned is lost."""

from __future__ import annotations

import time
import uuid

import pytest

from stream.embedded import EmbeddedServices
from stream.learner_runtime import ExampleRecord, LearnerRuntime
from stream.model_store import ModelStore
from stream.settings import StreamSettings
from stream.synthetic import synthetic_examples

pytestmark = [pytest.mark.integration]


def test_models_lost_by_the_store_are_published_again_with_what_they_learned(
    fresh_services: EmbeddedServices,
) -> None:
    records = [
        ExampleRecord(0, i, r.value)
        for i, r in enumerate(synthetic_examples(n=600, seed=11, t0=time.time(), segments=("luxury",)))
    ]
    store = ModelStore.from_url(fresh_services.redis_url, namespace=f"loss{uuid.uuid4().hex[:8]}")
    runtime = LearnerRuntime(StreamSettings(log_epoch="e", drift_response=0), store)
    try:
        runtime.process(records[:400])
        assert runtime.maybe_publish(force=True) == 3
        fresh_services.stop_redis()
        fresh_services.start_redis()
        assert store.models() == []  # the restart lost every model
        runtime.process(records[400:])
        assert runtime.maybe_publish(force=True) == 3
        stored = {m.policy: m.meta.examples_seen for m in store.models() if m.meta}
        assert stored == {"logistic": 600, "linucb": 600, "vw": 600}
        assert all(m.meta and m.meta.offsets == {0: 599} for m in store.models())
    finally:
        store.close()
