"""The coverage-guided fuzz harness (fuzz/fuzz_decoders.py, `make fuzz`) runs and finds nothing in a short run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("atheris", reason="atheris has wheels for x86_64 only; `make fuzz` needs it")


@pytest.mark.timeout(120)
def test_fuzz_harness_short_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "fuzz" / "corpus", corpus)
    seeds = len(list(corpus.iterdir()))
    assert seeds >= 5
    proc = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "fuzz_decoders.py"), "-runs=20000", "-rss_limit_mb=2048", str(corpus)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=110,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 20000 runs" in proc.stderr
