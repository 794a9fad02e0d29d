"""HTTP handlers and the one middleware (auth, errors as JSON, latency metrics).

Handlers only move data: bodies are validated by :mod:`scoring.requests`,
ranking is :class:`scoring.service.Ranker`, records go to
:class:`scoring.impression_log.ImpressionLog`. Routes, their scope and their
metric label are declared once in :data:`ROUTES` (the OpenAPI document in
:mod:`scoring.openapi` is checked against it by the tests).

Auth: ``Authorization: Bearer <token>``. Scope ``public`` needs none
(``/healthz``, ``/readyz``, ``/openapi.json``); scope ``api`` takes an API or
an admin token; scope ``admin`` only an admin token. No or an unknown token →
401 (with ``WWW-Authenticate: Bearer``); a known token without the scope → 403.
Tokens are compared in constant time (:func:`hmac.compare_digest`, every
configured token is compared, so the time does not tell which one matched).

Rate limit: every non-public request takes a token from its client's bucket
(:mod:`scoring.rate_limit`; the client is the token it authenticated with, or
its address when it did not); an empty bucket → 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Literal

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitoring.scoring_metrics import ScoringMetrics
from scoring.errors import ApiError, AuthError, Conflict, NotFound, RateLimited, RequestError, Unavailable
from scoring.experiment_store import ExperimentStore
from scoring.impression_log import ImpressionLog
from scoring.model_cache import ModelCache
from scoring.rate_limit import RateLimiter
from scoring.requests import parse_events, parse_rank
from scoring.service import CatalogState, Ranker
from scoring.settings import ServeSettings
from stream.codec import encode
from stream.model_store import (
    ModelInputError,
    ModelStore,
    StoreUnavailable,
    UnknownModel,
    UnknownVersion,
    VersionConflict,
)

__all__ = ["ROUTES", "SERVICES", "Route", "Scope", "Services", "add_routes", "middleware"]

log = logging.getLogger(__name__)

Scope = Literal["public", "api", "admin"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    scope: Scope


ROUTES: Final[tuple[Route, ...]] = (
    Route("rank", "POST", "/v1/rank", "api"),
    Route("events", "POST", "/v1/events", "api"),
    Route("healthz", "GET", "/healthz", "public"),
    Route("readyz", "GET", "/readyz", "public"),
    Route("metrics", "GET", "/metrics", "api"),
    Route("openapi", "GET", "/openapi.json", "public"),
    Route("experiment_get", "GET", "/v1/admin/experiment", "admin"),
    Route("experiment_put", "PUT", "/v1/admin/experiment", "admin"),
    Route("models_list", "GET", "/v1/admin/models", "admin"),
    Route("models_rollback", "POST", "/v1/admin/models/{policy}/{segment}/rollback", "admin"),
    Route("models_pin", "POST", "/v1/admin/models/{policy}/{segment}/pin", "admin"),
    Route("models_unpin", "DELETE", "/v1/admin/models/{policy}/{segment}/pin", "admin"),
)
_BY_NAME: Final = {r.name: r for r in ROUTES}


@dataclass
class Services:
    """What the handlers need; assembled by :func:`scoring.server.create_app`."""

    settings: ServeSettings
    ranker: Ranker
    log: ImpressionLog
    models: ModelCache
    experiments: ExperimentStore
    catalog: CatalogState
    metrics: ScoringMetrics
    pseudonymize: Callable[[str], str]
    model_store: Callable[[], ModelStore]
    openapi: bytes
    limiter: RateLimiter


SERVICES: Final = web.AppKey("services", Services)
VARIANT: Final = web.RequestKey("variant", str)


_JSON_TYPE: Final = {"Content-Type": "application/json"}


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=_JSON_TYPE)


def _error(exc: ApiError) -> web.Response:
    resp = _json(exc.body(), exc.status)
    if isinstance(exc, AuthError) and exc.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="smarttrip"'
    elif isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return resp


def _matching(token: bytes, tokens: tuple[str, ...]) -> int | None:
    """Index of ``token`` in ``tokens``, comparing with every one in constant time."""
    found = None
    for i, t in enumerate(tokens):
        if hmac.compare_digest(token, t.encode()):
            found = i
    return found


def _check_token(request: web.Request, svc: Services, scope: Scope) -> str:
    """The client's name for the rate limit (``admin:i`` / ``api:i``: never the token itself)."""
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token:
        raise AuthError("a bearer token is required", status=401)
    token_b = token.strip().encode("utf-8", "surrogateescape")
    admin = _matching(token_b, svc.settings.admin_tokens)
    if admin is not None:
        return f"admin:{admin}"
    api = _matching(token_b, svc.settings.api_tokens)
    if api is None:
        raise AuthError("unknown token", status=401)
    if scope == "admin":
        raise AuthError("this token may not use the admin API", status=403)
    return f"api:{api}"


