"""Login rate limit: a sliding window of failed attempts per client address and per account name.

Both keys count, so one address cannot try many names and many addresses cannot try one name quickly.
A success clears the counters of its keys.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginThrottle:
    def __init__(self, attempts: int, window_s: float, clock=time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for all ``keys`` (0: allowed now)."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window_s - (now - failures[0])
                for key in keys
                if len(failures := self._recent(key, now)) >= self.attempts
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
