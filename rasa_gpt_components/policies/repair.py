"""ConversationRepairPolicy: keeps a form on track when the customer does not
follow it (docs/conversation_repair.md). Configured in ``config.yml``; no
per-bot Python.

- **Digression.** While a form asks for a slot, a message whose intent is one
  of ``digression_intents`` with confidence >= ``threshold`` (and that reads as
  a question, when ``questions_only``) is answered first: by the response
  ``answers`` maps its intent to, else ``default_answer`` (by default the
  generative fallback, which answers from the knowledge base). With
  ``question_digressions``, so is a message that reads as a question whatever
  its intent, unless the intent is one of ``answer_intents`` or the message
  filled the slot the form asked for (an entity): "where do I find the order
  number?" read as ``order_status`` is answered (``question_answer``, else
  ``default_answer``), not looked up. A value that a
  free-text mapping (``from_text``) took from that message is taken back, so
  "do you ship to Canada?" never becomes a refund reason. Then the form asks
  its slot again. With ``route_by_answerability``, a digression answered by
  ``knowledge_answer`` or ``default_answer`` gets the first when the knowledge
  base answers it and the second when it does not, whatever the intent, as the
  GenerativeNLG serving the bot judges it (``knowledge/answerability.py``): an
  off-topic question read as ``faq`` is the fallback's, an answerable one read as
  ``out_of_scope`` the knowledge answer's. The answer is the same (one pipeline
  answers both; only a template's own wording differs); the response now names it.
- **An answer the domain names.** A message whose intent the asked slot's own
  ``from_intent`` mapping takes, and that filled the slot, is that answer: the
  form goes on, even when the intent is one of ``cancel_intents``. So with a
  mapping of ``stop`` to ``false`` on a confirmation slot, "not now, don't file
  it" at "shall I file the refund?" is a no, and the form says so; the same
  intent at any other slot still cancels. (A bot that leaves forms with its
  own rules needs only the mapping: the form takes the message and is not
  rejected, so the rule never fires.) A message that reads as a question is
  such an answer only when its intent is one of ``question_mapping_intents``
  (by default the yes, the no, a value, leaving): otherwise it is a digression
  and the value the mapping gave is taken back, so with ``request_refund``
  mapped to yes at the refund's confirmation, "does the refund go back to
  Huabei?" is answered, not filed.
- **Correction** (``corrections``). During a form, a message that changes a
  slot the form already had (an order number given again as an entity:
  "actually it's ES2611210007", "不对，订单号是…") is a correction: the form runs
  again, validates the new value and goes on from there; a free-text slot the
  message filled, and the value it gave the asked slot, are taken back (the
  correction is neither the refund reason nor the yes of a confirmation).
- **A rejected message.** When the form rejects a message (it filled no
  slot) and another policy answers it with one of the digression answers
  (``default_answer``, ``question_answer``, ``answers``; typically the
  generative fallback, when no rule covers that intent inside the form), the
  form asks its slot again (``resume_rejected``). Rasa keeps a rejected form
  waiting for a rule to bring it back; without one it never asks again.
- **Readings that agree** (``agreeing_readings``). When the NLU was torn
  (``nlu_fallback``: FallbackClassifier's ambiguity or low confidence) between
  two intents that the asked slot's ``from_intent`` mappings turn into the same
  value (together at least ``threshold`` sure), the message is that answer: "no, hold off, don't submit it yet" read
  as deny 0.52 / stop 0.47 at a confirmation that maps both to false is a no,
  not a turn for the fallback. The slot is set and the form goes on.
- **A yes that says more** (``leading_yes``). A message, no question, read as one
  of ``leading_yes_intents``, that starts with a plain yes and adds nothing but what
  the form holds ("对 就是白色" read as ``inform`` when the wish is 白色) at a slot whose
  ``from_intent`` mapping gives ``yes_intent`` a value is that yes; not when it filled
  a slot of the form, turns round after the yes ("ok wait, no", "好的，我再想想") or
  adds something new ("好的，换L码吧", "好的，转人工"), unless the NLU was torn
  (``nlu_fallback``) between two readings one of which the slot maps to the yes:
  "行，就照这个退吧" read as stop 0.48 / request_refund 0.47 at a refund
  confirmation is the yes its first word says. So is a message that says
  again what the form holds and goes ahead at its end ("red's good, thanks,
  submit it", "大一码对了，交了吧": ``text.confirms_after``); a free-text slot it
  filled (the refund reason at its confirmation) is taken back.
- **A no that says more** (``leading_no``). A message, no question, read as one of
  ``leading_no_intents`` or as the form's own request, that starts with a plain no
  ("no wait, I meant navy, not grey" read as a preference at an exchange's
  confirmation) at a slot whose ``from_intent`` mapping gives ``no_intent`` a value is
  that no, unless it filled a slot of the form (a correction is one), even where the
  slot maps its intent to yes ("不对，我要换的是蓝色" read as the exchange request). Nothing
  is filed.
- **Switching forms** (``switch_forms``). During a form, a message whose intent
  starts another form (``switch_forms`` maps intents to forms) with confidence
  >= ``threshold`` (``strict_switch_threshold`` when the message could be
  something else: an answer to a free-text slot, which any message fills, or a
  question, which may ask about that request rather than make it) leaves the
  form without submitting anything and starts that one: "actually, can I swap them for a bigger size instead?" in the refund form
  is an exchange, never the refund reason. ``switch_response`` is said first
  (None: nothing); the slots both forms ask for (the order number) keep their
  values, the first form's other slots are emptied. Unless the asked slot's
  own mapping takes that intent (it is then the answer). A question read as
  another form's request that is not sure enough to switch is a question about
  it: answered like a digression ("do you send a courier to pick it up?" read as
  change_address 0.83 inside the exchange form).
- **Cancellation.** During a form, a message whose intent is one of
  ``cancel_intents`` leaves it: ``cancel_response`` is said, the form is
  deactivated and its slots are emptied (except ``keep_slots``); nothing the
  form would have submitted is submitted. So is a message, no question, that
  calls off a request by naming it ("drop the exchange", "退款不要了") read as the
  form's own request or torn (``calling_off``): a classifier reads "cancel the
  exchange please" as the exchange request, which the wish would store and the
  confirmation's mapping would file. The form is left as a bot's stop rule
  leaves it (``action_deactivate_loop``), then ``cancel_response`` is said.
- **Clarification.** Outside a form, when the NLU's top two intents are both
  in ``clarify_intents`` and their confidences differ by less than
  ``clarify_margin``, it asks instead of guessing: ``clarify_response`` with the
  two intents in the slots ``clarify_first`` / ``clarify_second`` (for button
  payloads, "/<intent>") and their labels in the customer's language
  (``intent_labels``, by the slot ``language_slot``) in ``clarify_first_label`` /
  ``clarify_second_label``. A click on a button is an intent at full
  confidence, which resolves the turn.

It predicts with confidence 1.0 at a priority above RulePolicy's and
GenerativeFallbackPolicy's, as a prediction that does not depend on the user's
input (like RulePolicy's for an active form, which would otherwise overrule it),
and only in those situations; otherwise it has no opinion. Every repair is logged (one ``key=value`` line, never the text) and
counted in ``rasa_gpt_repairs_total``.
"""

