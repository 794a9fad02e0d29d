"""Audit installed distributions against a local copy of the PyPA advisory database (OSV YAML).

pip-audit needs PyPI's per-version JSON API; where it is unreachable (these
machines' index mirror answers 404), a clone of
https://github.com/pypa/advisory-database gives the same data offline::

    python scripts/audit_offline.py --db PATH/advisory-database

Each ``vulns/<name>/*.yaml`` advisory is matched against the installed
version: listed in ``affected[].versions``, or inside an ``ECOSYSTEM`` range
(``introduced`` / ``fixed`` / ``last_affected`` events, PEP 440 ordering).
Withdrawn advisories are skipped. Exit 1 on a finding not listed in
``scripts/audit_ignore.txt`` (the same file pip-audit's wrapper reads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

sys.path.insert(0, str(Path(__file__).parent))
from audit_deps import _ignored


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]


def _v(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_range(version: Version, events: Iterable[Mapping[str, str]]) -> bool:
    """Whether ``version`` lies in an OSV ``ECOSYSTEM`` range given by its ordered events.

    >>> in_range(Version("65.5.0"), [{"introduced": "0"}, {"fixed": "65.5.1"}])
    True
    >>> in_range(Version("65.5.1"), [{"introduced": "0"}, {"fixed": "65.5.1"}])
    False
    >>> in_range(Version("2.0"), [{"introduced": "1.0"}, {"last_affected": "2.0"}])
    True
    """
    affected = False
    for event in events:
        for kind, raw in event.items():
            bound = Version("0") if raw == "0" else _v(str(raw))
            if bound is None:
                continue
            if kind == "introduced" and version >= bound:
                affected = True
            elif (kind == "fixed" and version >= bound) or (kind == "last_affected" and version > bound):
                affected = False
    return affected


def affects(advisory: Mapping[str, Any], name: str, version: str) -> bool:
    """Whether an OSV advisory (parsed YAML) affects ``name==version``."""
    if advisory.get("withdrawn"):
        return False
    parsed = _v(version)
    for entry in advisory.get("affected") or []:
        package = entry.get("package") or {}
        if canonicalize_name(str(package.get("name", ""))) != canonicalize_name(name):
            continue
        if version in {str(v) for v in entry.get("versions") or []}:
            return True
        for rng in entry.get("ranges") or []:
            if (
                parsed is not None
                and rng.get("type") == "ECOSYSTEM"
                and in_range(parsed, rng.get("events") or [])
            ):
                return True
    return False


def _fixed(advisory: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(e["fixed"])
        for entry in advisory.get("affected") or []
        for rng in entry.get("ranges") or []
        for e in rng.get("events") or []
        if "fixed" in e
    )


def audit(db: Path, installed: Mapping[str, str]) -> Iterator[Finding]:
    """Findings for ``installed`` (name → version) from the database folder ``db`` (its ``vulns/``)."""
    folders = {canonicalize_name(p.name): p for p in (db / "vulns").iterdir() if p.is_dir()}
    for name, version in sorted(installed.items()):
        folder = folders.get(canonicalize_name(name))
        if folder is None:
            continue
        for path in sorted(folder.glob("*.yaml")):
            advisory = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if affects(advisory, name, version):
                aliases = tuple(str(a) for a in advisory.get("aliases") or [])
                yield Finding(name, version, str(advisory.get("id", path.stem)), aliases, _fixed(advisory))


def installed_distributions() -> dict[str, str]:
    """Every distribution installed in this interpreter's environment."""
    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, required=True, help="a copy of pypa/advisory-database")
    args = parser.parse_args(argv)
    if not (args.db / "vulns").is_dir():
        print(
            f"--db: {args.db} has no vulns/ folder (expected a copy of pypa/advisory-database)",
            file=sys.stderr,
        )
        return 2
    ignored = _ignored()
    installed = installed_distributions()
    findings = list(audit(args.db, installed))
    open_ = [f for f in findings if f.advisory not in ignored and not set(f.aliases) & ignored.keys()]
    for f in findings:
        state = "ignored (triaged)" if f not in open_ else "VULNERABLE"
        fixed = ", ".join(f.fixed) or "none"
        print(f"{state} {f.package} {f.version}: {f.advisory} {' '.join(f.aliases)} (fixed in {fixed})")
    print(
        f"offline audit: {len(installed)} distributions, {len(findings)} findings, {len(open_)} not triaged"
    )
    return 1 if open_ else 0


if __name__ == "__main__":
    sys.exit(main())
