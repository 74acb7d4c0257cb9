"""A Redis lock store whose tickets are issued and returned atomically.

Rasa's ``RedisLockStore`` reads a conversation's lock, changes it in Python and
writes it back. Two Rasa instances that receive messages of one conversation at
the same moment can both read the same lock, both take the same ticket and
process the two messages at once: one message's events are then lost from the
tracker store (tests/integration/test_scale_out.py saw it). This store makes each
change a Redis transaction (WATCH / MULTI / EXEC, retried on conflict), keeping
Rasa's ticket lock otherwise as it is.

endpoints.yml::

    lock_store:
      type: rasa_gpt_components.serving.AtomicRedisLockStore
      url: 127.0.0.1          # and the other keys of Rasa's Redis lock store
      port: 6379
      db: 1
"""

import json
from typing import Any, Callable, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Any]]


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis ticket lock, changed only inside Redis transactions."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        """Rasa creates a custom lock store from its endpoints.yml entry; the keys
        are those of Rasa's Redis lock store (``url`` is the host)."""
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)

    def _change(self, conversation_id: Text, change: Change) -> Any:
        """Apply ``change`` (lock or None -> new lock or None to delete, result)
        atomically: retried when another process changed the lock meanwhile."""
        import redis

        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new_lock, result = change(lock)
                    pipe.multi()
                    if new_lock is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, new_lock.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """A ticket no other process can also get."""

        def issue(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._change(conversation_id, issue)
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: Text) -> None:
        """Drop expired tickets."""

        def expire(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._change(conversation_id, expire)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Return the ticket; the lock stays for whoever waits."""
        self._change(conversation_id, self._without(ticket_number, delete_when_idle=False))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Return the ticket and delete the lock if no one else holds one, in one step."""
        self._change(conversation_id, self._without(ticket_number, delete_when_idle=True))

    @staticmethod
    def _without(ticket_number: int, delete_when_idle: bool) -> Change:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            if delete_when_idle and not lock.is_someone_waiting():
                return None, None
            return lock, None

        return change
