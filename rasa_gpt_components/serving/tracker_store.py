"""A SQL tracker store that rides out a database outage without losing events.

Rasa's ``SQLTrackerStore`` raises while its database is down: the message fails,
the customer gets no answer and the turn's events are never stored. This store
keeps answering: conversations it served recently are read from memory, new
ones start fresh, and every tracker it cannot save is kept (newest copy per
conversation) and written, in order, as soon as the database answers again
(on the next save, and every ``retry_interval`` seconds in the background).

endpoints.yml::

    tracker_store:
      type: rasa_gpt_components.serving.ResilientSQLTrackerStore
      dialect: postgresql        # and the other keys of Rasa's SQL tracker store
      url: 127.0.0.1
      db: rasa

During an outage each Rasa instance keeps its own unsaved trackers, so several
instances stay consistent only if a conversation sticks to one instance until
the database is back (docs/deployment.md).
"""

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Optional, Set, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)


class ResilientSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store, with a memory of recent trackers and of unsaved ones."""

    def __init__(self, *args: Any, retry_interval: float = 2.0, max_cached: int = 10_000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_interval = float(retry_interval)
        self.max_cached = int(max_cached)
        self._recent: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()  # last tracker read or saved
        self._unsaved: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()  # newest tracker not yet stored
        self._started_blind: Set[str] = set()  # conversations begun while their history could not be read
        self._retrying: Optional[asyncio.Task] = None

    def _remember(self, tracker: DialogueStateTracker) -> None:
        # the tracker Rasa works on: it is the newest state when the database fails
        self._recent[tracker.sender_id] = tracker
        self._recent.move_to_end(tracker.sender_id)
        while len(self._recent) > self.max_cached:
            self._recent.popitem(last=False)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The conversation's tracker: unsaved, else from the database, else (database down) from memory."""
        if sender_id in self._unsaved:
            return self._unsaved[sender_id].copy()
        try:
            tracker = await super().retrieve(sender_id)
        except SQLAlchemyError as error:
            cached = self._recent.get(sender_id)
            logger.warning("tracker store: database unavailable (%s); conversation %s continues from %s",
                           type(error).__name__, sender_id[:6] + "…", "memory" if cached else "a new tracker")
            if cached is None:
                self._started_blind.add(sender_id)
            return cached.copy() if cached else None
        if tracker is not None:
            self._remember(tracker)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker, after any older unsaved ones; keep it for later if the database is down."""
        await self.flush()
        if self._unsaved:  # still down: keep the order of what waits
            self._keep(tracker)
            return
        try:
            await self._store(tracker)
        except SQLAlchemyError as error:
            logger.warning("tracker store: database unavailable (%s); events kept until it is back",
                           type(error).__name__)
            self._keep(tracker)

    def _keep(self, tracker: DialogueStateTracker) -> None:
        self._unsaved[tracker.sender_id] = tracker.copy()
        self._unsaved.move_to_end(tracker.sender_id)
        self._remember(tracker)
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.ensure_future(self._retry())

    async def _store(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        if sender_id in self._started_blind:
            # begun without its history: store its events after what the database has
            stored = await super().retrieve(sender_id)
            if stored is not None:
                tracker = DialogueStateTracker.from_events(
                    sender_id, list(stored.events) + list(tracker.events), self.domain.slots if self.domain else None)
        await super().save(tracker)
        self._started_blind.discard(sender_id)
        self._remember(tracker)

    async def flush(self) -> int:
        """Write the unsaved trackers, oldest first, until the database fails; how many were written."""
        written = 0
        while self._unsaved:
            sender_id, tracker = next(iter(self._unsaved.items()))
            try:
                await self._store(tracker)
            except SQLAlchemyError:
                break
            self._unsaved.pop(sender_id, None)
            written += 1
        if written:
            logger.info("tracker store: database back; %d conversation(s) written, %d waiting",
                        written, len(self._unsaved))
        return written

    async def _retry(self) -> None:
        while self._unsaved:
            await asyncio.sleep(self.retry_interval)
            await self.flush()
