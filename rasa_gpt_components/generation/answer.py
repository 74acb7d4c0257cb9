"""One generative turn: guard the input, retrieve, prompt, generate within the
deadline, guard the output, and fall back safely at every step.

What the customer gets (:class:`Outcome`), in order of preference, and why
(:class:`Why`):

1. ``GENERATED``: the model's answer, when it passed every guardrail and is in
   the customer's language (``Why.PASSED``);
2. ``PASSAGE``: the best passage itself, when the model failed but retrieval was
   sure (score at least ``extractive_threshold``): grounded by construction;
   the reason is why the model failed (``Why.NOT_GENERATED`` when the
   customer's language is not one of ``generation_languages``);
3. ``DECLINED``: an honest "I don't know, shall I get a human?" when nothing
   relevant was retrieved (``NO_PASSAGE``), when the model itself said it does
   not know (``MODEL_DECLINED``), or when no answer was generated and retrieval
   was not sure (``NOT_SURE``);
4. ``TEMPLATE``: the safe template otherwise (the reason says why: the input
   blocklist, the deadline, an error, a guardrail's name, the language).

A rephrased response is ``REPHRASED`` or, when the rewording failed, the
response's own ``TEMPLATE``.
"""

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa_gpt_components.generation import guardrails
from rasa_gpt_components.generation.backends import Generation
from rasa_gpt_components.generation.prompts import (
    DECLINE,
    DECLINE_MARKERS,
    OTHER_LANGUAGE,
    TEMPLATE,
    build_prompt,
    build_rephrase_prompt,
)
from rasa_gpt_components.knowledge.retrieval import Hit, HybridRetriever
from rasa_gpt_components.text import detect_language

logger = logging.getLogger(__name__)


RERANK_MIN_SECONDS = 2.0  # rerank only with this much of the budget left