import logging
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from rasa.core.constants import POLICY_PRIORITY, RULE_POLICY_PRIORITY
from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.core.constants import ACTION_DEACTIVATE_LOOP_NAME, ACTION_LISTEN_NAME, REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.utils.io import raise_warning

from rasa_gpt_components.knowledge import answerability as knowledge_answerability
from rasa_gpt_components.metrics import REPAIRS, log_fields
from rasa_gpt_components.policies.readings import ranked_intents
from rasa_gpt_components.text import (
    after_leading_yes, announces_question, calls_off, changes_mind, clean_text, confirms_after, leading_yes_or_no,
    looks_like_question, restates, says_again,
)

logger = logging.getLogger(__name__)

REPAIRS_KINDS = ("digression", "correction", "cancellation", "clarification", "switch")
# repairs after which the form goes its own way (it may be complete: no listening forced)
FORM_REPAIRS = ("agreement",)
# the intents that answer a form's question (a yes, a no, a value, leaving it)
ANSWER_INTENTS = ("inform", "affirm", "deny", "stop")
# the slots a clarification fills, for the response's text and buttons
CLARIFY_SLOTS = ("clarify_first", "clarify_first_label", "clarify_second", "clarify_second_label")


@dataclass(frozen=True)
class RepairSettings:
    digression_intents: Tuple[str, ...] = ("faq", "nlu_fallback", "out_of_scope")
    answers: Dict[str, str] = field(default_factory=lambda: {"faq": "utter_knowledge_answer"})
    default_answer: str = "utter_generative_fallback"
    threshold: float = 0.5
    questions_only: bool = True
    # a question with any other intent is a digression too, unless its intent answers forms
    # (or is one the bot's rules handle inside forms, e.g. leaving it) or is a cancel intent
    question_digressions: bool = True
    # the response for such a question (an intent outside digression_intents); None: default_answer
    question_answer: Optional[str] = None
    # a digression answered by `knowledge_answer` or `default_answer` gets the first when the
    # knowledge base answers it and the second when it does not, as GenerativeNLG (when it serves
    # the bot in this process) judges it: the response names what the customer gets
    route_by_answerability: bool = True
    knowledge_answer: str = "utter_knowledge_answer"
    answer_intents: Tuple[str, ...] = ANSWER_INTENTS
    # a message that reads as a question is the answer a from_intent mapping names only with one
    # of these intents: "does the refund go back to Huabei?" read as request_refund at "shall I
    # file it?" is answered, not taken as the yes a mapping of request_refund would make it
    question_mapping_intents: Tuple[str, ...] = ANSWER_INTENTS
    # a question with an answer intent under `threshold` at a free-text slot is a digression:
    # "are your sizes large or small?" read as inform 0.42 is not the size to exchange to
    unsure_free_text_questions: bool = True
    # a question read as the request that started the form ("can shoes I tried on be
    # exchanged?" inside the exchange form) is about that request, not a new one: a digression
    own_request_questions: bool = True
    # a question that announces it asks something aside ("我先问个好奇的事：…", "before I type the
    # address: …"; text.announces_question), read as one of these under `strict_switch_threshold`,
    # is a digression: "地址马上发。我先问个好奇的事：蚂蚁怎么认得回家的路？" read as stop 0.63 had ended the form
    aside_intents: Tuple[str, ...] = ANSWER_INTENTS
    corrections: bool = True
    # nlu_fallback between two intents the asked slot's from_intent mappings give the same value
    agreeing_readings: bool = True
    # a message, no question, read as one of `leading_yes_intents`, that starts with a plain yes
    # and adds nothing but what the form holds ("对 就是白色" read as inform, the wish being 白色;
    # "好的谢谢" read as thank) at
    # a slot whose from_intent mapping gives `yes_intent` a value, when it filled none of the form's slots
    leading_yes: bool = True
    yes_intent: str = "affirm"
    leading_yes_intents: Tuple[str, ...] = ("inform", "nlu_fallback", "thank")
    # a message, no question, read as one of `leading_no_intents` (or as the request that started the
    # form), that starts with a plain no ("no wait, I meant navy, not grey" read as a preference) at a
    # slot whose from_intent mapping gives `no_intent` a value, when it filled none of the form's slots
    # and corrected nothing: that no. Nothing is filed on a no; what follows it is not taken
    leading_no: bool = True
    no_intent: str = "deny"
    leading_no_intents: Tuple[str, ...] = ("inform", "nlu_fallback")
    # a message the form rejected (it filled no slot; no rule took it), answered by another
    # policy with one of the digression answers (e.g. the generative fallback): the form asks
    # its slot again, instead of staying rejected until the conversation ends
    resume_rejected: bool = True
    # intent -> the form it starts: inside another form, that intent leaves it and starts this one
    switch_forms: Dict[str, str] = field(default_factory=dict)
    switch_response: Optional[str] = "utter_form_switched"
    # the confidence a switch needs at a free-text slot or for a question (else `threshold`)
    strict_switch_threshold: float = 0.9
    cancel_intents: Tuple[str, ...] = ("stop",)
    cancel_response: Optional[str] = "utter_form_cancelled"
    keep_slots: Tuple[str, ...] = ()
    # a message, no question, read as the request that started the form (or torn, nlu_fallback), that
    # calls a request off by naming it ("drop the exchange" read as request_exchange; text.calls_off):
    # the form is left as a bot's stop rule leaves it (action_deactivate_loop, its slots emptied except
    # `keep_slots`), then `cancel_response` is said; whatever `cancel_intents` are (off when the domain
    # has no `cancel_response`)
    calling_off: bool = True
    forms: Tuple[str, ...] = ()  # the forms it repairs; empty: every form
    clarify_intents: Tuple[str, ...] = ()  # empty: no clarification
    clarify_margin: float = 0.15
    clarify_response: str = "utter_clarify"
    intent_labels: Dict[str, Dict[str, str]] = field(default_factory=dict)  # intent -> language -> label
    language_slot: str = "language"

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "RepairSettings":
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in config.items() if k in known}
        for key in (f.name for f in fields(cls) if isinstance(f.default, tuple)):  # the lists of names
            if key in given:
                given[key] = tuple(given[key] or ())
        settings = cls(**given)
        if not all(0.0 <= float(v) <= 1.0 for v in (settings.threshold, settings.clarify_margin,
                                                     settings.strict_switch_threshold)):
            raise ValueError("threshold, strict_switch_threshold and clarify_margin must be between 0 and 1.")
        if not isinstance(settings.answers, dict):
            raise ValueError("answers must map intents to responses.")
        if not isinstance(settings.switch_forms, dict):
            raise ValueError("switch_forms must map intents to forms.")
        return settings

    def defaults(self) -> Dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class ConversationRepairPolicy(Policy):
    """Answers digressions inside a form (then the form goes on) and cancels a form when asked."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults; see docs/conversation_repair.md."""
        return {POLICY_PRIORITY: RULE_POLICY_PRIORITY + 2, **RepairSettings().defaults()}

    @staticmethod
    def supported_data() -> SupportedData:
        """Needs no stories: it reads only the current conversation."""
        return SupportedData.ML_AND_RULE_DATA

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, featurizer: Optional[Any] = None) -> None:
        config = {**self.get_default_config(), **config}
        unknown = sorted(set(config) - set(self.get_default_config()) - {"name"})
        if unknown:
            raise RasaException(f"ConversationRepairPolicy: unknown options {unknown}.")
        try:
            self.settings = RepairSettings.from_config(config)
        except (TypeError, ValueError) as error:
            raise RasaException(f"ConversationRepairPolicy: {error}") from None
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn; checks that the domain has the responses it predicts."""
        known = set(domain.action_names_or_texts)
        needed = {"default_answer": self.settings.default_answer, "question_answer": self.settings.question_answer,
                  "cancel_response": self.settings.cancel_response if self.settings.cancel_intents else None,
                  "switch_response": self.settings.switch_response if self.settings.switch_forms else None}
        needed.update({f"answers.{intent}": action for intent, action in self.settings.answers.items()})
        for intent, form in self.settings.switch_forms.items():
            if form not in domain.form_names:
                raise RasaException(f"ConversationRepairPolicy: '{form}' (switch_forms.{intent}) is not a form of "
                                    "the domain; see docs/conversation_repair.md.")
        if self.settings.clarify_intents:
            needed["clarify_response"] = self.settings.clarify_response
            missing = sorted(set(CLARIFY_SLOTS) - {slot.name for slot in domain.slots})
            if missing:
                raise RasaException(f"ConversationRepairPolicy: clarification needs the slots {missing} in the "
                                    "domain (type text, mapping custom); see docs/conversation_repair.md.")
        s = self.settings
        if s.calling_off and not s.cancel_intents and s.cancel_response not in known:
            raise_warning(f"ConversationRepairPolicy: '{s.cancel_response}' (cancel_response) is not in "
                          "the domain, so a form called off in words read as its request (\"drop the exchange\") is "
                          "not left. Set cancel_response to what the bot says when a form is stopped, or "
                          "calling_off: false; see docs/conversation_repair.md.")
        if self.settings.route_by_answerability and self.settings.knowledge_answer not in known:
            raise_warning(f"ConversationRepairPolicy: '{self.settings.knowledge_answer}' (knowledge_answer) is not "
                          "in the domain, so digressions are not routed by what the knowledge base answers. Set "
                          "knowledge_answer, or route_by_answerability: false; see docs/conversation_repair.md.")
        for key, name in needed.items():
            if name is not None and name not in known:
                raise RasaException(f"ConversationRepairPolicy: '{name}' ({key}) is not in the domain. Add it "
                                    "under 'responses'; see docs/conversation_repair.md.")
        return self._resource

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: Optional[Dict[Text, Any]] = None,
                                     **kwargs: Any) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        decision = self._decide(tracker, domain)
        if decision is None:
            return self._prediction(probabilities)
        action, kind, events = decision
        answerable = self._answerable(action, tracker, domain) if kind == "digression" else None
        if answerable is not None:
            action = self.settings.knowledge_answer if answerable else self.settings.default_answer
        index = domain.index_for_action(action)
        if index is None:
            return self._prediction(probabilities)
        probabilities[index] = 1.0
        if kind in REPAIRS_KINDS + FORM_REPAIRS:
            REPAIRS.labels(kind).inc()
            logger.info("ConversationRepairPolicy %s", log_fields(
                repair=kind, action=action, form=tracker.active_loop_name, slot=tracker.get_slot(REQUESTED_SLOT),
                intent=tracker.latest_message.intent.get(INTENT_NAME_KEY),
                answerable="-" if answerable is None else answerable))
        # a "no user" prediction, like RulePolicy's for an active form: only those can win inside a form
        metadata: Dict[str, Any] = {"repair": kind}
        if answerable is not None:
            metadata["answerable"] = answerable
        if kind == "switch":  # the form to start after the response
            metadata["form"] = self.settings.switch_forms[tracker.latest_message.intent.get(INTENT_NAME_KEY)]
        return self._prediction(probabilities, optional_events=events, is_no_user_prediction=True,
                                action_metadata=metadata)

    def _decide(self, tracker: DialogueStateTracker,
                domain: Domain) -> Optional[Tuple[str, str, List[Event]]]:
        """(action, kind, events applied if it wins) or None."""
        ran = tracker.get_last_event_for(ActionExecuted)
        if ran is not None and ran.policy == type(self).__name__ and tracker.latest_action_name != ACTION_LISTEN_NAME:
            # after its own answer the form asks its slot again; after a cancellation, listen
            own = (ran.metadata or {}).get("repair")
            if own == "calling_off":  # the form left: then what a cancellation says
                return self.settings.cancel_response, "cancellation", []
            if own == "digression" and tracker.active_loop_name:
                return tracker.active_loop_name, "resume", []
            if own == "switch":  # after the switch's response, the new form; after the form, its own course
                started = (ran.metadata or {}).get("form")
                return (started, "resume", []) if started and ran.action_name != started else None
            return (ACTION_LISTEN_NAME, "listen", []) if own in REPAIRS_KINDS else None
        form = tracker.active_loop_name
        if not form:
            return self._clarification(tracker)
        if self.settings.forms and form not in self.settings.forms:
            return None
        if self.settings.resume_rejected and tracker.is_active_loop_rejected \
                and tracker.latest_action_name in self._answer_actions():
            return form, "resume", []  # another policy answered what the form rejected
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not tracker.latest_message:
            return None
        intent = tracker.latest_message.intent or {}
        name = intent.get(INTENT_NAME_KEY)
        confidence = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        if name == "nlu_fallback" and self.settings.agreeing_readings:
            agreed = _agreed_answer(tracker, domain, form, self.settings.threshold)
            if agreed is not None:
                return form, "agreement", [agreed]
        question = looks_like_question(tracker.latest_message.text or "")
        if self.settings.leading_yes and not question:
            # before a switch: "great, silver headphones, please send it off" at an exchange's
            # confirmation, read as request_refund 0.88, says yes to what is held
            agreed = self._yes_that_says_more(tracker, domain, form)
            if agreed:
                return form, "agreement", agreed
        other_form = self.settings.switch_forms.get(name)
        if other_form and other_form != form and not _answered_by_mapping(tracker, domain, name):
            # a question that announces an aside asks about the other request, however sure the
            # reading: "提交前问一下，…香水塑封拆了…还能七天无理由退吗？" (request_refund 0.91)
            aside = question and announces_question(tracker.latest_message.text or "")
            if not aside and confidence >= self._switch_threshold(tracker, domain, question):
                return self._switch(tracker, domain, form, other_form)
            if question and confidence >= self.settings.threshold:  # about that request, not making it
                return self._answer_for(name), "digression", self._taken_back(tracker, domain)
        if self.settings.corrections and self._corrected(tracker, domain, form):
            # a correction is not also the answer to the question asked: "no wait, it's ES…"
            # at "shall I file it?" must not be the yes (nor the refund reason)
            return form, "correction", self._taken_back(tracker, domain, also_asked=True)
        if self.settings.leading_no and not question:
            # before the mappings: "不对，我要换的是蓝色" read as the form's request, which the
            # confirmation maps to yes, must not file the exchange
            leading = self._leading_no(tracker, domain, form)
            if leading is not None:
                return form, "agreement", [leading]
        if self._calls_off(tracker, domain, name, question):
            # before the mappings: "cancel the exchange please" read as the exchange request, which the
            # confirmation maps to yes, must not file it, nor be the wish at "which colour instead?"
            return ACTION_DEACTIVATE_LOOP_NAME, "calling_off", _emptied(domain, form, self.settings.keep_slots)
        if _answered_by_mapping(tracker, domain, name):
            if question and name not in self.settings.question_mapping_intents:
                # a question is not the answer its intent's mapping names: answered, and the value taken back
                return self._answer_for(name), "digression", self._taken_back(tracker, domain, also_asked=True)
            return form, "answer", []
        if name in self.settings.cancel_intents and self.settings.cancel_response:
            return self.settings.cancel_response, "cancellation", _leaving_form(domain, form, self.settings.keep_slots)
        digression = (name in self.settings.digression_intents
                      and (name in ("nlu_fallback", "out_of_scope") or confidence >= self.settings.threshold)
                      and (question or not self.settings.questions_only))
        # a question read, unsure, as another form's request is about it too, not a switch: "我表姐在澳门收到的
        # 东西想退，应该寄到哪儿去？" in the address form (request_refund 0.32) had started the refund form
        unsure_switch = other_form is not None and other_form != form
        if not digression and not (question and (unsure_switch or self._off_script(tracker, domain, name, confidence))):
            return None
        return self._answer_for(name), "digression", self._taken_back(tracker, domain)

    def _yes_that_says_more(self, tracker: DialogueStateTracker, domain: Domain, form: str) -> List[Event]:
        """``leading_yes``: the asked slot set to what its mapping gives a yes when the message,
        read as one of ``leading_yes_intents``, is a yes that adds nothing the form does not hold,
        and the free-text slots it filled taken back (it said them again); [] when it is not that,
        or it filled a slot of the form that is not free text. Such a yes either starts the
        message (:meth:`_leading_yes_holds`) or ends it after what is held (:func:`text.confirms_after`:
        "red's good, thanks, submit it", "大一码对了，交了吧"). A yes that adds something ("好的，换L码吧",
        "好的，转人工") is left to the NLU and the form; a leading no is ``_leading_no``'s."""
        asked = tracker.get_slot(REQUESTED_SLOT)
        form_slots = domain.required_slots_for_form(form)
        if tracker.latest_message.intent.get(INTENT_NAME_KEY) not in self.settings.leading_yes_intents:
            return []
        filled = set(_changed_by_latest_message(tracker)) & {asked, *form_slots}
        if filled - _free_text_slots(domain):
            return []
        found, value = _intent_value(domain, asked, self.settings.yes_intent, form)
        if not found:
            return []
        text = clean_text(tracker.latest_message.text or "")
        held = _held_before(tracker, form_slots)
        if not self._leading_yes_holds(tracker, domain, form, value, text, held, bool(filled)) \
                and not confirms_after(text, held):
            return []
        return [SlotSet(asked, value), *self._taken_back(tracker, domain)]

    @staticmethod
    def _leading_yes_holds(tracker: DialogueStateTracker, domain: Domain, form: str, value: Any, text: str,
                           held: List[str], filled: bool) -> bool:
        """Whether ``text`` starts with a plain yes and what follows says again what is ``held``
        ("对 就是白色" at the confirmation of an exchange to 白色; "好的，卫衣大一码，没问题了":
        :func:`text.says_again`), or nothing, or, when it ``filled`` no free-text slot, says more
        but the NLU was torn towards the yes (:func:`_torn_towards`)."""
        rest = after_leading_yes(text)
        if rest is None:
            return False
        said_again = any(restates(rest, held_value) for held_value in held) or says_again(rest, held)
        return not rest or said_again or (not filled and _torn_towards(tracker, domain, form, value))

    def _leading_no(self, tracker: DialogueStateTracker, domain: Domain, form: str) -> Optional[SlotSet]:
        """``leading_no``: the asked slot set to what its mapping gives a no when the message, read
        as one of ``leading_no_intents`` or as the form's own request, starts with a plain no ("no
        wait, I meant navy, not grey", "不对 打错了 是43" at an exchange's confirmation), unless it
        filled a slot of the form other than through the asked slot's mapping of its intent (the
        form's own request is a yes there). What follows the no is not taken: on a no nothing is
        filed, and the customer says again what they want."""
        intent = tracker.latest_message.intent.get(INTENT_NAME_KEY)
        if intent not in self.settings.leading_no_intents and intent != _form_request(tracker):
            return None
        asked = tracker.get_slot(REQUESTED_SLOT)
        filled = set(_set_by_latest_message(tracker)) & {asked, *domain.required_slots_for_form(form)}
        if filled - {asked} or (asked in filled and not _intent_mappings(domain, asked, intent)):
            return None  # it answered another slot, or the asked one as free text (a correction)
        if leading_yes_or_no(clean_text(tracker.latest_message.text or "")) is not False:
            return None
        found, value = _intent_value(domain, asked, self.settings.no_intent, form)
        return SlotSet(asked, value) if found else None

    def _calls_off(self, tracker: DialogueStateTracker, domain: Domain, intent: Optional[str], question: bool) -> bool:
        """``calling_off``: whether the message, no question, read as the request that started the
        form (or torn, ``nlu_fallback``), calls a request off by naming it (``text.calls_off``: "drop the
        exchange", "退款不要了"), and the domain has ``cancel_response`` to say so."""
        s = self.settings
        if not s.calling_off or question or s.cancel_response not in domain.action_names_or_texts:
            return False
        return intent in (_form_request(tracker), DEFAULT_NLU_FALLBACK_INTENT_NAME) \
            and calls_off(clean_text(tracker.latest_message.text or ""))

    def _answer_for(self, intent: Optional[str]) -> str:
        """The response that answers a digression with this intent."""
        # a question read as another intent (not a digression intent) was understood as a question
        understood = None if intent in self.settings.digression_intents else self.settings.question_answer
        return self.settings.answers.get(intent) or understood or self.settings.default_answer

    def _answer_actions(self) -> set:
        """The responses that answer a digression: after one of them the form goes on."""
        s = self.settings
        routed = s.knowledge_answer if s.route_by_answerability else None
        return {s.default_answer, s.question_answer, routed, *s.answers.values()} - {None}

    def _answerable(self, action: str, tracker: DialogueStateTracker, domain: Domain) -> Optional[bool]:
        """``route_by_answerability``: for a digression answered by ``knowledge_answer`` or
        ``default_answer``, whether the knowledge base answers it, as the NLG serving this
        bot judges it (``knowledge/answerability.py``); None when it is not asked (another
        response, no such NLG, the knowledge answer not in the domain) or cannot say."""
        s = self.settings
        if not s.route_by_answerability or action not in (s.knowledge_answer, s.default_answer) \
                or domain.index_for_action(s.knowledge_answer) is None:
            return None
        try:
            return knowledge_answerability.answerable(tracker, domain.responses)
        except Exception as error:  # retrieval failed: the intent decides, as without the NLG
            logger.warning("ConversationRepairPolicy: could not ask the knowledge base (%s); the digression is "
                           "answered by its intent.", type(error).__name__)
            return None

    def _off_script(self, tracker: DialogueStateTracker, domain: Domain, intent: Optional[str],
                    confidence: float) -> bool:
        """``question_digressions``: a question whose intent is none of ``answer_intents`` and
        that left the asked slot as it was (unless the slot is free text, which takes any
        message) is not the answer the form waits for, whatever the NLU called it; nor, with
        ``unsure_free_text_questions``, one with an answer intent under ``threshold`` at a
        free-text slot; nor, with ``own_request_questions``, one read as the request that
        started the form (unless that was one of ``question_mapping_intents``); nor one that
        announces it asks something aside, read as one of ``aside_intents`` under
        ``strict_switch_threshold``."""
        s = self.settings
        if not s.question_digressions or intent in s.cancel_intents:
            return False
        asked = tracker.get_slot(REQUESTED_SLOT)
        free_text = asked in _free_text_slots(domain)
        if intent in s.answer_intents:
            own_request = s.own_request_questions and intent not in s.question_mapping_intents \
                and intent == _form_request(tracker)
            unsure = s.unsure_free_text_questions and free_text and confidence < s.threshold
            aside = intent in s.aside_intents and confidence < s.strict_switch_threshold \
                and announces_question(tracker.latest_message.text or "")
            return own_request or unsure or aside
        return free_text or asked not in _set_by_latest_message(tracker)

    @staticmethod
    def _taken_back(tracker: DialogueStateTracker, domain: Domain, also_asked: bool = False) -> List[Event]:
        """The free-text slots (a ``from_text`` mapping) this message filled, and with
        ``also_asked`` the slot the form asked for, set back to their values before it."""
        taken = _free_text_slots(domain) | ({tracker.get_slot(REQUESTED_SLOT)} if also_asked else set())
        changed = _set_by_latest_message(tracker)
        return [SlotSet(slot, before) for slot, (before, _) in sorted(changed.items()) if slot in taken]

    @staticmethod
    def _corrected(tracker: DialogueStateTracker, domain: Domain, form: str) -> List[str]:
        """The form's slots (not free-text, not the one asked) that the latest message
        changed from one value to another."""
        asked = tracker.get_slot(REQUESTED_SLOT)
        free_text = _free_text_slots(domain)
        return [slot for slot, (before, after) in _set_by_latest_message(tracker).items()
                if slot in domain.required_slots_for_form(form) and slot != asked and slot not in free_text
                and before is not None and after is not None and before != after]

    def _clarification(self, tracker: DialogueStateTracker) -> Optional[Tuple[str, str, List[Event]]]:
        """Ask which of two close intents the customer means, right after their message."""
        chosen = self.settings.clarify_intents
        message = tracker.latest_message
        if not chosen or tracker.latest_action_name != ACTION_LISTEN_NAME or not message \
                or (message.text or "").startswith("/"):
            return None
        ranking = ranked_intents(tracker)
        if len(ranking) < 2:
            return None
        (first, p1), (second, p2) = ranking[:2]
        if first not in chosen or second not in chosen or p1 - p2 >= self.settings.clarify_margin:
            return None
        language = str(tracker.get_slot(self.settings.language_slot) or "")
        events: List[Event] = []
        for slot, intent in zip(CLARIFY_SLOTS[::2], (first, second)):
            labels = self.settings.intent_labels.get(intent, {})
            label = labels.get(language) or labels.get("en") or intent.replace("_", " ")
            events += [SlotSet(slot, intent), SlotSet(f"{slot}_label", label)]
        return self.settings.clarify_response, "clarification", events

    def _switch_threshold(self, tracker: DialogueStateTracker, domain: Domain, question: bool) -> float:
        """The confidence a switch needs: more when the asked slot is free text, which takes
        any message ("the colour is wrong, I wanted blue" is a refund reason, even read as
        request_exchange 0.80), or when the message is a question, which may be about the
        other request ("do you send a courier to pick it up?" read as change_address 0.83);
        unless the message, not a question, takes back what the customer was doing ("算了，还是换货吧"
        read as request_exchange 0.62 is no refund reason). More too when the message gave the asked
        slot its value: it answered ("oh, that was the bottle I called off. the pillow and lamp order,
        ES…, is the one to redirect" after a refused order, read as request_refund 0.85)."""
        if not question and changes_mind(tracker.latest_message.text or ""):
            return self.settings.threshold
        asked = tracker.get_slot(REQUESTED_SLOT)
        if question or asked in _free_text_slots(domain) or asked in _set_by_latest_message(tracker):
            return max(self.settings.threshold, self.settings.strict_switch_threshold)
        return self.settings.threshold

    def _switch(self, tracker: DialogueStateTracker, domain: Domain, form: str,
                other_form: str) -> Tuple[str, str, List[Event]]:
        """Leave ``form`` (nothing submitted; the slots ``other_form`` asks too kept) and start ``other_form``."""
        events = _leaving_form(domain, form, keep=domain.required_slots_for_form(other_form))
        return (self.settings.switch_response or other_form), "switch", events


