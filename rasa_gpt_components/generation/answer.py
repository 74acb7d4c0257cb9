"""One generative turn: guard the input, retrieve, prompt, generate within the
deadline, guard the output, and fall back safely at every step.

What the customer gets, in order of preference:

1. the model's answer, when it passed every guardrail and is in the
   customer's language (``reason="generated"``);
2. the best passage itself, when the model failed but retrieval was sure
   (score at least ``extractive_threshold``): grounded by construction
   (``reason="extractive:<why the model failed>"``; ``extractive:not_generated``
   when the customer's language is not one of ``generation_languages``);
3. an honest "I don't know, shall I get a human?" when nothing relevant was
   retrieved (``reason="no_passage"``), when the model itself said it does not
   know (``"model_declined"``), or when no answer was generated and retrieval
   was not sure (``"not_sure"``);
4. the safe template otherwise (``reason`` says why: input_blocklist,
   deadline, error, a guardrail's name, language).
"""

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa_gpt_components.generation import guardrails
from rasa_gpt_components.generation.backends import Generation
from rasa_gpt_components.generation.prompts import (
    DECLINE,
    DECLINE_MARKERS,
    TEMPLATE,
    build_prompt,
    build_rephrase_prompt,
)
from rasa_gpt_components.knowledge.retrieval import Hit, HybridRetriever
from rasa_gpt_components.text import clean_text, detect_language

logger = logging.getLogger(__name__)


@dataclass
class AnswerSettings:
    """Options of the answer pipeline (the NLG's ``endpoints.yml`` keys)."""

    bot_name: str = "our shop"
    max_new_tokens: int = 64
    max_chars: int = 300
    history_turns: int = 2
    extractive_threshold: float = 0.45
    rerank_candidates: int = 5
    rerank_min_seconds: float = 2.0  # rerank only with this much of the budget left
    min_support: float = 0.75
    generation_languages: Sequence[str] = ("zh", "en")
    blocklist: Sequence[str] = guardrails.DEFAULT_BLOCKLIST


DECLINE_REASONS = ("no_passage", "model_declined", "not_sure")
_NOT_WRITTEN = ("deadline", "error", "not_generated")  # how a generation can end with nothing to judge


def is_template_reason(reason: str) -> bool:
    """Whether an answer with this ``reason`` is the template (the model failed or
    was not asked), rather than a generated answer, a passage or the decline."""
    return not (reason in ("generated",) + DECLINE_REASONS or reason.startswith("extractive"))


@dataclass
class Answer:
    """A reply and how it was made (sent as the reply's metadata)."""

    text: str
    generated: bool
    reason: str
    language: str
    passages: List[str] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    ms: float = 0.0
    tokens: int = 0
    guardrails: List[str] = field(default_factory=list)

    def metadata(self) -> Dict[str, Any]:
        """JSON-safe description for the reply's metadata."""
        data = asdict(self)
        data.pop("text")
        data["ms"] = round(self.ms, 1)
        data["scores"] = [round(s, 3) for s in self.scores]
        return data


