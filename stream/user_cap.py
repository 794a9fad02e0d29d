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

State is one count per (user, window) and expires by whole windows, in one
of two ways. Self-clocked (the default, e.g. the simulator): when an example
of a later window than any seen arrives, windows before the previous one are
forgotten; the previous one is kept for stragglers. Watermark-driven (the
join worker, ``self_clocked=False``): the worker calls :meth:`expire` with a
horizon below which no example can come any more (its slowest partition's
watermark less the attribution window and the allowed lateness), so however
far apart its partitions' event times drift — a backlog drains partition by
partition — a window is forgotten only once every partition is done with it,
and the state is the users of the windows between the slowest partition and
the fastest. An example of a window already forgotten (a partition taken over
from another worker, behind the horizon) starts a fresh count, itself
forgotten at the next expiry.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
        Forget old windows as later ones arrive (True) or only through :meth:`expire` (False).
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
        self._windows: dict[int, dict[str, int]] = {}  # window -> user -> examples admitted
        self._size = 0
        self._latest = -(2**62)

    def __len__(self) -> int:
        """(User, window) counts currently remembered."""
        return self._size

    def admit(self, user_id: str, ts: float) -> bool:
        """Whether one more example of ``user_id`` at event time ``ts`` may reach the learners."""
        return self.admit_many(user_id, ts, 1) == 1

    def admit_many(self, user_id: str, ts: float, n: int) -> int:
        """How many of ``n`` examples of ``user_id`` at ``ts`` are admitted: ``n`` calls of
        :meth:`admit` admit the first that many (same state and ``on_capped`` calls after)."""
        if self.max_examples == 0 or n <= 0:
            return max(n, 0)
        window = int(ts // self.window_s)
        if window > self._latest:
            self._latest = window
            if self.self_clocked:
                self._forget_before(window - 1)
        users = self._windows.get(window)
        if users is None:
            users = self._windows[window] = {}
        used = users.get(user_id, 0)
        k = min(n, self.max_examples - used)
        if k <= 0:
            return 0
        if not used:
            self._size += 1
        users[user_id] = used + k
        if used + k == self.max_examples and self.on_capped is not None:
            self.on_capped(user_id)
        return k

    def expire(self, horizon: float) -> int:
        """Forget the windows that end at or before event time ``horizon``; how many counts that drops."""
        return self._forget_before(math.floor(horizon / self.window_s)) if math.isfinite(horizon) else 0

    def _forget_before(self, window: int) -> int:
        old = [w for w in self._windows if w < window]  # a handful of windows: the scan is cheap
        dropped = 0
        for w in old:
            dropped += len(self._windows.pop(w))
        self._size -= dropped
        return dropped