def _free_text_slots(domain: Domain) -> set:
    return {slot.name for slot in domain.slots if any(m.get("type") == "from_text" for m in slot.mappings)}


def _form_request(tracker: DialogueStateTracker) -> Optional[str]:
    """The intent of the customer's message that started the active form, or None."""
    events = list(tracker.applied_events())
    started = max((i for i, e in enumerate(events) if isinstance(e, ActiveLoop) and e.name
                   and e.name == tracker.active_loop_name), default=None)
    if started is None:
        return None
    said = next((e for e in reversed(events[:started]) if isinstance(e, UserUttered)), None)
    return (said.intent or {}).get(INTENT_NAME_KEY) if said else None


def _leaving_form(domain: Domain, form: str, keep: Sequence[str] = ()) -> List[Event]:
    """The form deactivated, nothing asked, and its required slots emptied except ``keep``."""
    return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)] + _emptied(domain, form, keep)


def _emptied(domain: Domain, form: str, keep: Sequence[str] = ()) -> List[Event]:
    """The form's required slots emptied, except ``keep``."""
    return [SlotSet(slot, None) for slot in domain.required_slots_for_form(form) if slot not in keep]


def _intent_mappings(domain: Domain, slot_name: Optional[str], intent: Optional[str]) -> List[Dict[str, Any]]:
    """The slot's ``from_intent`` mappings that name ``intent``."""
    slot = next((s for s in domain.slots if s.name == slot_name), None)
    found = []
    for mapping in slot.mappings if slot is not None and intent else ():
        named = mapping.get("intent")
        if mapping.get("type") == "from_intent" and intent in (named if isinstance(named, list) else [named]):
            found.append(mapping)
    return found


