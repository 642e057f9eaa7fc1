"""Short-lived caches for what every request reads: the user behind a token, the ruleset in
force on a date, the latest registry versions.

Changes made by this process clear the cache at once. Changes made by another server or
worker on the same database are seen within ``ttl`` seconds: a revoked token or a new
registry version takes effect everywhere within that time, and the approval check
re-reads the versions from the database, so a stale cache can never approve a stale
decision.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """At most ``size`` entries, each kept ``ttl`` seconds; thread-safe."""

    def __init__(self, ttl: float, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``load()`` stored for ``ttl`` seconds."""
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (now + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
