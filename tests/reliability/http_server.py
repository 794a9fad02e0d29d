"""The scoring worker in a background thread (its own event loop), for synchronous HTTP clients.

Schemathesis calls the API with ``requests`` (blocking); running the app on the
test's own event loop would deadlock, so it gets a thread and a loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiohttp import web

from scoring.server import create_app
from scoring.settings import ServeSettings
from tests.scoring.serving import CATALOG, TODAY


@contextlib.contextmanager
def serving_in_thread(settings: ServeSettings, timeout: float = 30.0) -> Iterator[str]:
    """Start the app on a free loopback port in a thread; yields its base URL; stops it on exit."""
    ready = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["stop"], state["loop"] = stop, asyncio.get_running_loop()
        app = create_app(settings, catalog=CATALOG, today=lambda: TODAY)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            state["port"] = runner.addresses[0][1]
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test below
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="scoring-worker", daemon=True)
    thread.start()
    if not ready.wait(timeout) or "error" in state:
        raise RuntimeError(f"scoring worker did not start: {state.get('error')!r}")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop, stop = state["loop"], state["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
