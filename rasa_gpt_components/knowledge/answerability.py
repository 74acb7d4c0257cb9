"""Whether the knowledge base would answer the customer's latest message: asked
by policies, answered by the NLG that owns the knowledge base.

Rasa builds the NLG from ``endpoints.yml`` and the policies from the model; the
two never meet in the graph. GenerativeNLG registers itself here when it is
built; ConversationRepairPolicy (``route_by_answerability``) asks whether the NLG
serving the same bot (the same responses) would answer a digression from the
knowledge base, so that the response it predicts names what the customer gets:
the knowledge answer, or the fallback. When no such NLG serves the bot in this
process (``rasa test`` without endpoints, another NLG), nobody answers (None)
and the policy goes by the intent, as without it.
"""

import threading
import weakref
from typing import Any, Dict, List, Optional, Protocol

from rasa.shared.core.trackers import DialogueStateTracker


class Judge(Protocol):
    """What registers: the bot's responses, and whether it would answer a tracker's latest message."""

    responses: Dict[str, Any]

    def answerable(self, tracker: DialogueStateTracker) -> bool: ...


_registered: List["weakref.ReferenceType[Any]"] = []
_lock = threading.Lock()


def register(judge: Judge) -> None:
    """``judge`` answers for the bot whose responses it holds (held weakly: a judge
    that is gone answers for nobody); the latest registered is asked first."""
    with _lock:
        _forget(judge)
        _registered.append(weakref.ref(judge))


def unregister(judge: Judge) -> None:
    """``judge`` answers for nobody any more (an NLG being replaced or shut down)."""
    with _lock:
        _forget(judge)


def _forget(judge: Judge) -> None:
    """Drops ``judge`` and the judges that are gone (the caller holds the lock)."""
    _registered[:] = [ref for ref in _registered if ref() is not None and ref() is not judge]


def answerable(tracker: DialogueStateTracker, responses: Dict[str, Any]) -> Optional[bool]:
    """Whether the knowledge base of the bot with ``responses`` would answer the
    tracker's latest message; None when no registered judge serves that bot."""
    with _lock:
        judges = [ref() for ref in reversed(_registered)]
    for judge in judges:
        if judge is not None and judge.responses == responses:
            return bool(judge.answerable(tracker))
    return None
