"""The published OpenAPI document matches the routes the worker serves."""

from __future__ import annotations

import orjson

from scoring.api import ROUTES
from scoring.openapi import document, document_bytes


def test_document_names_exactly_the_served_routes() -> None:
    doc = document()
    served = {(r.path, r.method.lower()) for r in ROUTES}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


def test_security_matches_route_scopes() -> None:
    doc = document()
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        schemes = {name for req in op["security"] for name in req}
        expected = {"public": set(), "api": {"apiToken", "adminToken"}, "admin": {"adminToken"}}[r.scope]
        assert schemes == expected, r
        assert op["operationId"] == r.name


def test_document_is_json_with_resolvable_refs() -> None:
    raw = document_bytes()
    doc = orjson.loads(raw)
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    refs = {
        part.split("/")[-1] for part in raw.decode().split('"$ref":"')[1:] for part in [part.split('"')[0]]
    }
    assert refs and refs <= set(schemas)