def _intent_value(domain: Domain, slot_name: Optional[str], intent: str, form: str) -> Tuple[bool, Any]:
    """(True, value) when a ``from_intent`` mapping of the slot, with its conditions met
    while ``form`` asks for it, gives ``intent`` that value; else (False, None)."""
    for mapping in _intent_mappings(domain, slot_name, intent):
        conditions = mapping.get("conditions") or []
        if not conditions or any(c.get("active_loop") in (None, form) and c.get("requested_slot") in (None, slot_name)
                                 for c in conditions):
            return True, mapping.get("value")
    return False, None


def _agreed_answer(tracker: DialogueStateTracker, domain: Domain, form: str, threshold: float) -> Optional[SlotSet]:
    """The asked slot set to the value that the message's top two intents (under
    ``nlu_fallback``) both map to, together at least ``threshold`` sure; None when they
    differ, either maps to nothing, or the NLU was unsure of both."""
    asked = tracker.get_slot(REQUESTED_SLOT)
    top = ranked_intents(tracker, readings_only=True)[:2]
    if len(top) < 2 or top[0][1] + top[1][1] < threshold:
        return None
    readings = [_intent_value(domain, asked, intent, form) for intent, _ in top]
    if not all(found for found, _ in readings) or readings[0][1] != readings[1][1]:
        return None
    return SlotSet(asked, readings[0][1])


