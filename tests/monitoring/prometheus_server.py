"""A real Prometheus server on 127.0.0.1 for the tests, and the HTTP API calls they make.

Debian's ``prometheus`` package provides the binaries (``make test`` installs
it when missing). The server gets a free port and a temporary TSDB path and
is stopped by PID. Tests that need it skip, with the reason, when it is not
installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream._managed_process import stop_popen, wait_for_http
from stream.worker_process import free_port

MISSING = (
    "{tool} is not installed: `make test` installs Debian's prometheus package "
    "(apt-get install prometheus); it could not here"
)


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(MISSING.format(tool=tool))
    return path


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>; returns the JSON body even for 4xx answers (they carry the error)."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310  # our own 127.0.0.1 server
                body: dict[str, Any] = json.loads(r.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
        return body

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@contextmanager
def prometheus(
    scrape_configs: list[dict[str, Any]], rule_files: list[Path], interval: str = "1s"
) -> Iterator[Prometheus]:
    binary = require("prometheus")
    work = Path(tempfile.mkdtemp(prefix="smarttrip-prometheus-"))
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = work / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # the Debian binary, fixed arguments
            [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        if not wait_for_http(f"{server.url}/-/ready", timeout=30, alive=lambda: proc.poll() is None):
            raise RuntimeError(f"prometheus did not start:\n{server.log_tail()}")
        yield server
    finally:
        stop_popen(proc)
        shutil.rmtree(work, ignore_errors=True)
