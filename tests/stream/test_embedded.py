"""Integration tests for stream.embedded: real Tansu and redis-server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError

from stream._kafka_admin import topic_ids
from stream._managed_process import free_loopback_port, stop_popen
from stream.embedded import (
    DEFAULT_TOPICS,
    ENV_KAFKA_BOOTSTRAP,
    ENV_REDIS_URL,
    EmbeddedServices,
    EmbeddedServicesError,
    embedded_services,
    ensure_topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

OWN_TOPICS = {"alpha": 3, "beta": 1}


def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-embedded")
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def own() -> Iterator[EmbeddedServices]:
    """Binaries of our own (even if SMARTTRIP_* name external services), so pausing
    and restarting never disturb the session fixture."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_KAFKA_BOOTSTRAP, raising=False)
        mp.delenv(ENV_REDIS_URL, raising=False)
        with embedded_services(OWN_TOPICS) as svc:
            yield svc


def test_services_start_on_loopback(services: EmbeddedServices) -> None:
    assert services.bootstrap_servers.startswith("127.0.0.1:")
    assert services.kafka_url == f"kafka://{services.bootstrap_servers}"
    assert services.redis_url.startswith("redis://127.0.0.1:")
    assert services.redis_url.endswith("/0")
    assert services.topics == DEFAULT_TOPICS
    assert services.env() == {
        ENV_KAFKA_BOOTSTRAP: services.bootstrap_servers,
        ENV_REDIS_URL: services.redis_url,
    }
    for pid in (services.kafka_pid, services.redis_pid):
        if pid is not None:  # None when SMARTTRIP_* point at external services
            assert _pid_exists(pid)


def test_default_topics_have_requested_partitions(services: EmbeddedServices) -> None:
    assert _partitions(services.bootstrap_servers, sorted(DEFAULT_TOPICS)) == DEFAULT_TOPICS


def test_record_round_trips_through_broker(services: EmbeddedServices) -> None:
    key, value = b"session-1", uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=services.bootstrap_servers)
    try:
        meta = producer.send("examples", key=key, value=value).get(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=services.bootstrap_servers, enable_auto_commit=False)
    try:
        tp = TopicPartition("examples", meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        records = consumer.poll(timeout_ms=10_000, max_records=1).get(tp, [])
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in records] == [(key, value)]


def test_redis_set_get(services: EmbeddedServices) -> None:
    client = redis.Redis.from_url(services.redis_url)
    try:
        client.set("smarttrip:test", b"42")
        assert client.get("smarttrip:test") == b"42"
    finally:
        client.close()


def test_existing_topic_with_other_partition_count_is_an_error(services: EmbeddedServices) -> None:
    with pytest.raises(EmbeddedServicesError, match="'impressions' has 4 partitions, wanted 2"):
        ensure_topics(services.bootstrap_servers, {"impressions": 2})


def test_bad_partition_count_is_rejected(services: EmbeddedServices) -> None:
    with pytest.raises(ValueError, match=r"topics\['x'\]: partition count must be an int >= 1, got 0"):
        ensure_topics(services.bootstrap_servers, {"x": 0})


def test_custom_topics_are_created_with_their_partition_counts(own: EmbeddedServices) -> None:
    assert own.topics == OWN_TOPICS
    assert _partitions(own.bootstrap_servers, sorted(OWN_TOPICS)) == OWN_TOPICS
    # asking again is idempotent
    assert ensure_topics(own.bootstrap_servers, OWN_TOPICS) == OWN_TOPICS


def test_pause_stalls_the_broker_and_resume_recovers(own: EmbeddedServices) -> None:
    producer = KafkaProducer(bootstrap_servers=own.bootstrap_servers, linger_ms=0)
    try:
        producer.send("beta", b"before").get(timeout=10)  # connected, metadata cached
        with own.broker_paused():
            started = time.monotonic()
            with pytest.raises(KafkaTimeoutError):
                producer.send("beta", b"while-paused").get(timeout=1.0)
            assert time.monotonic() - started < 5
        assert own.kafka_pid is not None and _pid_exists(own.kafka_pid)
        meta = producer.send("beta", b"after").get(timeout=10)
        assert meta.topic == "beta"
    finally:
        producer.close(timeout=5)


def test_redis_restarts_on_the_same_port(own: EmbeddedServices) -> None:
    url, old_pid = own.redis_url, own.redis_pid
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.set("k", b"v")
        own.stop_redis()
        assert own.redis_pid is None
        assert old_pid is not None and not _pid_exists(old_pid)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        own.start_redis()
        assert own.redis_url == url
        assert own.redis_pid not in (None, old_pid)
        assert client.ping()
        assert client.get("k") is None  # no persistence: a restart starts empty
    finally:
        client.close()


