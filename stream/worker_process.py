"""Run ``smarttrip worker`` as a child process: for the demo, the tests and the benchmarks.

The child gets its settings through ``SMARTTRIP_*`` variables, exposes its
metrics on a free loopback port, and is stopped by PID (SIGTERM, then
SIGKILL) — or killed outright when a test wants a crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream._managed_process import free_loopback_port

__all__ = ["WorkerProcess", "free_port"]


def free_port() -> int:
    """A loopback port outside the ephemeral range: see :func:`free_loopback_port`."""
    return free_loopback_port()


class WorkerProcess:
    """One stream worker child process with its own metrics port and log file."""

    def __init__(
        self, env: Mapping[str, str], *, mode: str = "join", name: str = "worker", loglevel: str = "WARNING"
    ) -> None:
        self.metrics_port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix=f"smarttrip-{name}-", suffix=".log")[1])
        child_env = {**os.environ, **env, "SMARTTRIP_METRICS_PORT": str(self.metrics_port)}
        cmd = [sys.executable, "-m", "smarttrip.cli.main", "worker", "--mode", mode, "--loglevel", loglevel]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=child_env, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def metrics(self) -> dict[str, float]:
        """Current samples as {"name{label=value,...}": value}; empty while the endpoint is not up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def total(self, prefix: str) -> float:
        """Sum of every sample whose key starts with ``prefix`` (e.g. a counter over all labels)."""
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def wait_for(self, prefix: str, target: float, timeout: float) -> float:
        """Wait until the summed metric reaches ``target``; returns it (raises on timeout or death)."""
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            value = self.total(prefix)
            if value >= target:
                return value
            if not self.alive():
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"{prefix} reached {value}, wanted {target}:\n{self.log_tail()}")
