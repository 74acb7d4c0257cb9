"""A bounded memory of recently seen keys: message ids, nonces, Slack event ids.

Webhook senders retry (WeChat three times, Slack up to three), and an attacker can
replay a captured request; both are recognised by a key seen before.

``SeenKeys`` keeps them in the process; ``RedisSeenKeys`` in Redis, shared by
every instance of the bot, so that a retry reaching another instance is still
recognised (docs/deployment.md). ``seen_keys`` picks one from a channel's
``shared_memory_url``."""

import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional, Union

logger = logging.getLogger(__name__)


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


class RedisSeenKeys:
    """``SeenKeys`` in Redis: what one instance remembers, every instance knows.

    Keys are stored hashed (they can hold a customer's id) under ``prefix``, each
    with its own expiry (``ttl``); values as JSON. When Redis cannot be reached the
    memory fails open (nothing is seen, nothing is kept) and says so in the log:
    a retry may then be answered twice, but every customer is answered."""

    def __init__(self, client: Any, prefix: str, ttl: float = 600.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, key: Hashable) -> str:
        text = json.dumps(key, ensure_ascii=False, default=str)
        return self.prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _call(self, what: Callable[[], Any], fallback: Any) -> Any:
        import redis

        try:
            return what()
        except redis.RedisError as error:
            logger.warning("shared channel memory unavailable (%s: %s): carrying on without it",
                           type(error).__name__, error)
            return fallback

    def _seconds(self, ttl: Optional[float]) -> int:
        return max(1, math.ceil(self.ttl if ttl is None else ttl))

    def get(self, key: Hashable) -> Optional[object]:
        """The value stored with ``key`` if it was seen within ``ttl``, else None."""
        raw = self._call(lambda: self.client.get(self._key(key)), None)
        return None if raw is None else json.loads(raw)

    def __contains__(self, key: Hashable) -> bool:
        return bool(self._call(lambda: self.client.exists(self._key(key)), False))

    def put(self, key: Hashable, value: object, ttl: Optional[float] = None) -> None:
        """Remember ``key`` with ``value`` (for ``ttl`` seconds if given), replacing what was there."""
        data = json.dumps(value, ensure_ascii=False)
        self._call(lambda: self.client.set(self._key(key), data, ex=self._seconds(ttl)), None)

    def discard(self, key: Hashable) -> None:
        self._call(lambda: self.client.delete(self._key(key)), None)

    def add(self, key: Hashable, value: object = True) -> bool:
        """Remember ``key``; False if it was already there (then nothing changes).
        Atomic (SET NX): of two instances adding one key at once, one gets True."""
        data = json.dumps(value, ensure_ascii=False)
        return bool(self._call(lambda: self.client.set(self._key(key), data, nx=True, ex=self._seconds(None)), True))


Memory = Union[SeenKeys, RedisSeenKeys]


def seen_keys(shared_memory_url: Optional[str], prefix: str, ttl: float, max_keys: int = 100_000) -> Memory:
    """In Redis when ``shared_memory_url`` (``redis://[:password@]host:port/db``) is
    set, every key under ``prefix``; otherwise in this process."""
    if not shared_memory_url:
        return SeenKeys(ttl=ttl, max_keys=max_keys)
    if not shared_memory_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("shared_memory_url must be a Redis URL (redis://[:password@]host:port/db), "
                         f"not one starting {shared_memory_url.split(':', 1)[0]!r}")
    import redis

    client = redis.Redis.from_url(shared_memory_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return RedisSeenKeys(client, prefix, ttl)
