"""Hybrid retrieval over the knowledge base: BM25 over words (jieba for
Chinese) plus the cosine similarity of the GPT model's pooled embeddings.

Both scores are put on a 0..1 scale before they are mixed:

- BM25 is divided by what a passage of average length that has each of the
  question's words once would score, the sum of their idf (capped at 1); a
  word the knowledge base never uses counts with the highest idf, so a
  question about something the base does not cover scores low even when one
  common word matches.
- Embeddings are centred on the knowledge base's mean (pooled GPT states share
  a large common direction) and compared by cosine; negative values count as 0.
  A FAQ entry is as close as its closest form: question, paraphrase or answer.

``score = bm25_weight * bm25 + (1 - bm25_weight) * cosine``; passages under
``threshold`` are not returned, so "nothing relevant" is an empty list. With a
topic model (``knowledge/topics.py``, carried by a retrieval fit) the score is
``topic_weight * p(topic) + (1 - topic_weight) * that``, p the classifier's
calibrated probability of the passage's topic. A fit may instead compare its
threshold with the best cosine of any form (its ``gate``): the score ranks, the
cosine decides whether anything is answered. With ``gate: coverage`` (or a fit
whose gate it is, with its thresholds) the best ``coverage_candidates`` topics
are read again token by token (``knowledge/coverage.py``): those that cover at
least ``coverage_threshold`` of the question are returned, the best covered
first, and nothing else is (a question that only names something else, "那西安呢",
is read with the previous message too).

A follow-up question ("and how long does that take?") may come with the
customer's previous message (``context_weight`` above 0): the entries are
scored again for the two messages together, and that score reorders the
question's own few best topics (``scores.in_context``); see ``search``.

A topic (the versions of one FAQ entry in different languages,
``Passage.topic_key``) counts once, with the score of its best version, and
is returned as its version in the question's language when it has one: a
question in English that matches the Chinese wording of an entry gets the
English entry.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

import numpy as np

from rasa_gpt_components.knowledge.base import KnowledgeBase, Passage
from rasa_gpt_components.knowledge.coverage import TokenCoverage
from rasa_gpt_components.knowledge.embedding_cache import cached_encode
from rasa_gpt_components.knowledge.scores import (COSINE_GATE, COVERAGE_GATE, SCORE_GATE, Scores, best_per_topic,
                                                  combine, in_context)
from rasa_gpt_components.models.sentence import SENTENCE_ENCODERS
from rasa_gpt_components.text import detect_language, elliptical_question, without_lead_in, words

if TYPE_CHECKING:  # pragma: no cover
    from rasa_gpt_components.knowledge.fit import RetrievalFit
    from rasa_gpt_components.knowledge.topics import TopicModel
    from rasa_gpt_components.models.encoder import GPTEncoder
    from rasa_gpt_components.models.sentence import SentenceEncoder


@dataclass(frozen=True)
class RetrievalSettings:
    """The NLG's ``retrieval:`` options; checked once, here."""

    bm25_weight: float = 0.5  # 1.0: BM25 alone, no embeddings
    threshold: float = 0.35  # passages scoring less are not returned
    top_k: int = 3
    layer: int = 6  # the GPT layer whose pooled states are the embeddings
    encoder: Optional[str] = None  # a sentence encoder (models/sentence.py) instead of the GPT's states
    # a file of `rasa-gpt knowledge fit` (knowledge/fit.py): its encoder, BM25 weight and
    # per-language thresholds replace encoder, bm25_weight and threshold
    fit: Optional[str] = None
    rerank: bool = False  # reorder the candidates by the model's likelihood of the question
    rerank_candidates: int = 5
    # follow-up questions: the customer's previous message reorders the question's own best
    # `context_candidates` topics by score + context_weight * score(previous + question);
    # 0: off (a fit chosen with `--followups` sets both)
    context_weight: float = 0.0
    context_candidates: int = 5
    # what decides whether anything is answered: the score (threshold here, the NLG's
    # extractive_threshold), or `coverage`: how much of the question the best
    # `coverage_candidates` topics cover, at least `coverage_threshold` (a number, or one
    # per language: {zh: 0.8, en: 0.8}); needs an e5 encoder (knowledge/coverage.py)
    gate: str = SCORE_GATE
    coverage_threshold: Union[float, Dict[str, float]] = 0.8
    coverage_candidates: int = 3
    # the coverage gate also reads the question without what leads in to it ("hmm first -",
    # "if I go ahead,", "先问下，"; text.without_lead_in), the higher coverage counting
    coverage_without_lead_in: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.bm25_weight) <= 1.0:
            raise ValueError(f"retrieval.bm25_weight must be between 0 and 1, got {self.bm25_weight}.")
        if float(self.context_weight) < 0.0:
            raise ValueError(f"retrieval.context_weight must be at least 0, got {self.context_weight}.")
        if self.gate not in GATES:
            raise ValueError(f"retrieval.gate must be one of {', '.join(GATES)}, got '{self.gate}'.")
        thresholds = self.coverage_threshold if isinstance(self.coverage_threshold, dict) \
            else {"": self.coverage_threshold}
        for language, value in thresholds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError("retrieval.coverage_threshold must be a number between 0 and 1 or one per "
                                 f"language ({{zh: 0.8, en: 0.8}}), got {self.coverage_threshold!r}.")
        for name in ("top_k", "layer", "rerank_candidates", "context_candidates", "coverage_candidates"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"retrieval.{name} must be at least 1, got {getattr(self, name)}.")
        if self.encoder is not None and self.encoder not in SENTENCE_ENCODERS:
            raise ValueError(f"retrieval.encoder must be one of {', '.join(sorted(SENTENCE_ENCODERS))} "
                             f"(or left out: the GPT model's states), got '{self.encoder}'.")

    @property
    def dense(self) -> bool:
        """Whether embeddings take part in the score."""
        return float(self.bm25_weight) < 1.0

    def coverage_threshold_for(self, language: str) -> float:
        """The coverage a passage needs in ``language`` (a language not listed: the highest)."""
        if isinstance(self.coverage_threshold, dict):
            return float(self.coverage_threshold.get(language, max(self.coverage_threshold.values(), default=0.0)))
        return float(self.coverage_threshold)


