"""``smarttrip models …`` against a real redis-server (the session's embedded one)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from bandit import LinUCB
from smarttrip.cli.models import app
from stream.embedded import EmbeddedServices
from stream.guardrails import Guardrails
from stream.model_store import GuardrailError, ModelStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

runner = CliRunner()
PRIOR = {"BUDGET_PERFECT": 12.0, "BASE_SCORE": 30.0}


@pytest.fixture
def store(services: EmbeddedServices) -> Iterator[ModelStore]:
    """A store in a namespace of its own holding linucb/adventure v1..v3 and linucb/family v1."""
    with ModelStore.from_url(
        services.redis_url,
        namespace=f"cli-{uuid.uuid4().hex[:12]}",
        guardrails=Guardrails(max_abs_weight=1e3),
    ) as s:
        model = LinUCB(alpha=0.5, prior=PRIOR)
        for i in range(3):
            s.publish_learner(
                "linucb", "adventure", model, offsets={0: 10 * (i + 1)}, log_epoch="e1", metrics={"ctr": 0.1}
            )
            model.learn_one([1.0] * model.n_features, 1.0)
        s.publish(
            "linucb",
            "family",
            b"vw-bytes",
            weights={},
            examples_seen=9,
            offsets={},
            log_epoch="e1",
            kind="vw",
        )
        yield s


def run(store: ModelStore, services: EmbeddedServices, *args: str) -> Any:
    result = runner.invoke(
        app, [*args, "--redis-url", services.redis_url, "--namespace", store.namespace, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_shows_every_model(store: ModelStore, services: EmbeddedServices) -> None:
    body = run(store, services, "list")
    assert [(m["policy"], m["segment"], m["current_version"], m["serving_version"]) for m in body] == [
        ("linucb", "adventure", 3, 3),
        ("linucb", "family", 1, 1),
    ]
    people = runner.invoke(app, ["list", "--redis-url", services.redis_url, "--namespace", store.namespace])
    assert people.exit_code == 0 and "adventure" in people.output and "family" in people.output


def test_show_prints_weights_and_metadata(store: ModelStore, services: EmbeddedServices) -> None:
    with pytest.raises(GuardrailError):
        store.publish("linucb", "adventure", b"x", weights={"BASE_SCORE": float("nan")}, examples_seen=9,
                      offsets={}, log_epoch="e1", kind="t")  # fmt: skip
    body = run(store, services, "show", "linucb", "adventure")
    assert body["version"] == 3 and body["serving_version"] == 3
    assert body["meta"]["kind"] == "lin_ucb" and body["meta"]["offsets"] == {"0": 30}
    assert body["meta"]["weights"] == store.get("linucb", "adventure").meta.weights
    assert body["rejections"]["counts"] == {"non_finite": 1}
    older = run(store, services, "show", "linucb", "adventure", "--version", "1")
    assert older["meta"]["weights"] == LinUCB(alpha=0.5, prior=PRIOR).weights
    people = runner.invoke(
        app,
        ["show", "linucb", "adventure", "--redis-url", services.redis_url, "--namespace", store.namespace],
    )
    assert people.exit_code == 0, people.output
    assert "BUDGET_PERFECT" in people.output and "guardrail refusals" in people.output


def test_history_lists_versions_newest_first(store: ModelStore, services: EmbeddedServices) -> None:
    body = run(store, services, "history", "linucb", "adventure")
    assert [(e["version"], e["current"]) for e in body] == [(3, True), (2, False), (1, False)]
    assert [e["version"] for e in run(store, services, "history", "linucb", "adventure", "--limit", "2")] == [
        3,
        2,
    ]
    people = runner.invoke(
        app,
        ["history", "linucb", "adventure", "--redis-url", services.redis_url, "--namespace", store.namespace],
    )
    assert people.exit_code == 0 and "current" in people.output


def test_rollback_restores_the_bytes(store: ModelStore, services: EmbeddedServices) -> None:
    before = store.get("linucb", "adventure", 1).model_bytes
    body = run(store, services, "rollback", "linucb", "adventure", "1")
    assert body == {
        "policy": "linucb",
        "segment": "adventure",
        "version": 4,
        "rolled_back_from": 1,
        "serving_version": 4,
    }
    assert store.serving("linucb", "adventure").model_bytes == before


def test_pin_and_unpin(store: ModelStore, services: EmbeddedServices) -> None:
    assert run(store, services, "pin", "linucb", "adventure", "2")["pinned_version"] == 2
    store.publish(
        "linucb", "adventure", b"new", weights={}, examples_seen=9, offsets={}, log_epoch="e1", kind="t"
    )
    listed = {m["segment"]: m for m in run(store, services, "list")}
    assert (listed["adventure"]["current_version"], listed["adventure"]["serving_version"]) == (4, 2)
    assert run(store, services, "show", "linucb", "adventure")["version"] == 2
    assert run(store, services, "unpin", "linucb", "adventure") == {
        "policy": "linucb",
        "segment": "adventure",
        "unpinned_version": 2,
        "serving_version": 4,
    }
    assert run(store, services, "unpin", "linucb", "adventure")["unpinned_version"] is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "linucb", "nobody"], 1, "no model has been published"),
        (["rollback", "linucb", "adventure", "99"], 1, "version 99 does not exist"),
        (["pin", "linucb", "adventure", "99"], 1, "version 99 does not exist"),
        (["show", "linucb", "bad name"], 2, "segment: must match"),
    ],
)
def test_errors_exit_with_a_message(
    store: ModelStore, services: EmbeddedServices, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(app, [*args, "--redis-url", services.redis_url, "--namespace", store.namespace])
    assert result.exit_code == code
    assert message in result.output


def test_unreachable_redis_exits_3() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
        result = runner.invoke(app, ["list", "--redis-url", url])
    assert result.exit_code == 3 and "redis unavailable" in result.output
