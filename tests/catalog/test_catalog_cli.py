"""``smarttrip catalog publish | list | rollback`` against a real redis-server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.loader import write_catalog
from smarttrip.cli.main import app
from stream.embedded import EmbeddedServices

pytestmark = pytest.mark.integration


def test_publish_list_rollback(redis_only: EmbeddedServices, tmp_path: Path) -> None:
    env = {
        "SMARTTRIP_REDIS_URL": redis_only.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": f"t{uuid.uuid4().hex[:8]}",
    }
    runner = CliRunner()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.csv"
    write_catalog(generate_trips(n_trips=30, seed=1), first)
    write_catalog(generate_trips(n_trips=12, seed=2), second)

    out = runner.invoke(app, ["catalog", "publish", str(first)], env=env)
    assert out.exit_code == 0 and "published catalog version 1 (file:a.jsonl): 30 trips" in out.output, (
        out.output
    )
    out = runner.invoke(app, ["catalog", "publish", str(second), "--json"], env=env)
    assert out.exit_code == 0 and json.loads(out.output)["trips"] == 12

    out = runner.invoke(app, ["catalog", "rollback", "1", "--json"], env=env)
    meta = json.loads(out.output)
    assert out.exit_code == 0 and (meta["version"], meta["source"], meta["trips"]) == (3, "rollback:1", 30)

    out = runner.invoke(app, ["catalog", "list", "--json"], env=env)
    assert [(m["version"], m["source"]) for m in json.loads(out.output)] == [
        (3, "rollback:1"),
        (2, "file:b.csv"),
        (1, "file:a.jsonl"),
    ]
    out = runner.invoke(app, ["catalog", "list"], env=env)
    assert out.exit_code == 0 and "rollback:1" in out.output

    out = runner.invoke(app, ["catalog", "rollback", "99"], env=env)
    assert out.exit_code == 1 and "version 99 is not in the store" in out.output


def test_invalid_file_publishes_nothing(redis_only: EmbeddedServices, tmp_path: Path) -> None:
    env = {
        "SMARTTRIP_REDIS_URL": redis_only.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": f"t{uuid.uuid4().hex[:8]}",
    }
    bad = tmp_path / "bad.jsonl"
    write_catalog(generate_trips(n_trips=5, seed=1), bad)
    rows = bad.read_text().splitlines()
    rows[2] = rows[2].replace('"status": "', '"status": "sold_')
    bad.write_text("\n".join(rows) + "\n")
    out = CliRunner().invoke(app, ["catalog", "publish", str(bad)], env=env)
    assert out.exit_code == 2, out.output
    assert "line 3: status: unknown status" in out.output
    with CatalogStore.from_url(redis_only.redis_url, namespace=env["SMARTTRIP_MODEL_NAMESPACE"]) as store:
        assert store.current_version() == 0


def test_redis_away_is_exit_code_3(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_catalog(generate_trips(n_trips=3, seed=1), path)
    out = CliRunner().invoke(app, ["catalog", "publish", str(path), "--redis-url", "redis://127.0.0.1:1/0"])
    assert out.exit_code == 3 and "redis unavailable" in out.output
