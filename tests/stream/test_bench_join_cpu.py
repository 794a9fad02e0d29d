"""``python -m bench.join_cpu`` runs the join runtime from two source trees and compares their outputs."""

from __future__ import annotations

import json
from pathlib import Path

from bench.join_cpu import main


def test_join_cpu_bench_measures_both_trees_and_compares_outputs(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    # HEAD against this tree: the same join code, so the same outputs (exit status 0 says so)
    assert main(["--baseline", "HEAD", "--sessions", "150", "--rounds", "1", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    runs = report["runs"]
    assert set(runs) == {"baseline", "this code"}
    for (only,) in (runs["baseline"], runs["this code"]):
        assert only["events"] > 150 and only["cpu_s"] > 0
        assert only["outputs"]["examples"] == 1500  # every slate of 10 closed, each item once
    assert runs["baseline"][0]["digest"] == runs["this code"][0]["digest"]
    assert report["median_us_per_event"]["this code"] > 0
