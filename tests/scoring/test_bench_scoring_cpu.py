"""bench.scoring_cpu's baseline tree: the files of a revision, or an error naming the baseline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.scoring_cpu import BASELINE, REPO, source_tree


def _git_ok() -> bool:
    try:
        proc = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BASELINE}^{{commit}}"],
                              capture_output=True, check=False)  # fmt: skip
    except FileNotFoundError:
        return False
    return proc.returncode == 0


needs_git = pytest.mark.skipif(not _git_ok(), reason=f"not a git checkout holding the baseline {BASELINE}")


@needs_git
def test_source_tree_extracts_the_baseline_revision(tmp_path: Path) -> None:
    tree = source_tree(BASELINE, tmp_path)
    assert (tree / "scoring" / "server.py").is_file()
    assert (tree / "scoring" / "model_cache.py").is_file()
    assert not (tree / "scoring" / "model_loader.py").exists()  # written after the baseline


@needs_git
def test_an_unknown_revision_is_refused_naming_the_baseline(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="baseline: cannot read revision 'no-such-ref'"):
        source_tree("no-such-ref", tmp_path)
