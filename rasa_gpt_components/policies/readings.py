"""The NLU's readings of the customer's latest message, as the policies compare them."""

from typing import List, Optional, Tuple

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY


def ranked_intents(tracker: DialogueStateTracker, readings_only: bool = False) -> List[Tuple[Optional[str], float]]:
    """(intent, confidence) of the latest message's intent ranking, most confident first;
    with ``readings_only``, the intents the NLU read it as: without ``nlu_fallback``
    (which says the NLU was torn or unsure, not what it read)."""
    ranking = [(r.get(INTENT_NAME_KEY), float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0))
               for r in (tracker.latest_message.parse_data.get("intent_ranking") or [])]
    if readings_only:
        ranking = [r for r in ranking if r[0] and r[0] != DEFAULT_NLU_FALLBACK_INTENT_NAME]
    return sorted(ranking, key=lambda r: -r[1])
