"""A conversation's turns, read from its events as dictionaries (``event.as_dict()``
in Rasa, ``tracker.events`` in the action server), from the latest session start
or restart on."""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from rasa_gpt_components.text import clean_text

_STARTS = {"session_started", "restart"}
# a response whose variations say ``metadata: {offers_handoff: true}`` offers the customer a person
OFFERS_HANDOFF = "offers_handoff"
ANSWERED = {"generated", "passage", "rephrased"}  # outcomes of a generative reply that answered
_LISTEN = "action_listen"
_BOOKKEEPING = {_LISTEN, "action_session_start", "action_unlikely_intent"}


@dataclass
class Turn:
    """One customer message and what the bot did until the next one."""

    text: str
    intent: Optional[str]
    entities: List[Dict[str, Any]]
    sentiment: Dict[str, Any]  # SentimentAnalyzer's output; {} without one
    actions: List[str] = field(default_factory=list)  # in order, without action_listen
    bot_texts: List[str] = field(default_factory=list)
    bot_metadata: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def answered_by(self) -> Optional[str]:
        """The first action the bot ran for this message."""
        return self.actions[0] if self.actions else None

    @property
    def declined(self) -> bool:
        """Whether a generated reply to this message said the bot does not know
        (the knowledge base had nothing for it), whichever response asked for it:
        ``utter_knowledge_answer`` declines like the fallback does."""
        return "declined" in self.outcomes

    def offered_a_person(self, offer_actions: Iterable[str]) -> bool:
        """Whether the bot's reply to this message offered a person: an "I don't know" (each
        offers one) or one of ``offer_actions`` (the frustration offer, the reply to a complaint)."""
        return self.declined or bool(set(self.actions) & set(offer_actions))

    @property
    def answered(self) -> bool:
        """Whether a generated reply to this message answered it (from the knowledge base)."""
        return bool(ANSWERED & set(self.outcomes))

    def unanswered(self, fallback_action: str) -> bool:
        """Whether the bot could not answer this message: a reply declined, or the
        fallback answered it without anything from the knowledge base."""
        return self.declined or (self.answered_by == fallback_action and not self.answered)

    @property
    def outcomes(self) -> List[Optional[str]]:
        """The ``outcome`` of each reply to this message (None: not a generated reply)."""
        return [(m.get("generative") or {}).get("outcome") for m in self.bot_metadata]

    @property
    def negative(self) -> float:
        """The message's probability of being negative (0 when it is not labelled negative)."""
        if self.sentiment.get("label") != "negative":
            return 0.0
        scores = self.sentiment.get("scores") or {}
        return float(scores.get("negative", self.sentiment.get("confidence", 0.0)) or 0.0)


@dataclass
class Conversation:
    """The current session: its turns, the slots set in it and the forms it ran."""

    turns: List[Turn]
    slots: Dict[str, Any]
    forms_started: List[str]
    forms_completed: List[str]
    active_form: Optional[str]


def read_conversation(events: Sequence[Dict[str, Any]]) -> Conversation:
    """The latest session of ``events`` (dicts as in Rasa's tracker JSON)."""
    start = 0
    for index, event in enumerate(events):
        if event.get("event") in _STARTS:
            start = index + 1
    turns: List[Turn] = []
    slots: Dict[str, Any] = {}
    started: List[str] = []
    completed: List[str] = []
    active: Optional[str] = None
    last_action: Optional[str] = None
    for event in events[start:]:
        kind = event.get("event")
        if kind == "user":
            turns.append(_turn(event))
        elif kind == "action":
            last_action = event.get("name")
            if last_action not in _BOOKKEEPING and turns:
                turns[-1].actions.append(str(last_action))
        elif kind == "bot" and event.get("text") and turns:
            turns[-1].bot_texts.append(clean_text(event["text"]))
            turns[-1].bot_metadata.append(response_metadata(event))
        elif kind == "slot":
            slots[str(event.get("name"))] = event.get("value")
        elif kind == "active_loop":
            name = event.get("name")
            if name:
                started.append(name)
            elif active and last_action != "action_deactivate_loop":  # not stopped: done
                completed.append(active)
            active = name
    return Conversation(turns, slots, started, completed, active)


def offering_responses(responses: Dict[str, List[Dict[str, Any]]]) -> Tuple[str, ...]:
    """The responses of a domain that offer a person (``metadata: {offers_handoff: true}`` in a
    variation): declared once, in the domain, for the policy's yes-to-an-offer and the summary's reason."""
    return tuple(name for name, variations in responses.items()
                 if any((variation.get("metadata") or {}).get(OFFERS_HANDOFF) for variation in variations or ()))


def response_metadata(event: Dict[str, Any]) -> Dict[str, Any]:
    """The ``metadata`` of the response a bot event was made from: Rasa keeps a
    rendered response's extra keys in the event's ``metadata``, so the response's
    own ``metadata`` (``generative``, ``handoff``) is ``metadata.metadata`` there."""
    outer = event.get("metadata") or {}
    inner = outer.get("metadata") if isinstance(outer.get("metadata"), dict) else {}
    return {**outer, **inner}


def _turn(event: Dict[str, Any]) -> Turn:
    parse = event.get("parse_data") or {}
    intent = parse.get("intent") or {}
    return Turn(
        text=clean_text(event.get("text") or ""),
        intent=intent.get("name"),
        entities=[e for e in parse.get("entities") or [] if isinstance(e, dict)],
        sentiment=parse.get("sentiment") if isinstance(parse.get("sentiment"), dict) else {},
    )