def _torn_towards(tracker: DialogueStateTracker, domain: Domain, form: str, value: Any) -> bool:
    """Whether the NLU was torn (``nlu_fallback``) between two readings of the message, one of
    which the asked slot maps to ``value``: "行，就照这个退吧" at a refund confirmation, read as
    stop 0.48 / request_refund 0.47, says with its words what its leading yes says."""
    if tracker.latest_message.intent.get(INTENT_NAME_KEY) != DEFAULT_NLU_FALLBACK_INTENT_NAME:
        return False
    asked = tracker.get_slot(REQUESTED_SLOT)
    return any(_intent_value(domain, asked, intent, form) == (True, value)
               for intent, _ in ranked_intents(tracker, readings_only=True)[:2])


def _held_before(tracker: DialogueStateTracker, slots: Sequence[str]) -> List[str]:
    """The values ``slots`` held before the latest user message (as text), the empty ones left out,
    and what the bot's last question quoted of them: an item is held by its code, and the
    confirmation shows its name (“儿童连帽卫衣 灰色”, "Trail running shoes, camel")."""
    changed = _set_by_latest_message(tracker)
    values = [changed[slot][0] if slot in changed else tracker.get_slot(slot) for slot in slots]
    return [str(value) for value in values if value is not None] + _quoted_in_last_question(tracker)


