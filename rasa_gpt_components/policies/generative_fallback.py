"""GenerativeFallbackPolicy: decides when the generative fallback answers.

It only decides; the text is made by ``GenerativeNLG`` when the response runs,
off Rasa's event loop (a policy's prediction is synchronous and would block it).

Right after a user message it predicts ``fallback_response``
(default ``utter_generative_fallback``):

- with confidence 1.0 when the message's intent is one of ``fallback_intents``
  (``nlu_fallback``, ``out_of_scope``) or its confidence is under
  ``nlu_threshold``: the NLU is not sure, so no story or rule should be trusted;
- otherwise with confidence ``core_threshold``: any policy that is more sure
  wins, so it answers only when no other policy is confident.

After ``max_consecutive_fallbacks`` generative answers in a row, it predicts
``handoff_action`` instead (a response or a custom action). After its own
actions it predicts ``action_listen``. Every decision is logged with its reason.
"""

import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.core.constants import DEFAULT_CORE_FALLBACK_THRESHOLD, POLICY_PRIORITY, RULE_POLICY_PRIORITY
from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class GenerativeFallbackPolicy(Policy):
    """Hands unsure turns to the generative fallback, and too many of them to a human."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults; see docs/generative_fallback.md."""
        return {
            POLICY_PRIORITY: RULE_POLICY_PRIORITY + 1,
            "nlu_threshold": 0.3,
            "core_threshold": DEFAULT_CORE_FALLBACK_THRESHOLD,
            "fallback_intents": ["nlu_fallback", "out_of_scope"],
            "fallback_response": "utter_generative_fallback",
            "max_consecutive_fallbacks": 2,
            "handoff_action": "utter_handoff",
        }

    @staticmethod
    def supported_data() -> SupportedData:
        """Needs no stories: it reads only the current conversation."""
        return SupportedData.ML_AND_RULE_DATA

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        config = {**self.get_default_config(), **config}
        for key in ("nlu_threshold", "core_threshold"):
            if not 0.0 <= float(config[key]) <= 1.0:
                raise RasaException(f"GenerativeFallbackPolicy: {key} must be between 0 and 1.")
        if int(config["max_consecutive_fallbacks"]) < 1:
            raise RasaException("GenerativeFallbackPolicy: max_consecutive_fallbacks must be at least 1.")
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; checks that the domain has the actions it predicts."""
        known = set(domain.action_names_or_texts)
        for key in ("fallback_response", "handoff_action"):
            name = self.config[key]
            if name not in known:
                raise RasaException(
                    f"GenerativeFallbackPolicy: '{name}' ({key}) is not in the domain. Add it under "
                    f"'responses' (or 'actions' for a custom action); see docs/generative_fallback.md."
                )
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """The fallback, the hand-off, action_listen after either, or no opinion."""
        probabilities = self._default_predictions(domain)
        action, confidence, reason = self._decide(tracker)
        if action is None:
            return self._prediction(probabilities)
        index = domain.index_for_action(action)
        if index is None:  # a model trained on another domain
            logger.warning("GenerativeFallbackPolicy: '%s' is not in the domain; no prediction.", action)
            return self._prediction(probabilities)
        probabilities[index] = confidence
        logger.debug("GenerativeFallbackPolicy: %s (%.2f) because %s", action, confidence, reason)
        return self._prediction(probabilities, action_metadata={"reason": reason})

    def _decide(self, tracker: DialogueStateTracker) -> Tuple[Optional[str], float, str]:
        fallback, handoff = self.config["fallback_response"], self.config["handoff_action"]
        latest = tracker.latest_action_name
        if latest in (fallback, handoff):
            return ACTION_LISTEN_NAME, 1.0, f"{latest} was just said"
        if latest != ACTION_LISTEN_NAME:
            return None, 0.0, "the bot is mid-turn"
        intent = tracker.latest_message.intent if tracker.latest_message else {}
        name = intent.get(INTENT_NAME_KEY)
        if name is None:
            return None, 0.0, "no user message yet"
        confidence = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        if name in self.config["fallback_intents"]:
            action, probability, reason = fallback, 1.0, f"intent is {name}"
        elif confidence < float(self.config["nlu_threshold"]):
            action, probability = fallback, 1.0
            reason = f"intent {name} has confidence {confidence:.2f} < nlu_threshold"
        else:
            action, probability = fallback, float(self.config["core_threshold"])
            reason = "no other policy is more confident than core_threshold"
        streak = consecutive_fallbacks(tracker, fallback)
        if streak >= int(self.config["max_consecutive_fallbacks"]):
            return handoff, probability, f"{reason}, after {streak} generative answers in a row"
        return action, probability, reason


def consecutive_fallbacks(tracker: DialogueStateTracker, fallback: str) -> int:
    """How many of the latest user turns in a row were answered first by ``fallback``."""
    first_actions: List[Optional[str]] = []
    waiting = False
    for event in tracker.applied_events():
        if isinstance(event, UserUttered):
            first_actions.append(None)
            waiting = True
        elif waiting and isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME:
            first_actions[-1] = event.action_name
            waiting = False
    streak = 0
    for action in reversed(first_actions[:-1] if waiting else first_actions):
        if action != fallback:
            break
        streak += 1
    return streak
