"""How much of a question a knowledge-base entry covers, token by token.

A question the base does not answer is often close to an entry that does answer
something near it ("can I withdraw an exchange request?" beside the entry on
how to request an exchange): the sentence vectors and the words mostly agree,
and one word, the one the question is about, is nowhere in the entry. Coverage
looks at each token of the question: its best cosine to any token of the entry
(its question, paraphrases and answer; the last layer's states of the sentence
encoder, e5), averaged with each token weighted by its rarity in the base
(idf over the entries; a token the base never uses weighs most). An entry that
answers the question has a close token for nearly every one of the question's;
a near miss leaves its key token alone. (This is BERTScore's recall, with the
entry as the reference.)

Measured on the reference bot's development questions and the seen conversation
sets (docs/benchmarks.md, "Coverage"): it tells answerable from unanswerable
questions better than the retrieval score or the best cosine, so
``retrieval.gate: coverage`` lets the retriever's best few entries through only
when they cover the question (``retrieval.py``).
"""

import math
from collections import Counter
from typing import Any, List, Sequence

import numpy as np

from rasa_gpt_components.knowledge.base import Passage
from rasa_gpt_components.knowledge.embedding_cache import cached_token_states

class TokenCoverage:
    """``coverage(question, indices)``: how much of ``question`` each passage of
    ``indices`` covers (0..1). The passages' token states are computed once (kept on
    disk, like the passage embeddings)."""

    def __init__(self, passages: Sequence[Passage], encoder: Any) -> None:
        if not getattr(encoder, "has_token_states", False):
            name = getattr(getattr(encoder, "spec", None), "name", "the GPT model's states")
            raise ValueError(f"retrieval.gate: coverage reads the states of each token, which {name} does not "
                             "give; set retrieval.encoder to multilingual-e5-small or multilingual-e5-small-int8.")
        self.encoder = encoder
        form_states = iter(cached_token_states(encoder, [form for p in passages for form in p.forms], "query"))
        answer_states = cached_token_states(encoder, [p.text or " " for p in passages], "passage")
        self._states: List[np.ndarray] = []
        document_frequency: Counter = Counter()
        for passage, answer in zip(passages, answer_states):
            parts = [next(form_states) for _ in passage.forms] + [answer]
            self._states.append(np.vstack([states for _, states in parts]).astype(np.float16))
            document_frequency.update(set(np.concatenate([ids for ids, _ in parts]).tolist()))
        count = len(passages)
        self._idf = {token: math.log((count + 1) / (n + 1)) + 1.0 for token, n in document_frequency.items()}
        self._unseen_idf = math.log(count + 1) + 1.0  # a token no entry uses

    def __call__(self, question: str, indices: Sequence[int]) -> np.ndarray:
        """The coverage of ``question`` by each passage of ``indices`` (their order)."""
        ids, states = self.encoder.token_states([question])[0]
        if not len(ids) or not len(indices):
            return np.zeros(len(indices))
        weights = np.array([self._idf.get(int(token), self._unseen_idf) for token in ids])
        out = np.empty(len(indices))
        for n, index in enumerate(indices):
            closest = (states @ self._states[index].T.astype(np.float32)).max(1)
            out[n] = float((weights * closest).sum() / weights.sum())
        return out
