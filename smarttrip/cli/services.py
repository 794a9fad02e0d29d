"""``smarttrip services up``: run the embedded Kafka (Tansu) and Redis in the foreground.

Why a command: the demo, the workers and ad-hoc experiments need a broker and a
Redis on a laptop without Docker. This starts them on free 127.0.0.1 ports,
prints the ``export SMARTTRIP_...`` lines that point other processes at them,
and stops them on Ctrl-C or SIGTERM (nothing is persisted).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from stream.embedded import DEFAULT_TOPICS, EmbeddedServices, EmbeddedServicesError, embedded_services

app = typer.Typer(
    name="services",
    help="Embedded Kafka-compatible broker (Tansu) and redis-server for local runs.",
    no_args_is_help=True,
    add_completion=False,
)


def _parse_topics(partitions: int, extra: list[str]) -> dict[str, int]:
    topics = dict.fromkeys(DEFAULT_TOPICS, partitions)
    for spec in extra:
        name, sep, count = spec.partition("=")
        if not (name and sep and count.isdigit() and int(count) >= 1):
            raise typer.BadParameter(
                f"{spec!r} is not NAME=PARTITIONS (PARTITIONS >= 1)", param_hint="--topic"
            )
        topics[name] = int(count)
    return topics


def _print_ready(console: Console, svc: EmbeddedServices) -> None:
    console.print("[bold green]SmartTrip services are up[/] (Ctrl-C to stop)")
    if "SMARTTRIP_KAFKA_BOOTSTRAP" in svc.env():
        console.print(f"  Kafka  {svc.kafka_url}  (pid {svc.kafka_pid or 'external'})", highlight=False)
        topics = ", ".join(f"{name}:{n}" for name, n in sorted(svc.topics.items()))
        console.print(f"  topics {topics}", highlight=False)
    if "SMARTTRIP_REDIS_URL" in svc.env():
        console.print(f"  Redis  {svc.redis_url}  (pid {svc.redis_pid or 'external'})", highlight=False)
    console.print(f"  logs   {svc.log_dir}", highlight=False)
    console.print("\nIn another shell:")
    for key, value in svc.env().items():
        # plain echo: these lines must survive copy-paste without rich's wrapping
        typer.echo(f"export {key}={value}")


@app.command("up")
def up(
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions for each default topic (impressions, interactions, ...).")
    ] = 4,
    topic: Annotated[
        list[str] | None, typer.Option(help="Extra topic as NAME=PARTITIONS; repeatable.")
    ] = None,
    kafka: Annotated[bool, typer.Option("--kafka/--no-kafka", help="Provide Kafka.")] = True,
    redis: Annotated[bool, typer.Option("--redis/--no-redis", help="Provide Redis.")] = True,
    startup_timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for each service.")] = 20.0,
) -> None:
    """Start the services, print their URLs and env vars, run until Ctrl-C/SIGTERM, then stop them."""
    topics = _parse_topics(partitions, topic or [])
    console = Console(stderr=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with embedded_services(topics, kafka=kafka, redis=redis, startup_timeout=startup_timeout) as svc:
            _print_ready(console, svc)
            while not stop.wait(0.5):
                crashed = svc.crashed()
                if crashed:
                    for name in crashed:
                        tail = svc.broker_log_tail() if name == "tansu" else svc.redis_log_tail()
                        console.print(f"[bold red]{name} exited unexpectedly[/]; log ends with:\n{tail}")
                    raise typer.Exit(code=1)
            console.print("stopping services ...")
    except EmbeddedServicesError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("services stopped")
