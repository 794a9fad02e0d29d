"""Several scoring-worker processes on one port (``SMARTTRIP_SERVE_WORKERS`` > 1).

Why: a worker is one Python process, so one core; a ranking request costs a
few hundred µs of CPU (catalog lookups, φ, scores, sampling, JSON, Kafka).
Workers are stateless readers of Redis, so the way to use a second core is a
second process: each child binds the same port with ``SO_REUSEPORT`` and the
kernel spreads connections over them. Each child has its own model cache,
impression log and spool (``<SMARTTRIP_SPOOL_DIR>/worker-<i>``) and its own
metrics: ``/metrics`` on the shared port answers for whichever child took the
connection, so scrape each child on ``SMARTTRIP_METRICS_PORT + i``.

The supervisor (this module) starts the children with
``SMARTTRIP_WORKER_INDEX=i``, restarts one that dies (at most once a second),
and on SIGINT/SIGTERM stops them all by PID (SIGTERM, then SIGKILL after
``stop_timeout``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from scoring.settings import ServeSettings, SettingsError

__all__ = ["supervise"]

log = logging.getLogger(__name__)


def _spawn(index: int, command: Sequence[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMARTTRIP_WORKER_INDEX": str(index)}
    return subprocess.Popen(list(command), env=env)  # noqa: S603 - our own interpreter and module


def supervise(
    settings: ServeSettings,
    *,
    command: Sequence[str] = (sys.executable, "-m", "scoring.server"),
    stop_timeout: float = 15.0,
) -> int:
    """Run ``settings.serve_workers`` children until SIGINT/SIGTERM; returns an exit status."""
    if settings.serve_port == 0:
        raise SettingsError("SMARTTRIP_SERVE_PORT: several workers need a fixed port, not 0")
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = {i: _spawn(i, command) for i in range(settings.serve_workers)}
    last_restart = dict.fromkeys(children, time.monotonic())
    log.warning("supervising %d scoring workers on port %d: pids %s", len(children), settings.serve_port,
                [p.pid for p in children.values()])  # fmt: skip
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in list(children.items()):
                if proc.poll() is None or stopping:
                    continue
                if time.monotonic() - last_restart[i] < 1.0:
                    continue
                log.error(
                    "scoring worker %d (pid %d) exited with %s; restarting it", i, proc.pid, proc.returncode
                )
                children[i] = _spawn(i, command)
                last_restart[i] = time.monotonic()
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout
        for proc in children.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("scoring worker pid %d did not stop in %.0fs; killing it", proc.pid, stop_timeout)
                proc.kill()
                proc.wait(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
