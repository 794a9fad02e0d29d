"""The ``smarttrip`` CLI end to end, in-process (no services needed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smarttrip.cli.main import app

runner = CliRunner()


def test_generate_validate_rank(tmp_path: Path) -> None:
    cat = tmp_path / "cat.jsonl"
    out = runner.invoke(app, ["catalog", "generate", "--trips", "300", "--seed", "3", "--out", str(cat)])
    assert out.exit_code == 0, out.output
    assert len(cat.read_text().splitlines()) == 300
    ok = runner.invoke(app, ["catalog", "validate", str(cat)])
    assert ok.exit_code == 0 and "300 valid trips, 0 problem(s)" in ok.output

    prefs = tmp_path / "prefs.json"
    prefs.write_text(json.dumps({"themes": ["hiking"], "budget": 2500, "duration_days": 10}))
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"PRICE_GAP": -10, "BASE_SCORE": 1}))
    args = [
        "rank",
        "--catalog",
        str(cat),
        "--prefs",
        str(prefs),
        "-k",
        "7",
        "--today",
        "2026-01-01",
        "--json",
    ]
    ranked = runner.invoke(app, args)
    assert ranked.exit_code == 0, ranked.output
    body = json.loads(ranked.output)
    assert body["policy"] == "rules" and len(body["items"]) == 7
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    learned = json.loads(runner.invoke(app, [*args, "--weights", str(weights)]).output)
    assert learned["policy"] == "w"
    assert [i["phi"]["PRICE_GAP"] for i in learned["items"]] == sorted(
        i["phi"]["PRICE_GAP"] for i in learned["items"]
    )


def test_validate_reports_bad_rows_and_exits_1(tmp_path: Path) -> None:
    cat = tmp_path / "bad.jsonl"
    runner.invoke(app, ["catalog", "generate", "--trips", "3", "--out", str(cat)])
    lines = cat.read_text().splitlines()
    lines[1] = lines[1].replace('"status": "', '"status": "x')
    cat.write_text("\n".join(lines) + "\n")
    out = runner.invoke(app, ["catalog", "validate", str(cat)])
    assert out.exit_code == 1
    assert "line 2: status: unknown status" in out.output and "2 valid trips, 1 problem(s)" in out.output


def test_rank_rejects_bad_preferences(tmp_path: Path) -> None:
    cat = tmp_path / "cat.jsonl"
    runner.invoke(app, ["catalog", "generate", "--trips", "5", "--out", str(cat)])
    prefs = tmp_path / "prefs.json"
    prefs.write_text(json.dumps({"difficulty": 7}))
    out = runner.invoke(app, ["rank", "--catalog", str(cat), "--prefs", str(prefs)])
    assert out.exit_code == 2 and "difficulty: must be between 1 and 5, got 7" in out.output


def test_bench_scoring_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    out = runner.invoke(app, ["bench", "scoring", "--quick", "--sizes", "30,500", "--json", str(path)])
    assert out.exit_code == 0, out.output
    results = json.loads(path.read_text())["results"]
    assert [r["candidates"] for r in results] == [30, 500]
    assert all(r["vectorized"]["p50_ms"] > 0 and r["reference"]["p50_ms"] > 0 for r in results)


def test_static_demo_learns_better_than_rules() -> None:
    from smarttrip.static_demo import run_static_demo

    a = run_static_demo(seed=1)
    ctr = a.ctr_top10
    # Measured over seeds 0-4: learned/rules is 1.24-1.32; 1.1 leaves room without being vacuous.
    assert ctr["learned"] > 1.1 * ctr["rules"] and ctr["learned"] <= ctr["oracle"] + 1e-12
    assert run_static_demo(seed=1).ctr_top10 == ctr  # same seed, same result


def test_demo_command_prints_report() -> None:
    out = runner.invoke(app, ["demo", "--offline"])
    assert out.exit_code == 0, out.output
    assert "share of oracle" in out.output and "learned" in out.output
