"""How big the fault-injection runs are: CI sizes by default, the issue's sizes on request.

``SMARTTRIP_FAULTS_SCALE=full`` (or ``make test-faults FAULTS_SCALE=full``)
runs the sizes of issue 11 — a 100,000-event run with join kills, a
1,000,000-event backlog; the default ``ci`` runs smaller ones that keep the
suite to a few minutes on two shared cores. Each test states both sizes.
"""

from __future__ import annotations

import os

ENV_SCALE = "SMARTTRIP_FAULTS_SCALE"
SCALES = ("ci", "full")


def scale() -> str:
    """``"ci"`` or ``"full"``; any other value is an error naming the variable."""
    value = os.environ.get(ENV_SCALE, "ci").strip().lower() or "ci"
    if value not in SCALES:
        raise ValueError(f"{ENV_SCALE}: must be one of {', '.join(SCALES)}, got {value!r}")
    return value


def sized(ci: int, full: int) -> int:
    """``ci`` or ``full`` according to :func:`scale`."""
    return full if scale() == "full" else ci
