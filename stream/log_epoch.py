"""Tell one log of the examples topic from the next, so stored offsets are not misread.

Models store, with each version, the last offset they learned per partition,
and a restarted learner skips every record at or below it. If the broker loses
its log (the embedded Tansu broker keeps it in memory; a production cluster can
lose a topic or have it recreated), the new log starts again at offset 0 and
every new record would look already learned. The topic's id, which Kafka gives
a topic when it is created, names the log: the learner stores it as the
models' ``log_epoch`` and checks it at every partition assignment, every few
seconds, and whenever a partition's offsets go backwards without a seek of its
own. On a change the models keep their weights, forget their offsets and read
the new log from its start.

``SMARTTRIP_LOG_EPOCH=auto`` (the default) turns this on; any other value is
used as a fixed epoch (brokers without topic ids answer the all-zero id, and
get the fixed epoch "0").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from stream._kafka_admin import topic_id

__all__ = ["AUTO", "LogEpochWatch"]

log = logging.getLogger(__name__)

AUTO = "auto"


class LogEpochWatch:
    """Asks the broker for the topic's id without blocking the event loop."""

    def __init__(
        self, bootstrap_servers: str, topic: str, *, lookup: Callable[[str, str], str | None] = topic_id
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._lookup = lookup

    def now(self) -> str | None:
        """The log's epoch now, or None when the broker could not be asked (blocks; short timeout)."""
        try:
            found = self._lookup(self.bootstrap_servers, self.topic)
        except Exception as err:  # any failure to ask means "ask again later"
            log.warning("log epoch of %s: broker not asked (%s)", self.topic, err)
            return None
        return found or "0"

    async def current(self) -> str | None:
        """:meth:`now`, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.now)

    def first(self, *, attempts: int = 30, wait_s: float = 1.0) -> str:
        """The epoch at start-up; raises if the broker does not answer (guessing could re-learn a log)."""
        for _ in range(attempts):
            epoch = self.now()
            if epoch is not None:
                return epoch
            time.sleep(wait_s)
        raise RuntimeError(f"log epoch of {self.topic}: no answer from {self.bootstrap_servers}")
