"""How retrieval's parts make one score, shared by the retriever
(``retrieval.py``) and the fit that chooses its weights (``fit.py``)."""

from typing import Dict, List, Sequence, Tuple

import numpy as np

# what a fit's thresholds are compared with: the retrieval score of the best passage, the
# best cosine of any passage's form, or how much of the question the best few passages cover
# token by token (knowledge/coverage.py; knowledge/fit.py chooses on development questions)
SCORE_GATE, COSINE_GATE, COVERAGE_GATE = "score", "cosine", "coverage"
Scores = Tuple[np.ndarray, np.ndarray, np.ndarray]  # BM25, cosine, topic probability: one value a passage


def combine(scores: Scores, bm25_weight: float, topic_weight: float = 0.0) -> np.ndarray:
    """The retrieval score of every passage from its :meth:`HybridRetriever.component_scores`."""
    bm25, dense, topic = scores
    fused = bm25_weight * bm25 + (1.0 - bm25_weight) * dense
    return topic_weight * topic + (1.0 - topic_weight) * fused if topic_weight else fused


def best_per_topic(score: np.ndarray, topics: Sequence[str]) -> List[int]:
    """Indices of each topic's best-scoring passage, best first (``topics``: one a passage)."""
    seen, best = set(), []
    for index in np.argsort(-score, kind="stable"):
        if topics[index] not in seen:
            seen.add(topics[index])
            best.append(int(index))
    return best


def in_context(order: List[int], score: np.ndarray, with_context: np.ndarray, topics: Sequence[str],
               weight: float, candidates: int) -> List[int]:
    """``order`` (best_per_topic of ``score``) with its first ``candidates`` reordered by
    ``score + weight * with_context`` (the score of the previous message + the question; each
    topic at its best version): the question picks the candidates (topics it matches at all,
    score above 0), the context breaks near-ties."""
    by_topic: Dict[str, float] = {}
    for index, value in enumerate(with_context):
        by_topic[topics[index]] = max(by_topic.get(topics[index], 0.0), float(value))
    size = sum(1 for i in order[:candidates] if score[i] > 0.0)
    head = sorted(order[:size], key=lambda i: -(score[i] + weight * by_topic[topics[i]]))
    return head + order[size:]