GATES = (SCORE_GATE, COVERAGE_GATE)


def gates_on_coverage(settings: RetrievalSettings, fit: Optional["RetrievalFit"]) -> bool:
    """Whether what is answered is decided by coverage: ``gate: coverage``, or a fit whose gate it is."""
    return settings.gate == COVERAGE_GATE or (fit is not None and fit.gate == COVERAGE_GATE)


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its scores (all 0..1)."""

    passage: Passage
    score: float
    bm25: float
    dense: float
    coverage: Optional[float] = None  # ``gate: coverage``: how much of the question it covers


class HybridRetriever:
    """Search a :class:`KnowledgeBase`; build once, then call :meth:`search`."""

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        settings: RetrievalSettings = RetrievalSettings(),
        encoder: Optional[Union["GPTEncoder", "SentenceEncoder"]] = None,
        fit: Optional["RetrievalFit"] = None,
        topics: Optional["TopicModel"] = None,
    ) -> None:
        from rank_bm25 import BM25Okapi

        self.knowledge_base = knowledge_base
        self.settings = settings
        self.encoder = encoder if settings.dense else None
        self.bm25_weight = float(settings.bm25_weight) if encoder is not None else 1.0
        self.fit = fit  # its thresholds per language replace ``threshold``
        self.topics = topics
        self.topic_weight = float(fit.topic_weight) if fit is not None and topics is not None else 0.0
        self.threshold = float(settings.threshold)
        self.top_k = int(settings.top_k)
        self._passages = list(knowledge_base.passages)
        self._topics = [p.topic_key for p in self._passages]
        self._by_topic = {(p.topic_key, p.language): i for i, p in reversed(list(enumerate(self._passages)))}
        tokens = [words(p.search_text) or ["<empty>"] for p in self._passages]
        self._bm25 = BM25Okapi(tokens) if self._passages else None
        self._max_idf = max(self._bm25.idf.values()) if self._bm25 and self._bm25.idf else 1.0
        self._vectors: Optional[np.ndarray] = None
        self._owner: List[int] = []
        if self.encoder is not None and self._passages:
            forms, owner = [], []
            for index, passage in enumerate(self._passages):
                for form in (*passage.forms, passage.text):
                    if form:
                        forms.append(form)
                        owner.append(index)
            vectors = cached_encode(self.encoder, forms).astype(np.float64)  # from disk after the first start
            self._mean = vectors.mean(0)
            self._vectors = _unit(vectors - self._mean)
            self._owner = owner
        self.coverage: Optional[TokenCoverage] = None
        if settings.gate == COVERAGE_GATE and fit is not None:
            raise ValueError("retrieval.gate: coverage and retrieval.fit both decide what is answered; use one of "
                             "them (a fit whose gate is coverage gates so with its own thresholds).")
        if gates_on_coverage(settings, fit):
            self.coverage = TokenCoverage(self._passages, encoder)

    @property
    def decides(self) -> bool:
        """Whether what this retriever returns is sure to be answered (a fit's thresholds or
        the coverage gate chose it); otherwise the NLG's ``extractive_threshold`` decides."""
        return self.fit is not None or self.coverage is not None

    def search(
        self, question: str, top_k: Optional[int] = None, language: Optional[str] = None, context: Optional[str] = None
    ) -> List[Hit]:
        """The best passages for ``question``, best first, at most ``top_k``,
        none under the threshold, one per topic (its version in ``language``
        when it has one, else its best-scoring version).

        ``context``, the customer's previous message, may reorder the question's
        best few topics (``context_weight``, scores.in_context). When it changes
        which topic comes first, the question is read together with it by the
        threshold (or the fit's gate) too, each score the higher of the two
        readings; otherwise the threshold sees the question alone. Each hit's
        score is the question's own."""
        if not question or not self._passages:
            return []
        scores = self.component_scores(question)
        score = combine(scores, self.bm25_weight, self.topic_weight)
        bm25, dense, _ = scores
        order = best_per_topic(score, self._topics)  # each topic's best passage, best first
        gated, best_cosine = score, dense.max()
        weight = float(self.settings.context_weight)
        moved = False  # the context changed which topic comes first
        if context and weight > 0.0 and len(order) > 1:
            read_together = self.component_scores(f"{context} {question}")
            both = combine(read_together, self.bm25_weight, self.topic_weight)
            reordered = in_context(order, score, both, self._topics, weight, int(self.settings.context_candidates))
            if reordered[0] != order[0]:
                gated, best_cosine, moved = np.maximum(score, both), max(best_cosine, read_together[1].max()), True
            order = reordered
        if self.coverage is not None:
            read_with = context if moved or (context and elliptical_question(question)) else None
            return self._covered(question, order, scores, score, language, read_with, top_k)
        threshold = self.threshold
        if self.fit is not None:
            threshold = self.fit.thresholds.get(language or detect_language(question), threshold)
            if self.fit.gate == COSINE_GATE:  # the question is answered when some form is this close
                if best_cosine < threshold:
                    return []
                threshold = float("-inf")
        hits: List[Hit] = []
        for best in order:
            if len(hits) == (top_k or self.top_k):
                break
            if gated[best] < threshold:
                continue  # only a topic the context moved up can follow one under the threshold
            shown = self._version(best, language)
            hits.append(Hit(self._passages[shown], float(score[best]), float(bm25[best]), float(dense[best])))
        return hits

    def _covered(self, question: str, order: List[int], scores: Scores, score: np.ndarray,
                 language: Optional[str], context: Optional[str], top_k: Optional[int]) -> List[Hit]:
        """The best ``coverage_candidates`` topics of ``order`` that cover the question (read
        with ``context`` too, the higher of the two: given when the context moved a topic up,
        or when the question only names something else and means the one before it, "那西安呢"),
        best covered first."""
        bm25, dense, _ = scores
        best, shown, covered = self.covered(question, order, language, context)
        language = language or detect_language(question)
        threshold = self.settings.coverage_threshold_for(language)
        if self.fit is not None:
            threshold = self.fit.thresholds.get(language, threshold)
        ranked = [n for n in np.argsort(-covered, kind="stable") if covered[n] >= threshold]
        return [Hit(self._passages[shown[n]], float(score[best[n]]), float(bm25[best[n]]), float(dense[best[n]]),
                    float(covered[n])) for n in ranked[: top_k or self.top_k]]

    def covered(self, question: str, order: List[int], language: Optional[str], context: Optional[str] = None
                ) -> Tuple[List[int], List[int], np.ndarray]:
        """The best ``coverage_candidates`` topics of ``order`` (best_per_topic), the passage
        of each that is shown (its version in ``language``) and how much of the question each
        covers (read with ``context`` too, the higher of the two), in ``order``'s order."""
        assert self.coverage is not None
        best = order[: int(self.settings.coverage_candidates)]
        shown = [self._version(index, language) for index in best]
        covered = self.coverage(question, shown)
        trimmed = without_lead_in(question) if self.settings.coverage_without_lead_in else None
        if trimmed:
            covered = np.maximum(covered, self.coverage(trimmed, shown))
        if context:
            covered = np.maximum(covered, self.coverage(f"{context} {question}", shown))
        return best, shown, covered

    def component_scores(self, question: str) -> Scores:
        """Every passage's BM25 score, cosine and topic probability (0..1; zeros for a
        part the retriever does not use) for ``question``."""
        return self._bm25_scores(question), self._dense_scores(question), self._topic_scores(question)

    def _version(self, index: int, language: Optional[str]) -> int:
        """The passage of ``index``'s topic in ``language`` (``index`` itself when there is none)."""
        if language is None or self._passages[index].language == language:
            return index
        return self._by_topic.get((self._passages[index].topic_key, language), index)

    def _bm25_scores(self, question: str) -> np.ndarray:
        terms = words(question)
        if not terms:
            return np.zeros(len(self._passages))
        assert self._bm25 is not None
        best = sum(self._bm25.idf.get(t, self._max_idf) for t in terms)
        return np.clip(np.asarray(self._bm25.get_scores(terms)) / max(best, 1e-9), 0.0, 1.0)

    def _dense_scores(self, question: str) -> np.ndarray:
        scores = np.zeros(len(self._passages))
        if self._vectors is None or self.encoder is None:
            return scores
        vector = _unit(self.encoder.encode([question]).astype(np.float64) - self._mean)[0]
        np.maximum.at(scores, self._owner, np.clip(self._vectors @ vector, 0.0, 1.0))
        return scores

    def _topic_scores(self, question: str) -> np.ndarray:
        if self.topics is None:
            return np.zeros(len(self._passages))
        probability = self.topics.probabilities(question)
        return np.array([probability.get(p.topic_key, 0.0) for p in self._passages])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
