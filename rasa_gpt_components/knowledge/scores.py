"""How retrieval's parts make one score, shared by the retriever
(``retrieval.py``) and the fit that chooses its weights (``fit.py``)."""

from typing import Tuple

import numpy as np

# what a fit's thresholds are compared with: the retrieval score of the best passage, or the
# best cosine of any passage's form (knowledge/fit.py chooses on development questions)
SCORE_GATE, COSINE_GATE = "score", "cosine"
Scores = Tuple[np.ndarray, np.ndarray, np.ndarray]  # BM25, cosine, topic probability: one value a passage


def combine(scores: Scores, bm25_weight: float, topic_weight: float = 0.0) -> np.ndarray:
    """The retrieval score of every passage from its :meth:`HybridRetriever.component_scores`."""
    bm25, dense, topic = scores
    fused = bm25_weight * bm25 + (1.0 - bm25_weight) * dense
    return topic_weight * topic + (1.0 - topic_weight) * fused if topic_weight else fused
