"""Security guarantees of the scoring worker: tokens on every route, admin apart, constant-time
comparison, a per-client rate limit, secrets never logged, no pickle or eval of stored bytes."""

from __future__ import annotations

import ast
import asyncio
import hmac
import logging
from pathlib import Path
from typing import Any

import pytest

from scoring import api
from scoring.api import ROUTES
from scoring.errors import SettingsError
from scoring.settings import ServeSettings
from stream.embedded import EmbeddedServices
from tests.scoring.serving import (
    ADMIN,
    ADMIN_TOKEN,
    API,
    API_TOKEN,
    new_env,
    running,
    settings_for,
    topic_values,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "scoring", "bandit", "stream", "monitoring", "smarttrip", "bench", "sim")


def _concrete(path: str) -> str:
    return path.replace("{policy}", "linucb").replace("{segment}", "family")


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_every_non_public_route_needs_a_token_and_admin_is_separate(services: EmbeddedServices) -> None:
    env = new_env(services, partitions=1)
    async with running(settings_for(services, env)) as srv:
        for route in ROUTES:
            path = _concrete(route.path)
            async with srv.client.request(route.method, path) as r:
                if route.scope == "public":
                    assert r.status in (200, 503), route
                    continue
                assert r.status == 401, route
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
            async with srv.client.request(
                route.method, path, headers={"Authorization": "Bearer x" * 20}
            ) as r:
                assert r.status == 401, route
            if route.scope == "admin":
                async with srv.client.request(route.method, path, headers=API) as r:
                    assert r.status == 403 and (await r.json())["field"] == "Authorization", route
        assert {r.scope for r in ROUTES if r.path.startswith("/v1/admin")} == {"admin"}
        assert {r.path for r in ROUTES if r.scope == "public"} == {"/healthz", "/readyz", "/openapi.json"}


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_tokens_compared_in_constant_time_with_every_configured_token(
    services: EmbeddedServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = new_env(services, partitions=1)
    settings = settings_for(
        services, env, api_tokens=(API_TOKEN, "second-api-token-0123456789"),
        admin_tokens=(ADMIN_TOKEN, "second-admin-token-0123456789"),
    )  # fmt: skip
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(api.hmac, "compare_digest", counting)
    async with running(settings) as srv:
        async with srv.client.get("/metrics", headers=API) as r:
            assert r.status == 200
        assert len(calls) == 4  # both admin tokens, then both API tokens: the first match ends nothing early
        calls.clear()
        async with srv.client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
            assert r.status == 200
        assert len(calls) == 2


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_non_utf8_token_is_401_not_500(services: EmbeddedServices) -> None:
    env = new_env(services, partitions=1)
    async with running(settings_for(services, env)) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xed\xa0\x80\r\n"
                     b"Connection: close\r\n\r\n")  # fmt: skip
        await writer.drain()
        reply = await reader.read()
        writer.close()
        assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_rate_limit_per_client_with_retry_after(services: EmbeddedServices) -> None:
    env = new_env(services, partitions=1)
    settings = settings_for(services, env, rate_limit_rps=0.5, rate_limit_burst=3)
    async with running(settings) as srv:
        c = srv.client
        statuses = []
        for _ in range(4):
            async with c.get("/metrics", headers=API) as r:
                statuses.append(r.status)
                last: Any = (r.headers.get("Retry-After"), await r.read())
        assert statuses == [200, 200, 200, 429]
        retry_after, body = last
        assert retry_after is not None and int(retry_after) >= 1
        assert b'"rate_limited"' in body and b'"retriable":true' in body
        async with c.get("/metrics", headers=ADMIN) as r:  # another client, its own bucket
            assert r.status == 200
        for _ in range(3):
            async with c.get("/healthz") as r:  # health is never limited
                assert r.status == 200
        bad = {"Authorization": "Bearer wrong-token-0123456789"}
        guesses = []
        for _ in range(4):  # guessing tokens spends the address's bucket
            async with c.get("/metrics", headers=bad) as r:
                guesses.append(r.status)
        assert guesses == [401, 401, 401, 429]


def test_rate_limit_settings_are_validated() -> None:
    base: dict[str, Any] = {
        "api_tokens": (API_TOKEN,),
        "admin_tokens": (ADMIN_TOKEN,),
        "pseudonym_key": b"k" * 16,
    }
    with pytest.raises(SettingsError, match="RATE_LIMIT_RPS"):
        ServeSettings(**base, rate_limit_rps=-1)
    with pytest.raises(SettingsError, match="RATE_LIMIT_RPS"):
        ServeSettings(**base, rate_limit_rps=float("nan"))
    with pytest.raises(SettingsError, match="RATE_LIMIT_BURST"):
        ServeSettings(**base, rate_limit_burst=0)
    env = {"SMARTTRIP_API_TOKENS": API_TOKEN, "SMARTTRIP_ADMIN_TOKENS": ADMIN_TOKEN,
           "SMARTTRIP_PSEUDONYM_KEY": "k" * 16, "SMARTTRIP_RATE_LIMIT_RPS": "0"}  # fmt: skip
    assert ServeSettings.from_env(env).rate_limit_rps == 0.0


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_pseudonym_key_tokens_and_raw_user_ids_never_logged(
    services: EmbeddedServices, caplog: pytest.LogCaptureFixture
) -> None:
    key = b"very-secret-pseudonym-key-42"
    user = "alice.secret@example.com"
    env = new_env(services, partitions=1)
    settings = settings_for(services, env, pseudonym_key=key)
    caplog.set_level(logging.DEBUG)
    async with running(settings) as srv:
        for body in (
            {"session_id": "s-1", "user_id": user},
            {"session_id": "s-2", "user_id": user, "k": "bad"},
            {"session_id": "s-3", "user_id": user + "\x00"},  # invalid: the message must not echo it
        ):
            async with srv.client.post("/v1/rank", json=body, headers=API) as r:
                text = await r.text()
                assert user not in text and key.decode() not in text
        async with srv.client.put("/v1/admin/experiment", json={"bad": 1}, headers=ADMIN) as r:
            assert r.status == 422
        logging.getLogger("smarttrip.test").info("settings in force: %r", settings)
    records = b"".join(topic_values(services, env.impressions, expected=1, timeout=10))
    assert records and user.encode() not in records and key not in records
    logged = caplog.text
    assert logged, "nothing was logged: the check would be empty"
    for secret in (key.decode(), user, API_TOKEN, ADMIN_TOKEN):
        assert secret not in logged, f"{secret!r} appeared in the logs"


def _python_files() -> list[Path]:
    return [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]


def test_no_pickle_marshal_eval_or_exec_in_the_code_base() -> None:
    banned_modules = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
    found: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                found += [
                    f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in banned_modules
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in banned_modules:
                found.append(f"{where} from {node.module}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("eval", "exec")
            ):
                found.append(f"{where} {node.func.id}()")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
            ):
                # numpy's and yaml's loaders: np.load(..., allow_pickle=False), yaml only through safe_load
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "yaml":
                    found.append(f"{where} yaml.load")
                if isinstance(owner, ast.Name) and owner.id in ("np", "numpy"):
                    kw = {k.arg: k.value for k in node.keywords}
                    flag = kw.get("allow_pickle")
                    if not (isinstance(flag, ast.Constant) and flag.value is False):
                        found.append(f"{where} np.load without allow_pickle=False")
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "allow_pickle"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                found.append(f"{where} allow_pickle not False")
    assert found == [], found
