"""A per-user cap on the examples that reach the learners, per fixed window of event time.

Why: a segment's model is an average over its traffic; one pseudonymous user
sending thousands of slates (a scraper, a fan, an attacker steering a
ranking) would otherwise dominate it. The cap admits at most ``max_examples``
examples of one ``user_id`` per window ``[k·window_s, (k+1)·window_s)`` of the
example's event time (the impression's ``ts``); the rest are dropped and
counted. Fixed windows make the bound exact and checkable: in any such window
a user contributes at most ``max_examples``; in any interval of length
``window_s`` at most twice that.

Every example record counts, corrections included (a late click re-emits the
examples it changed), so the bound holds for what the learners read.

State is a count per (input partition, window, user) — a user's count in a
window is the sum over the partitions — and expires by whole windows of one
partition at a time, in one of two ways. Self-clocked (the default, e.g. the
simulator, one partition): when an example of a later window than any the
partition has seen arrives, its windows before the previous one are
forgotten; the previous one is kept for stragglers. Watermark-driven (the
join worker, ``self_clocked=False``): the worker calls :meth:`expire` with a
partition's horizon, below which that partition can emit no example any more
(its watermark less the attribution window and the allowed lateness), like
the rest of its state. So the state is bounded per partition however far
apart the partitions' event times drift (a backlog drains partition by
partition); the price: a partition more than window + lateness of event time
ahead of another has forgotten its share of a window the other still emits,
so under such drift a user can get up to ``max_examples`` more per window
from each partition. Live, partitions are seconds apart and the bound is
exact. An example of a window its partition has forgotten (a partition taken
over from another worker, behind its horizon) starts a fresh count there,
itself forgotten at the next expiry. Counts live in the worker's memory only:
a partition revoked takes its share with it (:meth:`retain`), and its new
owner starts it afresh.

Scope: one cap per join worker. Sessions (not users) are the partition key,
so with ``W`` join workers a user whose sessions hash to several partitions
gets up to ``W × max_examples`` per window.

>>> cap = UserCap(max_examples=2, window_s=60.0)
>>> [cap.admit("u1", ts) for ts in (0.0, 1.0, 2.0, 61.0)], cap.admit("u2", 2.0)
([True, True, False, True], True)
>>> cap.admit("u1", 3.0), len(cap)  # late for window 0, which is full; u1 twice, u2
(False, 3)
>>> cap.admit("u3", 150.0), len(cap)  # window 2: window 0 is forgotten
(True, 2)
>>> cap.admit_many("u3", 151.0, 5, partition=1)  # one more for u3 in window 2, from another partition
1
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

__all__ = ["UserCap"]


class UserCap:
    """Admit at most ``max_examples`` examples per user per window of ``window_s`` seconds.

    Parameters
    ----------
    max_examples
        Examples per user per window; 0 switches the cap off (every example admitted).
    window_s
        Window length in seconds of event time.
    on_capped
        Called once per (user, window) when the user first hits the cap.
    self_clocked
        Forget a partition's old windows as its later ones arrive (True) or only through
        :meth:`expire` (False).
    """

    def __init__(
        self,
        *,
        max_examples: int = 2000,
        window_s: float = 3600.0,
        on_capped: Callable[[str], None] | None = None,
        self_clocked: bool = True,
    ) -> None:
        if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
            raise ValueError(f"UserCap.max_examples: must be an integer >= 0, got {max_examples!r}")
        if not (isinstance(window_s, int | float) and math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"UserCap.window_s: must be a finite number > 0, got {window_s!r}")
        self.max_examples = max_examples
        self.window_s = float(window_s)
        self.on_capped = on_capped
        self.self_clocked = self_clocked
        self._counts: dict[int, dict[int, dict[str, int]]] = {}  # partition -> window -> user -> admitted
        self._latest: dict[int, int] = {}  # partition -> latest window seen (self-clocked)
        self._size = 0

    def __len__(self) -> int:
        """(Partition, window, user) counts currently remembered."""
        return self._size

    def admit(self, user_id: str, ts: float, partition: int = 0) -> bool:
        """Whether one more example of ``user_id`` at event time ``ts`` (from input ``partition``)
        may reach the learners."""
        return self.admit_many(user_id, ts, 1, partition) == 1

    def admit_many(self, user_id: str, ts: float, n: int, partition: int = 0) -> int:
        """How many of ``n`` examples of ``user_id`` at ``ts`` are admitted: ``n`` calls of
        :meth:`admit` admit the first that many (same state and ``on_capped`` calls after)."""
        if self.max_examples == 0 or n <= 0:
            return max(n, 0)
        window = int(ts // self.window_s)
        if self.self_clocked and window > self._latest.get(partition, -(2**62)):
            self._latest[partition] = window
            self._forget(partition, window - 1)
        used = 0
        for counts in self._counts.values():  # a handful of partitions per worker
            users = counts.get(window)
            if users is not None:
                used += users.get(user_id, 0)
        k = min(n, self.max_examples - used)
        if k <= 0:
            return 0
        mine = self._counts.get(partition)
        if mine is None:
            mine = self._counts[partition] = {}
        users = mine.get(window)
        if users is None:
            users = mine[window] = {}
        own = users.get(user_id, 0)
        if not own:
            self._size += 1
        users[user_id] = own + k
        if used + k == self.max_examples and self.on_capped is not None:
            self.on_capped(user_id)
        return k

    def expire(self, partition: int, horizon: float) -> int:
        """Forget ``partition``'s windows that end at or before event time ``horizon``; how many counts."""
        if not math.isfinite(horizon):
            return 0
        return self._forget(partition, math.floor(horizon / self.window_s))

    def retain(self, partitions: Collection[int]) -> int:
        """Forget the counts of every partition not in ``partitions`` (revoked); how many."""
        dropped = 0
        for p in [p for p in self._counts if p not in partitions]:
            dropped += sum(len(users) for users in self._counts.pop(p).values())
            self._latest.pop(p, None)
        self._size -= dropped
        return dropped

    def _forget(self, partition: int, before: int) -> int:
        mine = self._counts.get(partition)
        if not mine:
            return 0
        dropped = 0
        for w in [w for w in mine if w < before]:  # a handful of windows: the scan is cheap
            dropped += len(mine.pop(w))
        self._size -= dropped
        return dropped
