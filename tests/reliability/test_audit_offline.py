"""The offline dependency audit matches OSV advisories (PyPA database layout) against versions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "audit_offline.py"

ADVISORY = """\
id: PYSEC-2022-43012
aliases:
- CVE-2022-40897
affected:
- package:
    name: setuptools
    ecosystem: PyPI
  ranges:
  - type: GIT
    events:
    - introduced: '0'
    - fixed: 43ea1b4c02ee1ba0b6fcec12c9e8ff4d4e5e1b70
  - type: ECOSYSTEM
    events:
    - introduced: '0'
    - fixed: 65.5.1
  versions:
  - '60.0'
"""
WITHDRAWN = """\
id: PYSEC-0000-WITHDRAWN
withdrawn: '2024-01-01T00:00:00Z'
affected:
- package: {name: Setup_Tools, ecosystem: PyPI}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: '0'}]
"""
LISTED = """\
id: PYSEC-2021-1
affected:
- package: {name: demo-pkg, ecosystem: PyPI}
  versions: ['1.0rc1']
"""


@pytest.fixture(scope="module")
def audit_offline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_offline", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_offline"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "vulns" / "setuptools").mkdir(parents=True)
    (tmp_path / "vulns" / "setuptools" / "PYSEC-2022-43012.yaml").write_text(ADVISORY)
    (tmp_path / "vulns" / "setuptools" / "PYSEC-0000-WITHDRAWN.yaml").write_text(WITHDRAWN)
    (tmp_path / "vulns" / "demo-pkg").mkdir()
    (tmp_path / "vulns" / "demo-pkg" / "PYSEC-2021-1.yaml").write_text(LISTED)
    return tmp_path


@pytest.mark.parametrize(
    ("version", "hit"), [("65.5.0", True), ("60.0", True), ("65.5.1", False), ("84.2.1", False)]
)
def test_ranges_and_version_lists_decide(
    audit_offline: ModuleType, db: Path, version: str, hit: bool
) -> None:
    findings = list(audit_offline.audit(db, {"setuptools": version}))
    assert [f.advisory for f in findings] == (["PYSEC-2022-43012"] if hit else [])
    if hit:
        assert findings[0].aliases == ("CVE-2022-40897",)
        assert "65.5.1" in findings[0].fixed


def test_names_are_normalised_and_listed_versions_match_exactly(audit_offline: ModuleType, db: Path) -> None:
    assert [f.advisory for f in audit_offline.audit(db, {"Demo_Pkg": "1.0rc1"})] == ["PYSEC-2021-1"]
    assert list(audit_offline.audit(db, {"Demo_Pkg": "1.0"})) == []
    assert list(audit_offline.audit(db, {"unlisted": "1.0"})) == []


def test_last_affected_is_inclusive(audit_offline: ModuleType) -> None:
    from packaging.version import Version

    events = [{"introduced": "1.0"}, {"last_affected": "2.0"}]
    assert audit_offline.in_range(Version("2.0"), events)
    assert not audit_offline.in_range(Version("2.0.1"), events)
    assert not audit_offline.in_range(Version("0.9"), events)


def test_main_fails_on_a_finding_and_rejects_a_wrong_folder(
    audit_offline: ModuleType,
    db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        audit_offline, "installed_distributions", lambda: {"setuptools": "65.5.0", "numpy": "2.0"}
    )
    monkeypatch.setattr(audit_offline, "_ignored", lambda: {})
    assert audit_offline.main(["--db", str(db)]) == 1
    assert "VULNERABLE setuptools 65.5.0: PYSEC-2022-43012" in capsys.readouterr().out
    monkeypatch.setattr(audit_offline, "_ignored", lambda: {"CVE-2022-40897": "triaged"})
    assert audit_offline.main(["--db", str(db)]) == 0
    assert audit_offline.main(["--db", str(tmp_path / "nowhere")]) == 2
