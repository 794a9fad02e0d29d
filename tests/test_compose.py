"""docker-compose.yml and the Prometheus config agree with the code (no Docker engine needed).

There is no Docker engine (or compose plugin) on the test machines, so this is
the lint: the YAML parses, references resolve, every SMARTTRIP_* variable is a
setting some process reads, commands are real CLI commands, and scrape targets
point at ports the workers listen on.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml
from typer.testing import CliRunner

from scoring.settings import ServeSettings
from smarttrip.cli.main import app
from stream.settings import StreamSettings

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {f"SMARTTRIP_{f.name.upper()}" for cls in (StreamSettings, ServeSettings) for f in fields(cls)}


def _compose() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_reference_each_other_and_known_settings() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"kafka", "redis", "join-worker", "learner-worker", "scoring", "prometheus"} <= set(services)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for var in svc.get("environment", {}) or {}:
            if var.startswith("SMARTTRIP_"):
                assert var in KNOWN, f"{name}: {var} is not a setting of any SmartTrip process"


def test_commands_are_real_cli_commands() -> None:
    runner = CliRunner()
    for name, svc in _compose()["services"].items():  # type: ignore[attr-defined]
        if svc.get("build") == ".":
            result = runner.invoke(app, [*svc["command"][:1], "--help"])
            assert result.exit_code == 0, f"{name}: {svc['command']} -> {result.output}"


def test_dockerfile_copies_every_package() -> None:
    copied = set(re.findall(r"^COPY (\w+) ", (ROOT / "Dockerfile").read_text(), flags=re.M))
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"}
    assert packages <= copied


def test_prometheus_scrapes_the_worker_metrics_port() -> None:
    prom = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    services = _compose()["services"]
    port = int(services["join-worker"]["environment"]["SMARTTRIP_METRICS_PORT"])  # type: ignore[index]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for job, service in (("stream-join", "join-worker"), ("stream-learner", "learner-worker")):
        sd = jobs[job]["dns_sd_configs"][0]
        assert sd["names"] == [service] and sd["port"] == port
    assert jobs["scoring"]["static_configs"][0]["targets"] == ["scoring:8080"]
