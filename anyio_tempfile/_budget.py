"""SpoolBudget: one memory limit shared by many spooled files.

Each spooled file holds a :class:`Reservation` against its budget, equal to the
bytes its in-memory buffer holds (text counted encoded).  A write reserves what
it will add before it copies anything; when the budget cannot give it, the file
rolls over to disk instead.  Rollover, truncate and close give memory back,
whatever ended the file (an error, a cancellation, the garbage collector).
"""

from __future__ import annotations

import threading


class SpoolBudget:
    """At most ``max_bytes`` in memory across every spooled file that shares it.

    Pass it as ``SpooledTemporaryFile(..., budget=budget)``.  A write that would
    overdraw it rolls that file over to disk first (in a worker thread); the
    file's own ``max_size`` still applies, whichever is hit first.  ``in_use``
    and ``peak`` report the bytes held now and the most ever held.  One budget
    may be shared by the tasks of one event loop.
    """

    __slots__ = ("_in_use", "_lock", "_peak", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"max_bytes must be an int, not {type(max_bytes).__name__}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.max_bytes = max_bytes
        self._in_use = 0
        self._peak = 0
        # The loop is single-threaded, but a file may be garbage-collected, and
        # give its memory back, in another thread.
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        """Bytes the sharing files hold in memory right now."""
        return self._in_use

    @property
    def peak(self) -> int:
        """The most bytes held at once since the budget was made."""
        return self._peak

    def _take(self, byte_count: int) -> bool:
        with self._lock:
            if self._in_use + byte_count > self.max_bytes:
                return False
            self._in_use += byte_count
            self._peak = max(self._peak, self._in_use)
            return True

    def _adjust(self, byte_count: int) -> None:
        with self._lock:
            self._in_use += byte_count
            self._peak = max(self._peak, self._in_use)

    def __repr__(self) -> str:
        return (
            f"<SpoolBudget in_use={self._in_use} peak={self._peak} "
            f"max_bytes={self.max_bytes}>"
        )


class Reservation:
    """The bytes one spooled file's buffer holds against a budget (if any)."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: SpoolBudget | None) -> None:
        self._budget = budget
        self.held = 0

    @property
    def counted(self) -> bool:
        """Whether there is a budget to count against."""
        return self._budget is not None

    @property
    def overdrawn(self) -> bool:
        budget = self._budget
        return budget is not None and budget.in_use > budget.max_bytes

    def grow_to(self, size: int) -> bool:
        """Reserve up to ``size`` bytes in all; False if the budget can't."""
        extra = size - self.held
        if extra <= 0 or self._budget is None:
            return True
        if not self._budget._take(extra):  # pyright: ignore[reportPrivateUsage]
            return False
        self.held = size
        return True

    def settle(self, size: int) -> None:
        """Hold exactly ``size`` bytes: what the buffer really holds now."""
        if self._budget is not None and size != self.held:
            self._budget._adjust(size - self.held)  # pyright: ignore[reportPrivateUsage]
            self.held = size

    def release(self) -> None:
        """Give everything back (rollover, close)."""
        self.settle(0)
