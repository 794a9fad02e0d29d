"""Several worker processes on one port, supervised, stopped by PID; the CLI's settings errors."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import typer
from typer.testing import CliRunner

from smarttrip.cli.serve import serve
from stream.embedded import EmbeddedServices
from stream.worker_process import free_port
from tests.scoring.serving import API_TOKEN, new_env


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(url: str) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_TOKEN}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=2) as r:  # noqa: S310 - http://127.0.0.1 only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, http.client.HTTPException):  # not listening yet, or a broken reply
        return 0, {}


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_two_workers_share_the_port_and_stop_on_sigterm(services: EmbeddedServices) -> None:
    env = new_env(services)
    port, metrics = free_port(), free_port()
    while metrics + 1 == port or not _bindable(metrics + 1):  # worker i serves metrics on metrics + i
        metrics = free_port()
    child_env = {
        **os.environ,
        "SMARTTRIP_API_TOKENS": API_TOKEN,
        "SMARTTRIP_ADMIN_TOKENS": "admin-token-for-workers-test",
        "SMARTTRIP_PSEUDONYM_KEY": "workers-test-pseudonym-key",
        "SMARTTRIP_SYNTHETIC_TRIPS": "300",
        "SMARTTRIP_REDIS_URL": services.redis_url,
        "SMARTTRIP_MODEL_NAMESPACE": env.namespace,
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers,
        "SMARTTRIP_TOPIC_IMPRESSIONS": env.impressions,
        "SMARTTRIP_TOPIC_INTERACTIONS": env.interactions,
        "SMARTTRIP_SPOOL_DIR": tempfile.mkdtemp(prefix="spool-"),
        "SMARTTRIP_SERVE_PORT": str(port),
        "SMARTTRIP_SERVE_WORKERS": "2",
        "SMARTTRIP_METRICS_PORT": str(metrics),
    }
    proc = subprocess.Popen([sys.executable, "-m", "scoring.server"], env=child_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        ready = set()
        while len(ready) < 2 and time.monotonic() < deadline:
            for i in range(2):
                if _get(f"http://127.0.0.1:{metrics + i}/readyz")[0] == 200:
                    ready.add(i)
            time.sleep(0.1)
        assert ready == {0, 1}
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["ready"] is True
        pids = {int(line.split()[0]) for line in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.splitlines()}  # fmt: skip
        assert len(pids) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
    for pid in pids:  # the supervisor stopped its children
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cli_reports_settings_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # serve() writes its options into os.environ (for worker processes): monkeypatch restores them
    for var in (
        "SMARTTRIP_API_TOKENS",
        "SMARTTRIP_ADMIN_TOKENS",
        "SMARTTRIP_PSEUDONYM_KEY",
        "SMARTTRIP_SERVE_PORT",
    ):
        monkeypatch.delenv(var, raising=False)
    app = typer.Typer()
    app.command()(serve)
    out = CliRunner().invoke(app, ["--port", "0"])
    assert out.exit_code == 2 and "SMARTTRIP_API_TOKENS: required" in out.output
