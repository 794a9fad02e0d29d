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

The join worker has the same problem with its inputs (impressions and
interactions): :class:`LogEpochs` follows several topics at once and says
how fresh its last confirmation is, so the join can refuse to process or
commit anything until the log it reads is confirmed (:mod:`stream.join_epoch`).

``SMARTTRIP_LOG_EPOCH=auto`` (the default) turns this on; any other value is
used as a fixed epoch (brokers without topic ids answer the all-zero id, and
get the fixed epoch "0").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from stream._kafka_admin import TopicIds

__all__ = ["AUTO", "LogEpochWatch", "LogEpochs"]

log = logging.getLogger(__name__)

AUTO = "auto"


class LogEpochWatch:
    """Asks the broker for the topic's id without blocking the event loop."""

    def __init__(
        self, bootstrap_servers: str, topic: str, *, lookup: Callable[[str, str], str | None] | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._lookup = lookup or TopicIds().topic_id  # one admin client, kept: asked every 2 s

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


class LogEpochs:
    """The log each of several topics is on, and how recently the broker confirmed it.

    A check asks the broker for every topic's id; :meth:`apply` compares the
    answer with the known epochs and returns the topics whose log changed.
    A confirmation counts for ``max_age_s``; a check that fails (broker down or
    restarting) withdraws it at once, so whoever relies on :meth:`fresh` asks
    again before trusting records fetched across the outage. Answers are
    applied in the order their checks started: an older answer arriving late
    never undoes a newer one.

    >>> ids = {"impressions": "a", "interactions": "b"}
    >>> clock = iter(range(100)).__next__
    >>> e = LogEpochs("127.0.0.1:9092", ["impressions", "interactions"],
    ...               lookup=lambda servers, topics: dict(ids), clock=clock, max_age_s=5)
    >>> e.start()
    {'impressions': 'a', 'interactions': 'b'}
    >>> e.fresh()
    True
    >>> ids["impressions"] = "c"  # the topic was created again: a new log
    >>> e.check_now()
    ['impressions']
    >>> e.known["impressions"], e.changes
    ('c', 1)
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        *,
        lookup: Callable[[str, Sequence[str]], Mapping[str, str | None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = 3.0,
    ) -> None:
        if not topics:
            raise ValueError("topics: at least one topic to follow")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s: must be > 0, got {max_age_s}")
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.max_age_s = max_age_s
        self._lookup = lookup or TopicIds()  # one admin client, kept: asked every second
        self._clock = clock
        self.known: dict[str, str] = {}
        self.changes = 0  # new logs seen since start-up, all topics
        self._confirmed_at = float("-inf")  # when the newest applied successful check started
        self._applied_started = float("-inf")

    def ask(self) -> dict[str, str] | None:
        """Every topic's epoch now, or None when the broker could not be asked (blocks; short timeout)."""
        try:
            found = self._lookup(self.bootstrap_servers, self.topics)
        except Exception as err:  # any failure to ask means "not confirmed; ask again"
            log.warning("log epochs of %s: broker not asked (%s)", self.topics, err)
            return None
        return {t: found.get(t) or "0" for t in self.topics}

    def fresh(self) -> bool:
        """True while the last check confirmed every topic's log less than ``max_age_s`` ago."""
        return self._clock() - self._confirmed_at < self.max_age_s

    def apply(self, found: Mapping[str, str] | None, started: float) -> list[str]:
        """Take the answer of a check started at ``started``; returns the topics on a new log."""
        if started < self._applied_started:
            return []  # a newer answer is already in
        self._applied_started = started
        if found is None:
            self._confirmed_at = float("-inf")
            return []
        changed = [t for t in self.topics if self.known.get(t, found[t]) != found[t]]
        for topic in changed:
            log.warning("%s: new log epoch %r (was %r)", topic, found[topic], self.known[topic])
        self.known.update({t: found[t] for t in self.topics})
        self.changes += len(changed)
        self._confirmed_at = started
        return changed

    def check_now(self) -> list[str]:
        """Ask and apply (blocks): the topics on a new log."""
        started = self._clock()
        return self.apply(self.ask(), started)

    async def check(self) -> list[str]:
        """:meth:`check_now` with the question asked off the event loop."""
        started = self._clock()
        found = await asyncio.get_running_loop().run_in_executor(None, self.ask)
        return self.apply(found, started)

    def start(self, *, attempts: int = 30, wait_s: float = 1.0) -> dict[str, str]:
        """The epochs at start-up; raises if the broker does not answer (guessing could skip a new log)."""
        for _ in range(attempts):
            if self.check_now() or self.known:
                return dict(self.known)
            time.sleep(wait_s)
        raise RuntimeError(f"log epochs of {self.topics}: no answer from {self.bootstrap_servers}")
