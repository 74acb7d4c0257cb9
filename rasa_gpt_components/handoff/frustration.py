"""How frustrated the customer is, turn by turn: a score between 0 and 1.

Each customer message adds the weights of the signals it shows, and the score
so far fades by ``decay`` at every message, so a customer who calms down is
not offered a human three turns later:

- ``negative_sentiment``: times the message's probability of being negative
  (SentimentAnalyzer's output; without the component this signal is silent);
- ``repeated_fallback``: the bot answered this message with the fallback, or a
  reply to it declined (a question read as ``faq`` that the knowledge base has
  nothing for), and an earlier message of the session too;
- ``repeated_question``: the message says again what an earlier one said
  (at least ``similarity`` of their character pairs in common);
- ``shouting``: ``！！``, ``!!``, ``???``, a message in CAPITALS, or words in
  CAPITALS inside one ("you keep telling me it's shipped. I KNOW IT'S SHIPPED").

A weight of 0 switches its signal off. The defaults are set by hand so that
about two angry messages, or one angry and shouted one after a fallback, reach
``level`` 0.7; ``rasa-gpt bench handoff`` measures how often the offer comes.
"""

import re
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa_gpt_components.handoff.conversation import Turn

_SHOUT_MARKS = re.compile(r"[!！]{2,}|[?？]{3,}")
_LETTERS = re.compile(r"[A-Za-z]")
_UPPER = re.compile(r"[A-Z]")
_KEEP = re.compile(r"[\w\u3400-\u9fff]")
_CAPITAL_WORDS = re.compile(r"\b[A-Z][A-Z']*(?:[ \t]+[A-Z][A-Z']*)+\b")  # two or more words in capitals


@dataclass(frozen=True)
class FrustrationSettings:
    """The ``frustration`` options of GenerativeFallbackPolicy."""

    level: Optional[float] = 0.7  # offer a human at or above this score; None: never offer
    offer_action: str = "utter_offer_human"
    slot: Optional[str] = "frustration"  # the score is set here each message (when in the domain)
    ignore_intents: Tuple[str, ...] = ("human_handoff",)  # the customer asks for a human already
    decay: float = 0.6
    negative_sentiment: float = 0.4
    repeated_fallback: float = 0.3
    repeated_question: float = 0.3
    shouting: float = 0.25
    similarity: float = 0.6

    def __post_init__(self) -> None:
        for name in ("decay", "similarity"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"frustration {name} must be between 0 and 1.")
        for name in SIGNALS:
            if float(getattr(self, name)) < 0.0:
                raise ValueError(f"frustration {name} must not be negative (0 switches it off).")
        if self.level is not None and not 0.0 < float(self.level) <= 1.0:
            raise ValueError("frustration level must be above 0 and at most 1, or null (never offer).")

    @classmethod
    def from_config(cls, given: Optional[Dict[str, Any]]) -> "FrustrationSettings":
        """The settings of a ``frustration:`` mapping; ValueError naming an unknown option."""
        given = dict(given or {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown frustration options {unknown}.")
        if "ignore_intents" in given:
            given["ignore_intents"] = tuple(given["ignore_intents"] or ())
        return cls(**given)


SIGNALS = ("negative_sentiment", "repeated_fallback", "repeated_question", "shouting")


def shouting(text: str) -> bool:
    """``！！``, ``!!``, ``???``, at least 6 Latin letters, 70 % of them capitals, or words in
    capitals shouted inside a calmer message: two or more in a row with 6+ letters
    ("tracking hasn't updated in 4 days. FOUR DAYS"; not "SF Express", "ES2611210006", "LED TV")."""
    if _SHOUT_MARKS.search(text):
        return True
    letters = len(_LETTERS.findall(text))
    if letters >= 6 and len(_UPPER.findall(text)) >= 0.7 * letters:
        return True
    return any(len(_UPPER.findall(run.group())) >= 6 for run in _CAPITAL_WORDS.finditer(text))


def _pairs(text: str) -> set:
    kept = "".join(_KEEP.findall(text.lower()))
    return {kept[i : i + 2] for i in range(len(kept) - 1)}


def repeats(text: str, earlier: Sequence[str], similarity: float) -> bool:
    """Whether ``text`` says again what one of ``earlier`` said (4+ characters kept)."""
    mine = _pairs(text)
    if len(mine) < 3:
        return False
    for other in earlier:
        theirs = _pairs(other)
        if theirs and len(mine & theirs) / len(mine | theirs) >= similarity:
            return True
    return False


def signals(turns: Sequence[Turn], fallback_action: str, settings: FrustrationSettings) -> List[Dict[str, float]]:
    """The weighted signals of every turn, in order."""
    shown: List[Dict[str, float]] = []
    fallbacks = 0
    for index, turn in enumerate(turns):
        fell_back = turn.answered_by == fallback_action or turn.declined
        found = {
            "negative_sentiment": settings.negative_sentiment * turn.negative,
            "repeated_fallback": settings.repeated_fallback if fallbacks and fell_back else 0.0,
            "repeated_question": settings.repeated_question
            if repeats(turn.text, [t.text for t in turns[:index]], settings.similarity) else 0.0,
            "shouting": settings.shouting if shouting(turn.text) else 0.0,
        }
        fallbacks += fell_back
        shown.append({name: value for name, value in found.items() if value > 0})
    return shown


def frustration(turns: Sequence[Turn], fallback_action: str, settings: FrustrationSettings) -> float:
    """The score after the latest turn, between 0 and 1."""
    score = 0.0
    for found in signals(turns, fallback_action, settings):
        score = min(1.0, settings.decay * score + sum(found.values()))
    return score
