"""FollowUpPolicy: a message that builds on what the bot just did runs that action again.

Right after recommendations, "换一批", "还有更便宜点的吗" and "anything cheaper?" ask
for more of the same; the intent classifier reads their words alone ("换" as an
exchange request, "便宜" as a question for the knowledge base) and the bot starts
the exchange form or answers from the knowledge base. Right after an order
lookup, "大概还要多久才能到手？" asks about that order; right after a knowledge
answer, "那西安呢" asks the same question of Xi'an (read as a greeting or as
nothing the knowledge base knows, it was greeted or declined). This policy reads such a
message in its context: when the bot's last action before the message is one
of ``follow_ups``' actions and the message reads as a follow-up to it, it runs
that action again (which sees the message and the conversation's slots: the
recommendations shown, the order looked up), then listens.

``config.yml``::

    policies:
      - name: rasa_gpt_components.FollowUpPolicy
        follow_ups:
          # the recommendation reader of the plugin: another batch, cheaper, dearer, a budget,
          # or a question about the items shown ("第一个多少钱", "is it in stock?")
          action_recommend: {reader: recommendation}
          # a question that names only something else: "那西安呢", "and to Macau?"
          utter_knowledge_answer: {reader: elliptical_question}
          # or regular expressions (case-insensitive), searched in the message
          action_order_status: {patterns: ["还要多久", "when will it arrive"]}
        # intents that are never a follow-up, whatever the message says
        not_intents: [human_handoff, stop]

Readers: ``recommendation`` (``recommend.request.follows_recommendations``: ``refines`` or
``asks_about_shown``) and
``elliptical_question`` (``text.elliptical_question``). A message read as
one of ``not_intents`` is left to the other policies. It predicts with
confidence 1.0 at a priority above RulePolicy's and ConversationRepairPolicy's,
only in those situations;
otherwise it has no opinion. Each follow-up is logged (never the text) and
counted in ``rasa_gpt_repairs_total`` as ``follow_up``.
"""

import logging
import re
from typing import Any, Callable, Dict, List, Optional, Pattern, Text

from rasa.core.constants import POLICY_PRIORITY, RULE_POLICY_PRIORITY
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
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from rasa_gpt_components.metrics import REPAIRS, log_fields
from rasa_gpt_components.recommend.request import follows_recommendations
from rasa_gpt_components.text import clean_text, elliptical_question

logger = logging.getLogger(__name__)

# the readers a follow-up may name: text -> whether it builds on that action's answer
READERS: Dict[str, Callable[[str], bool]] = {"recommendation": follows_recommendations,
                                             "elliptical_question": elliptical_question}
KIND = "follow_up"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class FollowUpPolicy(Policy):
    """Runs the bot's last action again for a message that follows it up."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``follow_ups``: action -> {reader: NAME} or {patterns: [REGEX, ...]};
        ``not_intents``: intents that are never a follow-up."""
        return {POLICY_PRIORITY: RULE_POLICY_PRIORITY + 3, "follow_ups": {}, "not_intents": []}

    @staticmethod
    def supported_data() -> SupportedData:
        """Needs no stories: it reads only the current conversation."""
        return SupportedData.ML_AND_RULE_DATA

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, featurizer: Optional[Any] = None) -> None:
        config = {**self.get_default_config(), **config}
        self.readers = {action: _reader(action, spec) for action, spec in (config.get("follow_ups") or {}).items()}
        self.not_intents = frozenset(config.get("not_intents") or ())
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; checks that the domain has the actions it runs again."""
        missing = sorted(set(self.readers) - set(domain.action_names_or_texts))
        if missing:
            raise RasaException(f"FollowUpPolicy: {missing} (follow_ups) are not actions of the domain; "
                                "see docs/conversation_repair.md.")
        return self._resource

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: Optional[Dict[Text, Any]] = None,
                                     **kwargs: Any) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        action = self._decide(tracker)
        index = domain.index_for_action(action) if action else None
        if index is None:
            return self._prediction(probabilities)
        probabilities[index] = 1.0
        if action != ACTION_LISTEN_NAME:
            REPAIRS.labels(KIND).inc()
            logger.info("FollowUpPolicy %s", log_fields(
                repair=KIND, action=action, intent=tracker.latest_message.intent.get(INTENT_NAME_KEY)))
        # as a prediction that does not depend on the user's input, like ConversationRepairPolicy's: the
        # context has read the message, so a clarifying question between two intents is not needed
        return self._prediction(probabilities, is_no_user_prediction=True, action_metadata={"repair": KIND})

    def _decide(self, tracker: DialogueStateTracker) -> Optional[str]:
        """The action to run (or action_listen after its own), or None."""
        if tracker.active_loop_name or not self.readers:
            return None
        if tracker.latest_action_name != ACTION_LISTEN_NAME:
            ran = tracker.get_last_event_for(ActionExecuted)
            return ACTION_LISTEN_NAME if ran is not None and ran.policy == type(self).__name__ else None
        message = tracker.latest_message
        if not message or message.intent.get(INTENT_NAME_KEY) in self.not_intents:
            return None
        before = _action_before_latest_message(tracker)
        reader = self.readers.get(before or "")
        if reader is None or not reader(clean_text(message.text or "")):
            return None
        return before


def _reader(action: str, spec: Any) -> Callable[[str], bool]:
    """The reader a follow-up's settings name, or one of its patterns; a clear error otherwise."""
    if isinstance(spec, dict) and isinstance(spec.get("reader"), str) and spec["reader"] in READERS:
        return READERS[spec["reader"]]
    if isinstance(spec, dict) and isinstance(spec.get("patterns"), list) and spec["patterns"]:
        try:
            patterns: List[Pattern[str]] = [re.compile(str(p), re.IGNORECASE) for p in spec["patterns"]]
        except re.error as error:
            raise RasaException(f"FollowUpPolicy: follow_ups.{action}: a pattern is no regular expression "
                                f"({error}).") from None
        return lambda text: any(p.search(text) for p in patterns)
    raise RasaException(f"FollowUpPolicy: follow_ups.{action} needs 'reader' (one of {sorted(READERS)}) or "
                        "'patterns' (a list of regular expressions); see docs/conversation_repair.md.")


def _action_before_latest_message(tracker: DialogueStateTracker) -> Optional[str]:
    """The bot's last action (not action_listen) before the latest message, or None."""
    seen_message = False
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            if seen_message:
                return None  # only the turn just before counts
            seen_message = True
        elif seen_message and isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME:
            return event.action_name
    return None