_QUOTED = re.compile(r"“([^”]{1,200})”|\"([^\"]{1,200})\"")


def _quoted_in_last_question(tracker: DialogueStateTracker) -> List[str]:
    """What the bot's last message before the latest user message put in quotes."""
    events = list(tracker.events)
    last_user = max((i for i, e in enumerate(events) if isinstance(e, UserUttered)), default=0)
    for event in reversed(events[:last_user]):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            return [a or b for a, b in _QUOTED.findall(event.text or "")]
    return []


def _answered_by_mapping(tracker: DialogueStateTracker, domain: Domain, intent: Optional[str]) -> bool:
    """The latest message filled the asked slot through one of its ``from_intent`` mappings for ``intent``."""
    asked = tracker.get_slot(REQUESTED_SLOT)
    return asked in _set_by_latest_message(tracker) and bool(_intent_mappings(domain, asked, intent))


def _changed_by_latest_message(tracker: DialogueStateTracker) -> Dict[str, Tuple[Any, Any]]:
    """:func:`_set_by_latest_message` without the slots set to the value they held: "好嘞，耳机就
    这么换" at the exchange confirmation sets the item to the headphones it was, which says it
    again, not something new."""
    return {slot: values for slot, values in _set_by_latest_message(tracker).items() if values[0] != values[1]}


def _set_by_latest_message(tracker: DialogueStateTracker) -> Dict[str, Tuple[Any, Any]]:
    """slot -> (value before the latest user message, value it was set to after it)."""
    events = list(tracker.applied_events())
    last_user = max((i for i, e in enumerate(events) if isinstance(e, UserUttered)), default=None)
    if last_user is None:
        return {}
    after = {e.key: e.value for e in events[last_user + 1:] if isinstance(e, SlotSet)}
    before: Dict[str, Any] = {}
    for event in events[:last_user]:
        if isinstance(event, SlotSet) and event.key in after:
            before[event.key] = event.value
    return {slot: (before.get(slot), value) for slot, value in after.items()}
