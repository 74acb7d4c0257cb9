"""AnsweringTEDPolicy: Rasa's TEDPolicy, except that it never answers a message with silence.

Right after a customer's message TED can rank ``action_listen`` first, in a
situation its stories never showed ("yes" at a conversation's start, a line of
punctuation). Rasa then listens, and the customer gets no answer at all. This
policy abstains in that case: its prediction becomes "no opinion", so a rule, a
memorised story or the fallback (``GenerativeFallbackPolicy`` at its
``core_threshold``, or RulePolicy's core fallback) answers instead.

Everything else is TEDPolicy's: the same options, training and model files.
Use it in place of ``TEDPolicy`` in ``config.yml`` (docs/generative_fallback.md).
"""

import logging
from typing import Any, Dict, Optional, Text

from rasa.core.featurizers.precomputation import MessageContainerForCoreFeaturization
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class AnsweringTEDPolicy(TEDPolicy):
    """TEDPolicy that abstains when its best answer to a customer's message is silence."""

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        precomputations: Optional[MessageContainerForCoreFeaturization] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """TED's prediction, or no opinion when it would listen before answering."""
        prediction = super().predict_action_probabilities(
            tracker, domain, rule_only_data=rule_only_data, precomputations=precomputations, **kwargs
        )
        listen = domain.index_for_action(ACTION_LISTEN_NAME)
        if prediction.max_confidence <= 0.0 or prediction.max_confidence_index != listen \
                or not awaits_answer(tracker):
            return prediction
        logger.debug("AnsweringTEDPolicy: TED would answer the message with silence (action_listen, "
                     "%.2f); no opinion, so another policy answers.", prediction.max_confidence)
        # not an end-to-end prediction: the ensemble would otherwise prefer it over every other policy
        return self._prediction(self._default_predictions(domain))


def awaits_answer(tracker: DialogueStateTracker) -> bool:
    """Whether the customer's latest message has had no action after it yet (the tracker's
    own state, as GenerativeFallbackPolicy reads it: a message follows ``action_listen``)."""
    message = tracker.latest_message
    return tracker.latest_action_name == ACTION_LISTEN_NAME and message is not None \
        and bool(message.text or message.intent.get(INTENT_NAME_KEY))