@dataclass(frozen=True)
class AnswerSettings:
    """Options of the answer pipeline (the NLG's ``endpoints.yml`` keys of the
    same names); checked once, here."""

    bot_name: str = "our shop"
    max_new_tokens: int = 64
    max_chars: int = 300
    history_turns: int = 2
    extractive_threshold: float = 0.45  # a passage this relevant is sent as it is when no answer is generated
    min_support: float = 0.75  # share of an answer's words found in the passages or the question
    generation_languages: Tuple[str, ...] = ("zh", "en")  # the others get the knowledge base's text
    blocklist: Tuple[str, ...] = tuple(guardrails.DEFAULT_BLOCKLIST)

    def __post_init__(self) -> None:
        unknown = set(self.generation_languages) - {"zh", "en"}
        if isinstance(self.generation_languages, str) or unknown:
            raise ValueError(f"generation_languages must be a list of zh/en, got {self.generation_languages!r}.")
        for name in ("max_new_tokens", "max_chars"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not 0.0 <= float(self.min_support) <= 1.0:
            raise ValueError(f"min_support must be between 0 and 1, got {self.min_support}.")


class Outcome(str, Enum):
    """What the customer got."""

    GENERATED = "generated"  # the model's answer
    REPHRASED = "rephrased"  # one of the bot's responses, reworded by the model
    PASSAGE = "passage"  # the knowledge base's own text
    DECLINED = "declined"  # "I don't know; shall I get a human?"
    TEMPLATE = "template"  # the response's template text, or the built-in safe one


class Why(str, Enum):
    """Why the customer got it."""

    PASSED = "passed"  # generated and every guardrail passed
    NOT_GENERATED = "not_generated"  # no generation in this language
    NO_PASSAGE = "no_passage"
    MODEL_DECLINED = "model_declined"
    NOT_SURE = "not_sure"
    EMPTY = "empty"
    BUSY = "busy"  # no generation slot within the budget
    DEADLINE = "deadline"
    ERROR = "error"
    LANGUAGE = "language"  # the answer came out in another language
    # guardrails that refused the message or the answer
    INPUT_BLOCKLIST = "input_blocklist"
    OUTPUT_BLOCKLIST = "output_blocklist"
    PROMPT_DISCLOSURE = "prompt_disclosure"
    INVENTED_ENTITIES = "invented_entities"
    UNSUPPORTED = "unsupported"
    ECHO = "echo"
    CONTRADICTION = "contradiction"
    GUARDRAIL = "guardrail"  # another guardrail

    @property
    def is_guardrail(self) -> bool:
        """Whether a guardrail refused the message or the answer."""
        return self in _GUARDRAILS

    @classmethod
    def refused_by(cls, guardrail: str) -> "Why":
        """The reason for a refusal by the guardrail named ``guardrail``."""
        try:
            return cls(guardrail)
        except ValueError:
            return cls.GUARDRAIL


_GUARDRAILS = frozenset(
    {Why.INPUT_BLOCKLIST, Why.OUTPUT_BLOCKLIST, Why.PROMPT_DISCLOSURE, Why.INVENTED_ENTITIES, Why.UNSUPPORTED,
     Why.ECHO, Why.CONTRADICTION, Why.LANGUAGE, Why.EMPTY, Why.GUARDRAIL}
)
# how a generation can end with nothing to judge (Generation.stopped; Why is a str enum)
_NOT_WRITTEN = frozenset({Why.DEADLINE, Why.ERROR, Why.NOT_GENERATED})


@dataclass
class Answer:
    """A reply and how it was made (sent as the reply's metadata)."""

    text: str
    outcome: Outcome
    why: Why
    language: str
    passages: List[str] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    ms: float = 0.0
    tokens: int = 0
    guardrails: List[str] = field(default_factory=list)
    retrieval_ms: Optional[float] = None  # the retriever's (and reranker's) share of ``ms``; None: not reached

    @property
    def generated(self) -> bool:
        """Whether the text was written by the model."""
        return self.outcome in (Outcome.GENERATED, Outcome.REPHRASED)

    def metadata(self) -> Dict[str, Any]:
        """JSON-safe description for the reply's metadata."""
        return {
            "outcome": self.outcome.value,
            "reason": self.why.value,
            "generated": self.generated,
            "language": self.language,
            "passages": list(self.passages),
            "scores": [round(s, 3) for s in self.scores],
            "ms": round(self.ms, 1),
            "retrieval_ms": None if self.retrieval_ms is None else round(self.retrieval_ms, 1),
            "tokens": self.tokens,
            "guardrails": list(self.guardrails),
        }


def template_answer(language: str, why: Why, ms: float = 0.0) -> Answer:
    """The safe template, for ``why``."""
    return Answer(TEMPLATE[language], Outcome.TEMPLATE, why, language, ms=ms)


class KnowledgeAnswerer:
    """Answers from a knowledge base with a generation backend."""

    def __init__(
        self,
        retriever: HybridRetriever,
        backend: Any,
        settings: AnswerSettings = AnswerSettings(),
        reranker: Optional[Any] = None,
    ) -> None:
        self.retriever = retriever
        self.backend = backend
        self.settings = settings
        self.reranker = reranker  # generation.rerank.LikelihoodReranker, or None

    def retrieve(self, text: str, deadline: float, language: Optional[str] = None, context: Optional[str] = None
                 ) -> List[Hit]:
        """The passages for ``text``, best first (each topic in ``language`` when it has
        that version; ``context``: the customer's previous message): the retriever's
        candidates, reordered by the reranker when there is one and time for it."""
        if self.reranker is None:
            return self.retriever.search(text, language=language, context=context)
        candidates = max(self.retriever.settings.rerank_candidates, self.retriever.top_k)
        hits = self.retriever.search(text, top_k=candidates, language=language, context=context)
        if len(hits) > 1 and deadline - time.monotonic() > RERANK_MIN_SECONDS:
            hits = self.reranker.rerank(text, hits)
        return hits[: self.retriever.top_k]

    def only_retrieves(self, language: str) -> bool:
        """True when answering in ``language`` needs no model call beyond retrieval
        (no generation, no reranking): milliseconds, never a wait for a generation slot."""
        return language not in self.settings.generation_languages and self.reranker is None

    def answer(
        self, text: str, history: Sequence[Tuple[str, str]] = (), deadline: Optional[float] = None,
        language: Optional[str] = None,
    ) -> Answer:
        """Answer ``text`` (cleaned by the caller: the NLG's entry) by ``deadline``
        (``time.monotonic()`` seconds; None: no limit) in ``language`` (default: the text's)."""
        started = time.monotonic()
        deadline = float("inf") if deadline is None else deadline
        language = language or detect_language(text)
        s = self.settings
        retrieval_ms: Optional[float] = None

        def done(answer: Answer) -> Answer:
            answer.ms = 1000 * (time.monotonic() - started)
            answer.retrieval_ms = retrieval_ms
            logger.debug("Generative answer: %s", answer.metadata())
            return answer

        if not text:
            return done(template_answer(language, Why.EMPTY))
        if guardrails.check_input(text, s.blocklist).refused:
            return done(template_answer(language, Why.INPUT_BLOCKLIST))
        retrieving = time.monotonic()
        hits = self.retrieve(text, deadline, language, previous_message(history))
        retrieval_ms = 1000 * (time.monotonic() - retrieving)
        ids, scores = [h.passage.id for h in hits], [h.score for h in hits]
        if not hits:
            return done(Answer(DECLINE[language], Outcome.DECLINED, Why.NO_PASSAGE, language))
        passages = [h.passage.text for h in hits]
        prompt = build_prompt(
            text, passages, language, history[-2 * s.history_turns :] if s.history_turns else (), bot_name=s.bot_name,
        )
        if language not in s.generation_languages:
            generation = Generation("", 0, 0.0, Why.NOT_GENERATED.value)
        elif time.monotonic() >= deadline:  # retrieval or a queue used the time up
            generation = Generation("", 0, 0.0, Why.DEADLINE.value)
        else:
            generation = self.backend.generate(prompt, s.max_new_tokens, deadline)
        tokens = generation.tokens
        if generation.stopped not in _NOT_WRITTEN and declines(generation.text):
            # honest, whatever the guardrails would say of its wording
            return done(Answer(DECLINE[language], Outcome.DECLINED, Why.MODEL_DECLINED, language, ids, scores, tokens=tokens))
        verdict, failure = self._judge(generation, passages, prompt.system, language, question=text)
        reasons = verdict.reasons if verdict else []
        if failure is None and verdict is not None:
            return done(Answer(verdict.text, Outcome.GENERATED, Why.PASSED, language, ids, scores, tokens=tokens, guardrails=reasons))
        assert failure is not None
        # sure (retrieval's bar): the best passage; one in another language (its topic has no
        # version in the customer's) comes with a line saying so
        if self._sure(hits):
            extract = guardrails.limit_length(hits[0].passage.text, s.max_chars).text
            if hits[0].passage.language != language:
                extract = f"{OTHER_LANGUAGE[language]}\n{extract}"
            return done(Answer(extract, Outcome.PASSAGE, failure, language, ids[:1], scores[:1], tokens=tokens, guardrails=reasons))
        if failure is Why.NOT_GENERATED:
            return done(Answer(DECLINE[language], Outcome.DECLINED, Why.NOT_SURE, language, ids, scores))
        return done(Answer(TEMPLATE[language], Outcome.TEMPLATE, failure, language, ids, scores, tokens=tokens, guardrails=reasons))

    def answerable(self, text: str, language: Optional[str] = None, history: Sequence[Tuple[str, str]] = ()) -> bool:
        """Whether ``answer`` would answer ``text`` (cleaned by the caller) from the
        knowledge base rather than decline it, by retrieval alone: the message passes
        the input guardrail and retrieval is sure of its best passage (the rule by which
        the passage is sent when generation does not answer). With generation on, the
        model may still answer from passages under that bar, or decline."""
        language = language or detect_language(text)
        if not text or guardrails.check_input(text, self.settings.blocklist).refused:
            return False
        return self._sure(self.retrieve(text, float("inf"), language, previous_message(history)))

    def _sure(self, hits: Sequence[Hit]) -> bool:
        """Retrieval whose own gate let the passages through (a fit's thresholds, chosen on
        development questions, or the coverage gate), else the best score (the reranker only
        reorders) at least ``extractive_threshold``."""
        return bool(hits) and (self.retriever.decides
                               or max(h.score for h in hits) >= self.settings.extractive_threshold)

    def rephrase(self, text: str, deadline: Optional[float] = None) -> Answer:
        """Reword one of the bot's own responses by ``deadline``; the original
        ``text`` comes back (``Outcome.TEMPLATE``, the reason says why) unless the
        new wording passed the guardrails with ``text`` as its only source."""
        started = time.monotonic()
        deadline = float("inf") if deadline is None else deadline
        language = detect_language(text)
        kept = Answer(text, Outcome.TEMPLATE, Why.NOT_GENERATED, language)
        if language not in self.settings.generation_languages or not text.strip():
            kept.ms = 1000 * (time.monotonic() - started)
            return kept
        prompt = build_rephrase_prompt(text, language, self.settings.bot_name)
        generation = self.backend.generate(prompt, self.settings.max_new_tokens, deadline)
        kept.tokens = generation.tokens
        verdict, failure = self._judge(generation, [text], prompt.system, language)
        kept.guardrails = verdict.reasons if verdict else []
        if failure is not None:
            kept.why = failure
        else:
            assert verdict is not None
            kept = Answer(verdict.text, Outcome.REPHRASED, Why.PASSED, language, tokens=generation.tokens, guardrails=kept.guardrails)
        kept.ms = 1000 * (time.monotonic() - started)
        return kept

    def _judge(
        self, generation: Generation, sources: Sequence[str], system: str, language: str, question: str = ""
    ) -> Tuple[Optional[guardrails.Verdict], Optional[Why]]:
        """The guardrails' verdict on ``generation`` (None when nothing was
        written) and why it may not be sent (None when it may)."""
        if generation.stopped in _NOT_WRITTEN:
            return None, Why(generation.stopped)
        verdict = guardrails.check_answer(
            generation.text, sources, system, self.settings.max_chars, self.settings.blocklist,
            question=question, min_support=self.settings.min_support,
        )
        if verdict.refused:
            return verdict, Why.refused_by(verdict.reasons[-1] if verdict.reasons else "guardrail")
        if detect_language(verdict.text) != language:
            return verdict, Why.LANGUAGE
        return verdict, None


def previous_message(history: Sequence[Tuple[str, str]]) -> Optional[str]:
    """The customer's last message in ``history`` (not a button's ``/intent`` payload), or None."""
    said = [text for speaker, text in history if speaker == "user" and text and not text.startswith("/")]
    return said[-1] if said else None


def declines(text: str) -> bool:
    """Whether a generated answer says that it does not know."""
    lowered = text.lower()
    return any(marker in lowered for marker in DECLINE_MARKERS)
