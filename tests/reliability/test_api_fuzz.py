"""Bad input at the HTTP boundary: schemathesis over the OpenAPI document, then explicit hostile cases.

Every answer must be documented for its operation, never a 5xx, and every
error a JSON body that names the field (422) or the problem (400/401/403/404/413).
Runs the real scoring worker (embedded Kafka and Redis) on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from scoring.openapi import document
from stream.embedded import EmbeddedServices
from tests.reliability.http_server import serving_in_thread
from tests.scoring.serving import ADMIN, API, CATALOG, new_env, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DOC = document()
SCHEMA = schemathesis.openapi.from_dict(DOC)
OPERATIONS = [op.ok() for op in SCHEMA.get_all_operations()]
# Negative cases need something to break: a body or a path parameter.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.body or op.path_parameters
]
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def base_url(services: EmbeddedServices) -> Iterator[str]:
    env = new_env(services, partitions=1)
    with serving_in_thread(settings_for(services, env, max_body_bytes=MAX_BODY)) as url:
        yield url


def check_answer(method: str, path: str, resp: requests.Response) -> None:
    """No 5xx; a documented status; errors as JSON that say what is wrong."""
    assert resp.status_code < 500, f"{method} {path} -> {resp.status_code}: {resp.text[:300]}"
    documented = DOC["paths"][path][method.lower()]["responses"]
    assert str(resp.status_code) in documented, f"{method} {path}: undocumented {resp.status_code}"
    if resp.status_code >= 400:
        body = resp.json()
        assert body["error"] and body["message"], body
        if resp.status_code == 422:
            assert body["field"], f"422 without a field: {body}"


@pytest.mark.parametrize(("op", "mode"), CASES, ids=[f"{m.value}-{op.label}" for op, m in CASES])
def test_schemathesis_no_5xx_and_documented_answers(base_url: str, op: Any, mode: GenerationMode) -> None:
    headers = ADMIN if op.path.startswith("/v1/admin") else API
    http = requests.Session()

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=op.as_strategy(mode))
    def one(case: Any) -> None:
        resp = case.call(base_url=base_url, session=http, headers=headers, timeout=10)
        check_answer(op.method, op.path, resp)

    try:
        one()
    finally:
        http.close()


def _rank_body(**changes: Any) -> dict[str, Any]:
    return {"session_id": "s-1", "user_id": "alice", "k": 5, **changes}


def _post(base_url: str, path: str, data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    h = {**(headers or API), "Content-Type": "application/json"}
    return requests.post(base_url + path, data=data, headers=h, timeout=10)


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        (b"x" * (MAX_BODY + 1), 413, "body"),  # oversize
        (b"[" * 100_000 + b"]" * 100_000, 413, "body"),  # deep and oversize
        (b"[" * 5_000 + b"]" * 5_000, 400, "body"),  # deep JSON within the size limit
        (b'{"session_id": "\xff\xfe"}', 400, "body"),  # invalid UTF-8
        (b'{"session_id": "\\ud800"}', 400, "body"),  # lone surrogate
        (b'{"session_id": "s", "k": NaN}', 400, "body"),
        (b'{"session_id": "s", "k": Infinity}', 400, "body"),
        (b'{"session_id": "s", "k": 1e999}', 400, "body"),
        (json.dumps(_rank_body(k=-1)).encode(), 422, "k"),
        (json.dumps(_rank_body(k=10**30)).encode(), 422, "k"),
        (json.dumps(_rank_body(k=2.5)).encode(), 422, "k"),
        (json.dumps(_rank_body(trip_ids=[CATALOG.trips[0].trip_id, 7])).encode(), 422, "trip_ids[1]"),
        (json.dumps(_rank_body(segment="no-such-segment")).encode(), 422, "segment"),
        (json.dumps(_rank_body(preferences={"budget": -5})).encode(), 422, "preferences.budget"),
        (json.dumps(_rank_body(preferences={"budget": 1e308})).encode(), None, None),
        (json.dumps(_rank_body(session_id="a\x00b")).encode(), 422, "session_id"),
        (json.dumps(_rank_body(session_id="s" * 10_000)).encode(), 422, "session_id"),
    ],
)
def test_hostile_rank_bodies(base_url: str, data: bytes, status: int | None, field: str | None) -> None:
    resp = _post(base_url, "/v1/rank", data)
    check_answer("POST", "/v1/rank", resp)
    if status is not None:
        assert resp.status_code == status, resp.text
        assert resp.json()["field"] == field, resp.text


def test_unknown_trip_ids_are_ignored_and_named(base_url: str) -> None:
    known = CATALOG.trips[0].trip_id
    resp = _post(base_url, "/v1/rank", json.dumps(_rank_body(trip_ids=[known, "no-such-trip"])).encode())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ignored_trip_ids"] == ["no-such-trip"]
    assert [it["trip_id"] for it in body["items"]] == [known]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "view"}, "type"),
        ({"type": "dwell", "value": -1}, "value"),
        ({"type": "click", "ts": -5}, "ts"),
        ({"type": "click", "ts": 1e12}, "ts"),
        ({"type": "click", "trip_id": ""}, "trip_id"),
        ({"type": "click", "extra": 1}, "extra"),
    ],
)
def test_hostile_events(base_url: str, event: dict[str, Any], field: str) -> None:
    body = {"session_id": "s-1", "trip_id": "t-1", **event}
    resp = _post(base_url, "/v1/events", json.dumps(body).encode())
    check_answer("POST", "/v1/events", resp)
    assert resp.status_code == 422 and resp.json()["field"] == field, resp.text
    batch = {"events": [{"session_id": "s-1", "trip_id": "t-1", "type": "click"}, body]}
    resp = _post(base_url, "/v1/events", json.dumps(batch).encode())
    assert resp.status_code == 422 and resp.json()["field"] == f"events[1].{field}", resp.text


@pytest.mark.parametrize(
    ("variants", "field_start"),
    [
        ([{"name": "a", "policy": "no-such-policy", "traffic": 1.0, "epsilon": 0.1}], "variants[0].policy"),
        ([{"name": "a", "policy": "rules", "traffic": float("nan"), "epsilon": 0.1}], None),
        ([{"name": "a", "policy": "rules", "traffic": 1.0, "epsilon": 2.0}], "variants[0].epsilon"),
    ],
)
def test_unknown_variants_and_policies(
    base_url: str, variants: list[dict[str, Any]], field_start: str | None
) -> None:
    body = json.dumps({"name": "x", "salt": "s", "variants": variants}, allow_nan=True).encode()
    resp = requests.put(base_url + "/v1/admin/experiment", data=body, headers=ADMIN, timeout=10)
    check_answer("PUT", "/v1/admin/experiment", resp)
    assert resp.status_code in (400, 422), resp.text
    if field_start is not None:
        assert resp.json()["field"].startswith(field_start), resp.text
    path = "/v1/admin/models/{policy}/{segment}/pin"
    resp = _post(base_url, "/v1/admin/models/no-such-policy/family/pin", b'{"version": 1}', ADMIN)
    check_answer("POST", path, resp)
    assert resp.status_code in (404, 422), resp.text


@given(raw=st.binary(max_size=200))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_bytes_to_every_body_endpoint(base_url: str, raw: bytes) -> None:
    for path, method in (("/v1/rank", "POST"), ("/v1/events", "POST"), ("/v1/admin/experiment", "PUT")):
        headers = {**(ADMIN if "admin" in path else API), "Content-Type": "application/json"}
        resp = requests.request(method, base_url + path, data=raw, headers=headers, timeout=10)
        check_answer(method, path, resp)
