"""docker-compose.yml and the Prometheus config agree with the code (no Docker engine needed).

There is no Docker engine on the test machines. The compose file is linted by
Debian's ``docker-compose config`` (schema, interpolation, references; it
needs no engine; ``make test`` installs it when missing), and checked against
the code here: every SMARTTRIP_* variable is a setting some process reads,
commands are real CLI commands, scrape targets point at ports the workers
listen on, every long-running service has a healthcheck and a restart policy,
and worker counts come from the environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from scoring.settings import ServeSettings
from smarttrip.cli.main import app
from stream.settings import StreamSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"SMARTTRIP_{f.name.upper()}" for cls in (StreamSettings, ServeSettings) for f in fields(cls)}
_SIMULATE = get_command(app).commands["simulate"]  # type: ignore[attr-defined]
SIM_VARS = {p.envvar for p in _SIMULATE.params if isinstance(getattr(p, "envvar", None), str)}
KNOWN = SETTINGS | SIM_VARS
SECRETS = {
    "SMARTTRIP_API_TOKENS": "api-token-0123456789abcdef",
    "SMARTTRIP_ADMIN_TOKENS": "admin-token-0123456789abcdef",
    "SMARTTRIP_PSEUDONYM_KEY": "pseudonym-key-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "not-a-real-password",
}


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


def test_prometheus_scrapes_every_replica_on_its_metrics_port() -> None:
    prom = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    services = _compose()["services"]
    port = int(services["join-worker"]["environment"]["SMARTTRIP_METRICS_PORT"])  # type: ignore[index]
    serve_port = int(services["scoring"]["environment"]["SMARTTRIP_SERVE_PORT"])  # type: ignore[index]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    for job, names, want in (
        ("stream-join", ["join-worker"], port),
        ("stream-learner", ["learner-worker", "learner-global"], port),
        ("promotion-gate", ["gate"], port),
        ("scoring", ["scoring"], serve_port),
    ):
        sd = jobs[job]["dns_sd_configs"][0]  # DNS discovery: one target per replica
        assert sd["names"] == names and sd["port"] == want
        assert all(name in services for name in names)


def _docker_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose is not installed: `make test` installs Debian's docker-compose; it could not here"
        )
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.endswith("_WORKERS")}
    return subprocess.run(  # fixed arguments
        [binary, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *args],
        env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def _resolved(**env: str) -> dict[str, Any]:
    done = _docker_compose("--profile", "sim", "config", env={**SECRETS, **env})
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load(done.stdout)
    assert isinstance(data, dict)
    return data


def test_compose_file_passes_the_linter() -> None:
    done = _docker_compose("--profile", "sim", "config", "--quiet", env=SECRETS)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_secrets_come_from_the_environment_and_are_required(missing: str) -> None:
    done = _docker_compose("config", "--quiet", env={k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0
    assert missing in done.stderr


def test_worker_counts_come_from_the_environment() -> None:
    default = _resolved()["services"]
    assert {s: default[s]["deploy"]["replicas"] for s in ("join-worker", "learner-worker", "scoring")} == {
        "join-worker": 2, "learner-worker": 1, "scoring": 2,
    }  # fmt: skip
    scaled = _resolved(JOIN_WORKERS="4", LEARNER_WORKERS="2", SCORING_WORKERS="3")["services"]
    assert [scaled[s]["deploy"]["replicas"] for s in ("join-worker", "learner-worker", "scoring")] == [
        4,
        2,
        3,
    ]


def test_long_running_services_have_healthchecks_and_restart_policies() -> None:
    services = _resolved()["services"]
    assert services["kafka-topics"]["restart"] == "no"  # the one-shot topic-init job
    for name, svc in services.items():
        if name == "kafka-topics":
            continue
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), name
        if name != "simulator":
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_topic_init_job_creates_every_topic_the_workers_use() -> None:
    script = _resolved()["services"]["kafka-topics"]["command"][0]
    loop = re.search(r"for t in ([\w ]+); do", script)
    assert loop is not None
    created = set(loop.group(1).split()) | set(re.findall(r"--topic (\w+) ", script.split("done", 1)[1]))
    assert created == set(StreamSettings().topics())


def test_prometheus_and_grafana_mount_the_repository_files() -> None:
    services = _resolved()["services"]

    def mounts(name: str) -> dict[str, str]:
        out = {}
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("/"):  # a bind mount (named volumes have no path)
                assert Path(source).exists(), f"{name}: {source} does not exist"
                out[target] = str(Path(source).relative_to(ROOT))
        return out

    prom = mounts("prometheus")
    config = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert prom[rule_file] == "monitoring/prometheus/alerts.yml"
    assert prom["/etc/prometheus/prometheus.yml"] == "monitoring/prometheus/prometheus.yml"
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == "monitoring/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/dashboards/smarttrip.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert grafana[dashboards_dir] == "monitoring/grafana/dashboards"


def test_simulator_needs_a_token_from_the_environment() -> None:
    runner = CliRunner()
    env = {k: "" for k in SECRETS}
    result = runner.invoke(app, ["simulate", "--url", "http://127.0.0.1:9", "--wait", "0"], env=env)
    assert result.exit_code == 2 and "SMARTTRIP_API_TOKENS" in result.output
    env["SMARTTRIP_API_TOKENS"] = SECRETS["SMARTTRIP_API_TOKENS"]
    result = runner.invoke(app, ["simulate", "--url", "http://127.0.0.1:9", "--wait", "0"], env=env)
    assert result.exit_code == 1 and "readyz" in result.output
