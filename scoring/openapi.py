"""The scoring worker's OpenAPI 3.1 document, served at ``GET /openapi.json``.

Kept as data next to the handlers; ``tests/scoring/test_openapi.py`` checks
that it names exactly the routes of :data:`scoring.api.ROUTES`, with the same
security, and that example bodies validate.
"""

from __future__ import annotations

from typing import Any

import orjson

from features.context import SEGMENTS
from scoring.experiment import POLICIES
from stream.events import INTERACTION_TYPES

__all__ = ["document", "document_bytes"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


_ERRORS = {
    "400": _ok("Body is not JSON", _ref("Error")),
    "401": _ok("No or unknown bearer token", _ref("Error")),
    "403": _ok("Token lacks the scope", _ref("Error")),
    "413": _ok("Body larger than SMARTTRIP_MAX_BODY_BYTES", _ref("Error")),
    "422": _ok("A field is invalid: `field` names it, `problem` says why", _ref("Error")),
    "429": _ok("The client's rate limit is spent: retry after `Retry-After` seconds", _ref("Error")),
}
_AUTH_ERRORS = {k: _ERRORS[k] for k in ("401", "403", "429")}
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
_API: list[dict[str, list[str]]] = [{"apiToken": []}, {"adminToken": []}]
_PATH_PARAMS = [
    {
        "name": "policy",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(POLICIES[1:])},
    },
    {"name": "segment", "in": "path", "required": True, "schema": {"type": "string"}},
]
_VERSION_BODY = _json_body(
    {"type": "object", "required": ["version"], "properties": {"version": {"type": "integer", "minimum": 1}}}
)

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "field", "problem", "message", "retriable"],
        "properties": {
            "error": {"type": "string", "examples": ["invalid_request"]},
            "field": {"type": ["string", "null"], "examples": ["preferences.budget"]},
            "problem": {"type": "string"},
            "message": {"type": "string"},
            "retriable": {"type": "boolean"},
        },
    },
    "Preferences": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "themes": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
            "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
            "duration_days": {"type": "integer", "minimum": 1, "maximum": 365},
            "budget": {"type": "number", "exclusiveMinimum": 0},
            "countries": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
            "continents": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
            "travel_date": {"type": "string", "format": "date"},
        },
    },
    "Filters": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "countries": {"type": "array", "items": {"type": "string"}},
            "date_from": {"type": "string", "format": "date"},
            "date_to": {"type": "string", "format": "date"},
            "max_price": {"type": "number"},
        },
    },
    "RankRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["session_id"],
        "properties": {
            "session_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "user_id": {
                "type": ["string", "null"],
                "maxLength": 128,
                "description": "Pseudonymised on arrival with a keyed hash; never stored or logged raw.",
            },
            "preferences": _ref("Preferences"),
            "segment": {"type": "string", "enum": list(SEGMENTS), "description": "Explicit segment."},
            "trip_ids": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "Candidates (default: the whole bookable catalog). Unknown ids are ignored "
                "and listed in `ignored_trip_ids`.",
            },
            "filters": _ref("Filters"),
            "k": {"type": "integer", "minimum": 1, "default": 10},
            "explore": {"type": "boolean", "default": True},
        },
    },
    "RankedItem": {
        "type": "object",
        "required": ["trip_id", "position", "score", "propensity"],
        "properties": {
            "trip_id": {"type": "string"},
            "position": {"type": "integer", "minimum": 0},
            "score": {"type": "number"},
            "propensity": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1,
                "description": "P(this trip at this position | the trips above it); 1 with explore=false.",
            },
        },
    },
    "RankResponse": {
        "type": "object",
        "required": ["request_id", "variant", "policy", "model_version", "segment", "items"],
        "properties": {
            "request_id": {"type": "string"},
            "variant": {"type": "string"},
            "policy": {"type": "string", "enum": list(POLICIES)},
            "model_version": {"type": "string", "examples": ["linucb/adventure/v12", "rules/v1"]},
            "segment": {"type": "string", "enum": list(SEGMENTS)},
            "explore": {"type": "boolean"},
            "explored": {"type": "boolean", "description": "The slate differs from the greedy ranking."},
            "candidates": {"type": "integer"},
            "items": {"type": "array", "items": _ref("RankedItem")},
            "ignored_trip_ids": {"type": "array", "items": {"type": "string"}},
            "catalog_version": {
                "type": "string",
                "description": "The catalog version the slate was ranked on.",
            },
        },
    },
    "Event": {
        "type": "object",
        "additionalProperties": False,
        "required": ["session_id", "trip_id", "type"],
        "properties": {
            "event_id": {"type": "string", "description": "Default: a new UUID."},
            "session_id": {"type": "string"},
            "request_id": {"type": "string"},
            "trip_id": {"type": "string"},
            "type": {"type": "string", "enum": list(INTERACTION_TYPES)},
            "value": {"type": "number", "minimum": 0, "description": "Dwell seconds for type=dwell."},
            "ts": {"type": "number", "description": "Seconds since the epoch; default: server time."},
        },
    },
    "Variant": {
        "type": "object",
        "required": ["name", "policy", "traffic"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "policy": {"type": "string", "enum": list(POLICIES)},
            "traffic": {"type": "number", "minimum": 0, "maximum": 1},
            "epsilon": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1},
        },
    },
    "Experiment": {
        "type": "object",
        "required": ["salt", "variants"],
        "properties": {
            "name": {"type": "string"},
            "salt": {"type": "string"},
            "revision": {"type": "integer", "description": "On PUT: the revision you read (409 if stale)."},
            "variants": {"type": "array", "items": _ref("Variant"), "minItems": 1, "maxItems": 16},
            "buckets": {"type": "object", "readOnly": True},
            "allocation": {"type": "array", "readOnly": True, "description": "[start, end, variant index]"},
        },
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    paths: dict[str, Any] = {
        "/v1/rank": {
            "post": {
                "operationId": "rank",
                "summary": "Rank trips for a session: variant, policy, model version, k items with propensities.",
                "security": _API,
                "requestBody": _json_body(_ref("RankRequest")),
                "responses": {
                    "200": _ok("Ranked", _ref("RankResponse")),
                    **_ERRORS,
                    "503": _ok("No catalog loaded yet (retriable)", _ref("Error")),
                },
            }
        },
        "/v1/events": {
            "post": {
                "operationId": "events",
                "summary": 'Report one interaction, or a batch as {"events": [...]}; produced to `interactions`.',
                "security": _API,
                "requestBody": _json_body(
                    {
                        "oneOf": [
                            _ref("Event"),
                            {
                                "type": "object",
                                "required": ["events"],
                                "properties": {"events": {"type": "array", "items": _ref("Event")}},
                            },
                        ]
                    }
                ),
                "responses": {"202": _ok("Accepted", {"type": "object"}), **_ERRORS},
            }
        },
        "/healthz": {"get": {"operationId": "healthz", "security": [], "responses": {"200": _ok("Alive")}}},
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "security": [],
                "summary": "Ready once a catalog is loaded; details on Redis, models, Kafka and the spool.",
                "responses": {"200": _ok("Ready"), "503": _ok("No catalog yet")},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "security": _API,
                "responses": {"200": _ok("Prometheus text"), **_AUTH_ERRORS},
            }
        },
        "/openapi.json": {
            "get": {"operationId": "openapi", "security": [], "responses": {"200": _ok("This document")}}
        },
        "/v1/admin/experiment": {
            "get": {
                "operationId": "experiment_get",
                "security": _ADMIN,
                "responses": {"200": _ok("The experiment", _ref("Experiment")), **_AUTH_ERRORS},
            },
            "put": {
                "operationId": "experiment_put",
                "security": _ADMIN,
                "summary": "Replace variants, split and salt; buckets move minimally (same salt).",
                "requestBody": _json_body(_ref("Experiment")),
                "responses": {
                    "200": _ok("In force", _ref("Experiment")),
                    **_ERRORS,
                    "409": _ok("Stale revision", _ref("Error")),
                    "503": _ok("Redis unreachable", _ref("Error")),
                },
            },
        },
        "/v1/admin/models": {
            "get": {
                "operationId": "models_list",
                "security": _ADMIN,
                "responses": {"200": _ok("Stored and loaded models"), **_AUTH_ERRORS},
            }
        },
        "/v1/admin/models/{policy}/{segment}/rollback": {
            "post": {
                "operationId": "models_rollback",
                "security": _ADMIN,
                "parameters": _PATH_PARAMS,
                "requestBody": _VERSION_BODY,
                "responses": {
                    "200": _ok("Re-published as a new version"),
                    **_ERRORS,
                    "404": _ok("Unknown model or version", _ref("Error")),
                },
            }
        },
        "/v1/admin/models/{policy}/{segment}/pin": {
            "post": {
                "operationId": "models_pin",
                "security": _ADMIN,
                "parameters": _PATH_PARAMS,
                "requestBody": _VERSION_BODY,
                "responses": {
                    "200": _ok("Pinned"),
                    **_ERRORS,
                    "404": _ok("Unknown model or version", _ref("Error")),
                },
            },
            "delete": {
                "operationId": "models_unpin",
                "security": _ADMIN,
                "parameters": _PATH_PARAMS,
                "responses": {
                    "200": _ok("Unpinned"),
                    "404": _ok("Unknown model", _ref("Error")),
                    "422": _ERRORS["422"],
                    **_AUTH_ERRORS,
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SmartTrip scoring worker",
            "version": "1",
            "description": "Ranking RPC with live models, exploration with logged propensities, A/B variants.",
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "SMARTTRIP_API_TOKENS"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "SMARTTRIP_ADMIN_TOKENS"},
            },
        },
    }


def document_bytes() -> bytes:
    return orjson.dumps(document())