class KnowledgeAnswerer:
    """Answers from a knowledge base with a generation backend."""

    def __init__(
        self,
        retriever: HybridRetriever,
        backend: Any,
        settings: Optional[AnswerSettings] = None,
        reranker: Optional[Any] = None,
    ) -> None:
        self.retriever = retriever
        self.backend = backend
        self.settings = settings or AnswerSettings()
        self.reranker = reranker  # knowledge.rerank.LikelihoodReranker, or None

    def retrieve(self, text: str, deadline: float) -> List[Hit]:
        """The passages for ``text``, best first: the retriever's candidates,
        reordered by the reranker when there is one and time for it."""
        s = self.settings
        if self.reranker is None:
            return self.retriever.search(text)
        hits = self.retriever.search(text, top_k=max(s.rerank_candidates, self.retriever.top_k))
        if len(hits) > 1 and deadline - time.monotonic() > s.rerank_min_seconds:
            hits = self.reranker.rerank(text, hits)
        return hits[: self.retriever.top_k]

    def only_retrieves(self, language: str) -> bool:
        """True when answering in ``language`` needs no model call beyond retrieval
        (no generation, no reranking): milliseconds, never a wait for a generation slot."""
        return language not in self.settings.generation_languages and self.reranker is None

    def answer(
        self, message: str, history: Sequence[Tuple[str, str]] = (), deadline: Optional[float] = None
    ) -> Answer:
        """Answer ``message`` by ``deadline`` (``time.monotonic()`` seconds; None: no limit)."""
        started = time.monotonic()
        deadline = float("inf") if deadline is None else deadline
        text = clean_text(message)
        language = detect_language(text)

        def done(answer: Answer) -> Answer:
            answer.ms = 1000 * (time.monotonic() - started)
            logger.debug("Generative answer: %s", answer.metadata())
            return answer

        if not text or guardrails.check_input(text, self.settings.blocklist).refused:
            return done(Answer(TEMPLATE[language], False, "input_blocklist" if text else "empty", language))
        hits = self.retrieve(text, deadline)
        ids, scores = [h.passage.id for h in hits], [h.score for h in hits]
        if not hits:
            return done(Answer(DECLINE[language], False, "no_passage", language))
        passages = [h.passage.text for h in hits]
        prompt = build_prompt(
            text, passages, language, history[-2 * self.settings.history_turns :] if self.settings.history_turns else (),
            bot_name=self.settings.bot_name,
        )
        if language not in self.settings.generation_languages:
            generation = Generation("", 0, 0.0, "not_generated")
        elif time.monotonic() >= deadline:  # retrieval or a queue used the time up
            generation = Generation("", 0, 0.0, "deadline")
        else:
            generation = self.backend.generate(prompt, self.settings.max_new_tokens, deadline)
        if generation.stopped not in _NOT_WRITTEN and declines(generation.text):
            # honest, whatever the guardrails would say of its wording
            return done(Answer(DECLINE[language], False, "model_declined", language, ids, scores, tokens=generation.tokens))
        verdict, failure = self._judge(generation, passages, prompt.system, language, question=text)
        reasons = verdict.reasons if verdict else []
        if not failure and verdict is not None:
            return done(Answer(verdict.text, True, "generated", language, ids, scores, tokens=generation.tokens, guardrails=reasons))
        # sure: the retriever's best score (the reranker only reorders), a passage in the right language
        if max(scores) >= self.settings.extractive_threshold and hits[0].passage.language == language:
            extract = guardrails.limit_length(hits[0].passage.text, self.settings.max_chars).text
            return done(Answer(extract, False, f"extractive:{failure}", language, ids[:1], scores[:1], tokens=generation.tokens, guardrails=reasons))
        if failure == "not_generated":
            return done(Answer(DECLINE[language], False, "not_sure", language, ids, scores))
        return done(Answer(TEMPLATE[language], False, failure, language, ids, scores, tokens=generation.tokens, guardrails=reasons))

    def rephrase(self, text: str, deadline: Optional[float] = None) -> Answer:
        """Reword one of the bot's own responses by ``deadline``; the original
        ``text`` comes back (``generated=False``, ``reason`` says why) unless the
        new wording passed the guardrails with ``text`` as its only source."""
        started = time.monotonic()
        deadline = float("inf") if deadline is None else deadline
        language = detect_language(text)
        kept = Answer(text, False, "not_generated", language)
        if language not in self.settings.generation_languages or not clean_text(text):
            kept.ms = 1000 * (time.monotonic() - started)
            return kept
        prompt = build_rephrase_prompt(text, language, self.settings.bot_name)
        generation = self.backend.generate(prompt, self.settings.max_new_tokens, deadline)
        kept.tokens = generation.tokens
        verdict, failure = self._judge(generation, [text], prompt.system, language)
        kept.guardrails = verdict.reasons if verdict else []
        if failure:
            kept.reason = failure
        else:
            kept = Answer(verdict.text, True, "rephrased", language, tokens=generation.tokens, guardrails=kept.guardrails)
        kept.ms = 1000 * (time.monotonic() - started)
        return kept

    def _judge(
        self, generation: Generation, sources: Sequence[str], system: str, language: str, question: str = ""
    ) -> Tuple[Optional[guardrails.Verdict], str]:
        """The guardrails' verdict on ``generation`` (None when nothing was
        written) and why it may not be sent ("" when it may)."""
        if generation.stopped in _NOT_WRITTEN:
            return None, generation.stopped
        verdict = guardrails.check_answer(
            generation.text, sources, system, self.settings.max_chars, self.settings.blocklist,
            question=question, min_support=self.settings.min_support,
        )
        if verdict.refused:
            return verdict, verdict.reasons[-1] if verdict.reasons else "guardrail"
        if detect_language(verdict.text) != language:
            return verdict, "language"
        return verdict, ""


def declines(text: str) -> bool:
    """Whether a generated answer says that it does not know."""
    lowered = text.lower()
    return any(marker in lowered for marker in DECLINE_MARKERS)
