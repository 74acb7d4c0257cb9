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
actions it predicts ``action_listen``. Every prediction is logged at debug level
with its reason; every turn it took over (its action ran) is logged at info level
as one ``key=value`` line and counted in ``rasa_gpt_fallback_decisions_total``
(docs/observability.md).

Its "I don't know" offers a human ("... Would you like me to connect you with a
human agent?"): when the customer's next message is one of ``accept_intents``
(default ``affirm``) right after a reply that declined (whichever response
sent it; no form active), or after one of ``offer_actions`` (other responses
that offer a human, e.g. to a complaint), it predicts ``handoff_action``, so a
yes to that question is followed; so does a message that only says yes and
asks for it (``text.accepts_offer``: "好的，麻烦了", "要，帮我转", which the NLU may read
as thanks or not surely at all).

A confident yes or no with nothing to answer ("好", "ok", "no" to the human a
decline offered) is not a question to search the knowledge base with (it found
passages that start with "Yes."): with ``acknowledgement_response`` set, a
message of one of ``acknowledgement_intents`` that only this policy would
answer, and that only says yes or no (``text.only_yes_or_no``: "不用了",
"确认", "yes please"; not a vague "so about that" the NLU also read as a yes),
gets that response instead of the fallback, at the same confidence; so does a
no that says more right after an offer of a person ("不用转了 就是吐槽一下",
"no thanks, just wanted to vent": ``text.leading_yes_or_no``, no question; "it's
fine, no need to escalate": ``text.says_no_need``),
read by its best intent when the NLU was torn (``nlu_fallback``).

It also follows the customer's frustration (``frustration``, a mapping; see
``handoff/frustration.py``): right after each user message it sets the score in
the slot ``frustration.slot`` (when the domain has it), and when the score
reaches ``frustration.level`` it offers a human (``frustration.offer_action``)
in place of that turn's answer: once a session, never while a form is active,
never when the customer asks for a human already (``frustration.ignore_intents``).

With ``failed_action_response`` set (e.g. ``utter_action_failed``), it also
apologises when a custom action fails: Rasa logs the error, keeps the action
and goes on as if it had said nothing, so the customer would get no answer. A
custom action that ran in a live conversation (one with a session start: not a
story being evaluated) and returned no event at all is taken as failed; enable
this only if every custom action that the policies predict returns at least one
event (a message, a slot), or list the silent ones in ``silent_actions``.
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
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY

from rasa_gpt_components.handoff.conversation import Conversation, offering_responses, read_conversation
from rasa_gpt_components.handoff.frustration import FrustrationSettings, frustration
from rasa_gpt_components.metrics import FALLBACK_DECISIONS, log_fields
from rasa_gpt_components.policies.readings import ranked_intents
from rasa_gpt_components.text import accepts_offer, leading_yes_or_no, only_yes_or_no, says_no_need

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
            # a yes to the human that a declining reply offers
            "accept_intents": ["affirm"],
            # responses that offer a human too (e.g. the bot's reply to a complaint)
            "offer_actions": [],
            # a yes or no with nothing pending: this response (e.g. "OK, what can I do for you?"),
            # not a knowledge-base search; None: the fallback
            "acknowledgement_intents": ["affirm", "deny"],
            "acknowledgement_response": None,
            "failed_action_response": None,
            "silent_actions": [],
            "frustration": {},  # FrustrationSettings' defaults; docs/handoff.md
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
        try:
            self.frustration = FrustrationSettings.from_config(config["frustration"])
        except (TypeError, ValueError) as error:
            raise RasaException(f"GenerativeFallbackPolicy: {error}") from None
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; checks that the domain has the actions it predicts."""
        known = set(domain.action_names_or_texts)
        if self.frustration.level is not None and self.frustration.offer_action not in known:
            logger.warning(
                "GenerativeFallbackPolicy: '%s' (frustration.offer_action) is not in the domain, so a "
                "frustrated customer is not offered a human. Add the response, or set frustration.level "
                "to null; see docs/handoff.md.", self.frustration.offer_action)
        for key in ("fallback_response", "handoff_action", "failed_action_response", "acknowledgement_response"):
            name = self.config[key]
            if name is None and key in ("failed_action_response", "acknowledgement_response"):
                continue
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
        conversation = self._conversation(tracker)
        score = frustration(conversation.turns, self.config["fallback_response"], self.frustration) \
            if conversation else None
        events: List[Event] = []
        if score is not None and self.frustration.slot in {slot.name for slot in domain.slots}:
            events.append(SlotSet(self.frustration.slot, round(score, 2)))
        offer = score is not None and self._offer(tracker, domain, conversation, score)
        offered = self._after_offer(tracker, domain, conversation)
        action, confidence, code, reason = self._decide(tracker, domain, score if offer else None,
                                                        accepted=offered and self._accepts_offer(tracker),
                                                        declined=offered and self._declines_offer(tracker))
        if action == ACTION_LISTEN_NAME:
            self._report_takeover(tracker)
        if action is None:
            return self._prediction(probabilities, events=events)
        index = domain.index_for_action(action)
        if index is None:  # a model trained on another domain
            logger.warning("GenerativeFallbackPolicy: '%s' is not in the domain; no prediction.", action)
            return self._prediction(probabilities, events=events)
        probabilities[index] = confidence
        logger.debug("GenerativeFallbackPolicy prediction %s", log_fields(
            action=action, confidence=confidence, reason=code, **message_fields(tracker), because=reason))
        return self._prediction(probabilities, events=events,
                                action_metadata={"reason": reason, "reason_code": code})

    @staticmethod
    def _conversation(tracker: DialogueStateTracker) -> Optional[Conversation]:
        """The current session, read right after a user message; None at any other time."""
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not tracker.latest_message \
                or not tracker.latest_message.intent.get(INTENT_NAME_KEY):
            return None
        return read_conversation([event.as_dict() for event in tracker.applied_events()])

    def _offer(self, tracker: DialogueStateTracker, domain: Domain, conversation: Conversation, score: float) -> bool:
        """Whether to offer a human now: frustrated enough, no form active, not asked
        for already, not offered nor handed off before in this session."""
        level = self.frustration.level
        if level is None or score < float(level) or tracker.active_loop_name:
            return False
        if self.frustration.offer_action not in domain.action_names_or_texts:
            return False
        if tracker.latest_message.intent.get(INTENT_NAME_KEY) in self.frustration.ignore_intents:
            return False
        done = {self.frustration.offer_action, self.config["handoff_action"]}
        return not any(action in done for turn in conversation.turns for action in turn.actions)

    def _after_offer(self, tracker: DialogueStateTracker, domain: Domain, conversation: Optional[Conversation]) -> bool:
        """Whether the bot's previous reply offered a person (a decline, one of ``offer_actions`` or
        a response the domain marks ``offers_handoff``); not while a form asks its own yes/no question."""
        if conversation is None or len(conversation.turns) < 2 or tracker.active_loop_name:
            return False
        offers = (*self.config["offer_actions"], *offering_responses(domain.responses))
        return conversation.turns[-2].offered_a_person(offers)

    def _accepts_offer(self, tracker: DialogueStateTracker) -> bool:
        """Whether the customer's message, right after an offer of a person (:meth:`_after_offer`),
        says yes (``accept_intents``, or a yes that asks for it whatever the intent: "好的，麻烦了",
        "要，帮我转")."""
        latest = tracker.latest_message.intent.get(INTENT_NAME_KEY)
        return latest in self.config["accept_intents"] or accepts_offer(tracker.latest_message.text or "")

    @staticmethod
    def _declines_offer(tracker: DialogueStateTracker) -> bool:
        """Whether the customer's message, right after an offer of a person, says no and more
        ("不用转了 就是吐槽一下": a plain no first, no question; "it's fine, no need to escalate,
        just letting you know": no need said, no question): nothing to look up."""
        text = (tracker.latest_message.text if tracker.latest_message else None) or ""
        return leading_yes_or_no(text) is False or says_no_need(text)

    def _report_takeover(self, tracker: DialogueStateTracker) -> None:
        """Count and log the turn this policy just took over: its action is the one that
        ran, not the same action predicted by a rule or a story."""
        ran = tracker.get_last_event_for(ActionExecuted)
        if ran is None or ran.policy != type(self).__name__:
            return
        kinds = {self.config["fallback_response"]: "fallback", self.config["handoff_action"]: "handoff",
                 self.config["failed_action_response"]: "apology", self.frustration.offer_action: "offer",
                 self.config["acknowledgement_response"]: "acknowledgement"}
        decision = kinds.get(ran.action_name, "other")
        code = (ran.metadata or {}).get("reason_code", "unknown")
        FALLBACK_DECISIONS.labels(decision, code).inc()
        logger.info("GenerativeFallbackPolicy %s", log_fields(
            decision=decision, action=ran.action_name, reason=code, confidence=float(ran.confidence or 0.0),
            **message_fields(tracker)))

    def _decide(self, tracker: DialogueStateTracker, domain: Domain, offer_at: Optional[float] = None,
                accepted: bool = False, declined: bool = False) -> Tuple[Optional[str], float, str, str]:
        """(action or None, confidence, reason code for metrics and logs, reason for people);
        ``offer_at``: the frustration score when a human is to be offered now; ``accepted`` /
        ``declined``: the customer said yes / a no that says more to the human just offered."""
        fallback, handoff = self.config["fallback_response"], self.config["handoff_action"]
        apology = self.config["failed_action_response"]
        offer = self.frustration.offer_action if self.frustration.level is not None else None
        acknowledgement = self.config["acknowledgement_response"]
        latest = tracker.latest_action_name
        own = {fallback, handoff} | {action for action in (apology, offer, acknowledgement) if action}
        if latest in own:
            return ACTION_LISTEN_NAME, 1.0, "after_own_action", f"{latest} was just said"
        failed = self._failed_action(tracker, domain) if apology else None
        if failed:
            return apology, 1.0, "action_failed", f"{failed} failed (it returned nothing; see the action server's log)"
        if latest != ACTION_LISTEN_NAME:
            return None, 0.0, "mid_turn", "the bot is mid-turn"
        intent = tracker.latest_message.intent if tracker.latest_message else {}
        name = intent.get(INTENT_NAME_KEY)
        if name is None:
            return None, 0.0, "no_user_message", "no user message yet"
        confidence = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        if accepted:
            return (handoff, 1.0, "offer_accepted",
                    f"{name} right after a reply that offered a human (it declined, or is an offer_action)")
        if offer_at is not None:
            return offer, 1.0, "frustration", f"frustration {offer_at:.2f} >= level {self.frustration.level}"
        if declined and name == "nlu_fallback":
            # a plain no right after an offer that the NLU was torn on ("不用转了，就是说一下": deny
            # 0.50 / stop 0.50): its best reading, as the acknowledgement's intents are all a no or a yes
            name, confidence = next(iter(ranked_intents(tracker, readings_only=True)), (name, confidence))
        if name in self.config["fallback_intents"]:
            action, probability, code, reason = fallback, 1.0, "fallback_intent", f"intent is {name}"
        elif confidence < float(self.config["nlu_threshold"]):
            action, probability, code = fallback, 1.0, "nlu_low_confidence"
            reason = f"intent {name} has confidence {confidence:.2f} < nlu_threshold"
        elif (acknowledgement and name in self.config["acknowledgement_intents"] and not tracker.active_loop_name
              and (declined or only_yes_or_no(tracker.latest_message.text or ""))):
            return (acknowledgement, float(self.config["core_threshold"]), "acknowledgement",
                    f"{name} with nothing pending: no question to search for")
        else:
            action, probability, code = fallback, float(self.config["core_threshold"]), "core_low_confidence"
            reason = "no other policy is more confident than core_threshold"
        streak = consecutive_fallbacks(tracker, fallback)
        if streak >= int(self.config["max_consecutive_fallbacks"]):
            return handoff, probability, code, f"{reason}, after {streak} generative answers in a row"
        return action, probability, code, reason


    def _failed_action(self, tracker: DialogueStateTracker, domain: Domain) -> Optional[str]:
        """The custom action that just ran in a live conversation and returned no event."""
        last = tracker.events[-1] if tracker.events else None
        if not isinstance(last, ActionExecuted) or last.action_name is None:
            return None
        name = last.action_name
        custom = name in domain.user_actions and not name.startswith("utter_") and name not in domain.form_names
        if not custom or name in self.config["silent_actions"]:
            return None
        live = any(isinstance(event, SessionStarted) for event in tracker.events)
        return name if live else None


def message_fields(tracker: DialogueStateTracker) -> Dict[str, Any]:
    """The latest user message's intent and its confidence, for a log line (never its text)."""
    intent = tracker.latest_message.intent if tracker.latest_message else {}
    return {"intent": intent.get(INTENT_NAME_KEY) or "-",
            "nlu_confidence": float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)}


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
