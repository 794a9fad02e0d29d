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
examples it changed), so the bound holds for what the learners read. State
expires: once an example of a later window is seen, the users of earlier
windows are forgotten, at a cost O(expired) (users are kept in order of
their window). The join worker's partitions close windows at their own event
times (each has its own watermark), so examples reach the cap slightly out
of window order; an example of a window already ended starts a fresh count
for its user, forgotten at the next window change.

Scope: one cap per join worker. Sessions (not users) are the partition key,
so with ``W`` join workers a user whose sessions hash to several partitions
gets up to ``W × max_examples`` per window.

>>> cap = UserCap(max_examples=2, window_s=60.0)
>>> [cap.admit("u1", ts) for ts in (0.0, 1.0, 2.0, 61.0)], cap.admit("u2", 2.0)
([True, True, False, True], True)
"""

from __future__ import annotations

import math
from collections import OrderedDict
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
    """

    def __init__(
        self,
        *,
        max_examples: int = 2000,
        window_s: float = 3600.0,
        on_capped: Callable[[str], None] | None = None,
    ) -> None:
        if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
            raise ValueError(f"UserCap.max_examples: must be an integer >= 0, got {max_examples!r}")
        if not (isinstance(window_s, int | float) and math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"UserCap.window_s: must be a finite number > 0, got {window_s!r}")
        self.max_examples = max_examples
        self.window_s = float(window_s)
        self.on_capped = on_capped
        self._users: OrderedDict[str, tuple[int, int]] = OrderedDict()  # user -> (window, count)
        self._window = -(2**62)

    def __len__(self) -> int:
        """Users currently remembered."""
        return len(self._users)

    def admit(self, user_id: str, ts: float) -> bool:
        """Whether one more example of ``user_id`` at event time ``ts`` may reach the learners."""
        return self.admit_many(user_id, ts, 1) == 1

    def admit_many(self, user_id: str, ts: float, n: int) -> int:
        """How many of ``n`` examples of ``user_id`` at ``ts`` are admitted: ``n`` calls of
        :meth:`admit` admit the first that many (same state and ``on_capped`` calls after)."""
        if self.max_examples == 0 or n <= 0:
            return max(n, 0)
        window = int(ts // self.window_s)
        if window > self._window:
            self._window = window
            self._expire()
        entry = self._users.get(user_id)
        if entry is None or window > entry[0]:
            used = 0
            self._users[user_id] = (window, 0)
            self._users.move_to_end(user_id)  # keeps windows non-decreasing along the dict (expiry)
        else:
            # A late example of an older window is charged to the user's latest window
            # (older counts are not kept): conservative, and the bound still holds.
            window, used = entry
        k = max(0, min(n, self.max_examples - used))
        if k:
            self._users[user_id] = (window, used + k)
            if used + k == self.max_examples and self.on_capped is not None:
                self.on_capped(user_id)
        return k

    def _expire(self) -> None:
        # Users are ordered by last admission, so their windows are non-decreasing along the dict.
        while self._users:
            user_id, (window, _) = next(iter(self._users.items()))
            if window >= self._window:
                break
            del self._users[user_id]
