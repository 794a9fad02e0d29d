"""The scoring worker as a child process (``python -m scoring.server``), ready when it says so.

Used by the demo and by the tests that run the whole stack: start it with an
environment, wait for ``/readyz`` to answer 200, and stop it by PID at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from stream._managed_process import stop_popen, wait_for_http

__all__ = ["scoring_worker"]


@contextmanager
def scoring_worker(
    env: Mapping[str, str], port: int, log_path: Path, *, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """A running scoring worker listening on 127.0.0.1:``port``, its output in ``log_path``."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "scoring.server"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_http(
            f"http://127.0.0.1:{port}/readyz", timeout=timeout, alive=lambda: proc.poll() is None
        ):
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"scoring worker did not become ready (log {log_path}):\n{tail}")
        yield proc
    finally:
        stop_popen(proc)