def _authorize(request: web.Request, svc: Services, scope: Scope) -> None:
    """Check the token, then take one request from the client's bucket (429 when empty)."""
    try:
        client = _check_token(request, svc, scope)
    except AuthError:
        client = f"addr:{request.remote}"
        wait = svc.limiter.acquire(client)
        if wait > 0:
            raise RateLimited(wait) from None
        raise
    wait = svc.limiter.acquire(client)
    if wait > 0:
        raise RateLimited(wait)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth by route scope, every error as JSON, latency and status metrics."""
    started = time.perf_counter()
    svc = request.app[SERVICES]
    route = _BY_NAME.get(request.match_info.route.name or "")
    endpoint = route.path if route is not None else "unmatched"
    try:
        if route is not None and route.scope != "public":
            _authorize(request, svc, route.scope)
        resp = await handler(request)
    except ApiError as exc:
        resp = _error(exc)
    except web.HTTPException as exc:  # aiohttp's own: 404, 405, 413
        if exc.status == 413:
            limit = svc.settings.max_body_bytes
            resp = _error(RequestError("body", f"must be at most {limit} bytes", status=413))
        else:
            resp = _json({"error": exc.reason.lower().replace(" ", "_"), "field": None, "problem": exc.reason,
                          "message": exc.reason, "retriable": False}, exc.status)  # fmt: skip
    except Exception:
        log.exception("unhandled error in %s %s", request.method, endpoint)
        resp = _json({"error": "internal_error", "field": None, "problem": "internal error",
                      "message": "internal error", "retriable": True}, 500)  # fmt: skip
    svc.metrics.observe(endpoint, request.get(VARIANT, ""), resp.status, time.perf_counter() - started)
    return resp


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError("body", f"not valid JSON ({exc})", status=400) from None


# -- ranking and events
async def rank(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    s = svc.settings
    req = parse_rank(
        await _body(request), pseudonymize=svc.pseudonymize, max_k=s.max_k, max_candidates=s.max_candidates
    )
    body = svc.ranker.rank(req)
    request[VARIANT] = body["variant"]
    return _json(body)


async def events(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    parsed = parse_events(await _body(request), max_events=svc.settings.max_events)
    topic = svc.settings.topic_interactions
    for ev in parsed:
        svc.log.submit(topic, ev.session_id.encode(), partial(encode, ev, validate=False))
        svc.metrics.events.labels(ev.type).inc()
    return _json({"accepted": len(parsed), "event_ids": [ev.event_id for ev in parsed]}, 202)


# -- health, readiness, metrics, the API document
async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    catalog = svc.catalog.catalog
    ready = catalog is not None
    exp = svc.experiments
    body = {
        "ready": ready,
        "catalog": {
            "loaded": ready,
            "version": catalog.version if catalog is not None else None,
            "trips": len(catalog) if catalog is not None else 0,
            "error": svc.catalog.error,
        },
        "models": svc.models.status(),
        "impressions": svc.log.status(),
        "experiment": {"name": exp.current.name, "revision": exp.current.revision, "from_redis": exp.synced},
    }
    return _json(body, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    data = generate_latest(svc.metrics.registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[SERVICES].openapi, content_type="application/json")


# -- admin
async def experiment_get(request: web.Request) -> web.Response:
    exp = request.app[SERVICES].experiments
    return _json({**exp.current.to_dict(), "from_redis": exp.synced})


async def experiment_put(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise RequestError("body", "must be a JSON object")
    new = await request.app[SERVICES].experiments.put(body)
    return _json(new.to_dict())


async def _store_call(svc: Services, fn: Callable[[ModelStore], Any]) -> Any:
    """Run a sync model-store call in a thread, mapping its errors to HTTP ones."""
    try:
        return await asyncio.to_thread(lambda: fn(svc.model_store()))
    except (UnknownModel, UnknownVersion) as exc:
        raise NotFound(None, str(exc)) from None
    except VersionConflict as exc:
        raise Conflict("version", str(exc)) from None
    except ModelInputError as exc:
        raise RequestError(exc.field, exc.problem) from None
    except StoreUnavailable as exc:
        raise Unavailable(None, str(exc)) from None


async def models_list(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    loaded = [
        {"policy": m.policy, "segment": m.segment, "version": m.version, "created_at": m.created_at,
         "loaded_at": m.loaded_at}
        for m in svc.models.loaded()
    ]  # fmt: skip
    try:
        summaries = await _store_call(svc, lambda st: st.models())
        store: list[dict[str, Any]] | None = [
            {"policy": m.policy, "segment": m.segment, "current_version": m.current_version,
             "pinned_version": m.pinned_version, "serving_version": m.serving_version,
             "kind": m.meta.kind if m.meta else None,
             "examples_seen": m.meta.examples_seen if m.meta else None,
             "created_at": m.meta.created_at if m.meta else None}
            for m in summaries
        ]  # fmt: skip
        error = None
    except Unavailable as exc:
        store, error = None, exc.problem
    return _json({"store": store, "store_error": error, "loaded": loaded})


async def _version_arg(request: web.Request) -> int:
    body = await _body(request)
    if not isinstance(body, dict) or set(body) - {"version"}:
        raise RequestError("body", 'must be {"version": <int>}')
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RequestError("version", f"must be an integer >= 1, got {version!r}")
    return version


async def _after_change(svc: Services, policy: str, segment: str) -> None:
    with contextlib.suppress(StoreUnavailable):  # else the poll picks it up
        await svc.models.sync(policy, segment)


async def models_rollback(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    policy, segment = request.match_info["policy"], request.match_info["segment"]
    version = await _version_arg(request)
    new = await _store_call(svc, lambda st: st.rollback(policy, segment, version))
    await _after_change(svc, policy, segment)
    return _json({"policy": policy, "segment": segment, "rolled_back_to": version, "version": new})


async def models_pin(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    policy, segment = request.match_info["policy"], request.match_info["segment"]
    version = await _version_arg(request)
    await _store_call(svc, lambda st: st.pin(policy, segment, version))
    await _after_change(svc, policy, segment)
    return _json({"policy": policy, "segment": segment, "pinned_version": version})


async def models_unpin(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    policy, segment = request.match_info["policy"], request.match_info["segment"]
    was = await _store_call(svc, lambda st: st.unpin(policy, segment))
    await _after_change(svc, policy, segment)
    return _json({"policy": policy, "segment": segment, "unpinned_version": was})


_HANDLERS: Final[dict[str, Handler]] = {
    "rank": rank,
    "events": events,
    "healthz": healthz,
    "readyz": readyz,
    "metrics": metrics,
    "openapi": openapi,
    "experiment_get": experiment_get,
    "experiment_put": experiment_put,
    "models_list": models_list,
    "models_rollback": models_rollback,
    "models_pin": models_pin,
    "models_unpin": models_unpin,
}


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _HANDLERS[route.name], name=route.name)