def test_processes_are_gone_after_the_block_even_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KAFKA_BOOTSTRAP, raising=False)
    monkeypatch.delenv(ENV_REDIS_URL, raising=False)
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), embedded_services({"gamma": 1}) as svc:
        assert svc.kafka_pid is not None and svc.redis_pid is not None
        pids = [svc.kafka_pid, svc.redis_pid]
        log_dir = svc.log_dir
        svc.pause_broker()  # a frozen broker must still be stopped
        raise RuntimeError("boom")
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not log_dir.exists()


def test_external_services_from_environment(
    services: EmbeddedServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KAFKA_BOOTSTRAP, f"kafka://{services.bootstrap_servers}")
    monkeypatch.setenv(ENV_REDIS_URL, services.redis_url)
    with embedded_services({"external-topic": 2}) as ext:
        assert ext.kafka_pid is None and ext.redis_pid is None
        assert ext.bootstrap_servers == services.bootstrap_servers
        assert ext.redis_url == services.redis_url
        assert ext.topics == {"external-topic": 2}
        with pytest.raises(EmbeddedServicesError, match="external"):
            ext.pause_broker()
    # the external services are untouched
    assert _partitions(services.bootstrap_servers, ["external-topic"]) == {"external-topic": 2}


def test_startup_failure_reports_the_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'fake-broker: cannot start'\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    monkeypatch.delenv(ENV_KAFKA_BOOTSTRAP, raising=False)
    with (
        pytest.raises(EmbeddedServicesError, match="fake-broker: cannot start") as info,
        embedded_services(redis=False, startup_timeout=5),
    ):
        pass  # pragma: no cover
    assert "exited" in str(info.value)


def test_crashed_reports_children_that_died_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_REDIS_URL, raising=False)
    with embedded_services(kafka=False) as svc:
        assert svc.crashed() == []
        svc.stop_redis()
        assert svc.crashed() == []  # a deliberate stop is not a crash
        svc.start_redis()
        assert svc.redis_pid is not None
        os.kill(svc.redis_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not svc.crashed() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert svc.crashed() == ["redis"]
        assert "Ready to accept connections" in svc.redis_log_tail()


def test_free_ports_lie_outside_the_ephemeral_range() -> None:
    # A client's source port comes from the ephemeral range; a server port from it could be handed to a
    # client polling it before the server listens, which then connects to itself (seen in CI: a readiness
    # poll read its own "GET /readyz" back as the reply).
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = {free_loopback_port() for _ in range(50)}
    assert all(not low <= p <= high for p in ports), sorted(ports)
    assert len(ports) > 40  # spread, so concurrent tests rarely pick the same one


# Runs in a child: kafka-python leaves the socket of a connection the broker broke unclosed, and its
# ResourceWarning, raised whenever the garbage collector gets to it, would fail whichever test runs then.
_KEPT_CLIENT = """
import json, sys, time
from stream._kafka_admin import TopicIds
ids, names = TopicIds(timeout=5.0), sys.argv[2:]
for line in sys.stdin:  # one question per line, retried while the broker comes back
    for _ in range(40):
        try:
            print(json.dumps(ids(sys.argv[1], names)), flush=True)
            break
        except Exception:
            time.sleep(0.25)
ids.close()
"""


def test_kept_topic_id_client_answers_like_a_fresh_one_and_across_a_broker_restart(
    own: EmbeddedServices,
) -> None:
    names = sorted(OWN_TOPICS)
    child = subprocess.Popen(
        [sys.executable, "-c", _KEPT_CLIENT, own.bootstrap_servers, *names],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None

    def ask() -> dict[str, str | None]:
        child.stdin.write("?\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        return dict(json.loads(child.stdout.readline()))  # type: ignore[union-attr]

    try:
        before = ask()
        assert before == topic_ids(own.bootstrap_servers, names) and all(before.values())
        assert ask() == before  # the same client, asked again
        own.restart_broker(OWN_TOPICS)
        after = ask()  # the kept connection broke: a failed question, then a new client
        assert after == topic_ids(own.bootstrap_servers, names)
        assert all(after[t] != before[t] for t in names)  # recreated topics: new logs
    finally:
        child.stdin.close()  # the child's loop ends
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(10)
        stop_popen(child)  # type: ignore[arg-type]
        child.stdout.close()
