"""A bounded memory of recently seen keys: message ids, nonces, Slack event ids.

Webhook senders retry (WeChat three times, Slack up to three), and an attacker can
replay a captured request; both are recognised by a key seen before."""

import time
from collections import OrderedDict
from typing import Callable, Hashable, Optional


class SeenKeys:
    """Keys remembered for ``ttl`` seconds, at most ``max_keys`` of them (oldest dropped)."""

    def __init__(self, ttl: float = 600.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._clock = clock
        self._keys: "OrderedDict[Hashable, tuple]" = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._keys:
            key, (added, _) = next(iter(self._keys.items()))
            if now - added < self.ttl and len(self._keys) <= self.max_keys:
                break
            self._keys.popitem(last=False)

    def get(self, key: Hashable) -> Optional[object]:
        """The value stored with ``key`` if it was seen within ``ttl``, else None."""
        self._expire(self._clock())
        entry = self._keys.get(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: Hashable) -> bool:
        self._expire(self._clock())
        return key in self._keys

    def put(self, key: Hashable, value: object) -> None:
        """Remember ``key`` with ``value``, replacing what was there."""
        self._keys.pop(key, None)
        self.add(key, value)

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def add(self, key: Hashable, value: object = True) -> bool:
        """Remember ``key``; False if it was already there (then nothing changes)."""
        now = self._clock()
        self._expire(now)
        if key in self._keys:
            return False
        self._keys[key] = (now, value)
        self._expire(now)
        return True
