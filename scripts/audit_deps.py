"""Audit the installed dependencies with pip-audit; skip loudly when the advisory DB is unreachable.

pip-audit looks each distribution up in PyPI's JSON API (``/pypi/NAME/VERSION/json``,
which carries the PyPA advisory database). When that lookup fails for every
dependency (no network, or a mirror without the per-version API), pip-audit
still ends with "No known vulnerabilities found": this wrapper reports such a
run as SKIPPED (exit 0, on stderr) instead of as a pass. Known vulnerabilities
fail the run (exit 1) unless their id is listed, with a reason, in
``scripts/audit_ignore.txt`` (triaged in the README, "Dependency audit").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORE_FILE = Path(__file__).with_name("audit_ignore.txt")


def _ignored() -> dict[str, str]:
    """``ID  reason`` lines of the ignore file (``#`` starts a comment)."""
    out: dict[str, str] = {}
    if IGNORE_FILE.exists():
        for line in IGNORE_FILE.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                vid, _, reason = line.partition(" ")
                out[vid] = reason.strip()
    return out


def main() -> int:
    ignored = _ignored()
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable",
               "--format", "json", "--output", report.name]  # fmt: skip
        for vid in ignored:
            cmd += ["--ignore-vuln", vid]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - our own interpreter
        try:
            data = json.loads(Path(report.name).read_text() or "{}")
        except json.JSONDecodeError:
            data = {}
    deps = data.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"SKIPPED pip-audit: the advisory database was unreachable; 0 of {len(deps)} dependencies "
              f"could be looked up, NOTHING was audited ({tail[0]})", file=sys.stderr)  # fmt: skip
        return 0
    vulns = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
    for name, version, v in vulns:
        fixes = ", ".join(v.get("fix_versions", [])) or "none"
        print(f"VULNERABLE {name} {version}: {v.get('id')} (fixed in {fixes})")
    skipped = len(deps) - len(audited)
    print(f"pip-audit: {len(audited)} dependencies audited, {skipped} not found on the index, "
          f"{len(vulns)} known vulnerabilities, {len(ignored)} ignored as triaged")  # fmt: skip
    return 1 if vulns else 0


if __name__ == "__main__":
    sys.exit(main())
