"""Retrieval learned from the bot's own data: a classifier over the knowledge
base's topics.

Each topic (the versions of one FAQ entry in every language, or one document
passage) is a class; its examples are what the knowledge base already says
about it: the question, its paraphrases, each sentence of the answer and the
whole answer, in every language it is written in. The classifier is
GPTIntentClassifier's head (``nlu/head.py``: standardised sentence vectors and
character n-grams, class-balanced logistic regression, temperature-calibrated)
over the same sentence encoders (``nlu/features.py``), so the bot holds one
copy of each encoder and a question the NLU has just read is not encoded twice
(the encoders cache recent texts).

A topic's calibrated probability is its score in ``HybridRetriever`` when a
retrieval fit (``knowledge/fit.py``) carries a topic model: near-duplicate
entries ("shipping to Hong Kong" / "... to Macau") are told apart by the words
that differ between them, which a similarity to one form cannot weigh, and a
question in one language finds the entry written in the other because both
versions are one class. Trained ahead of time by ``rasa-gpt knowledge fit
--topics`` (never at bot start-up) and saved as plain arrays (no pickles).
"""

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from rasa_gpt_components.knowledge.base import KnowledgeBase
from rasa_gpt_components.nlu.features import Featurizer
from rasa_gpt_components.nlu.head import HeadSettings, IntentHead, fit_head
from rasa_gpt_components.nlu.settings import DEFAULT_FEATURES

# one class per topic, every topic answerable: no out-of-scope threshold (the
# fit's answer threshold decides); C chosen on the development questions
# (docs/generative_fallback.md, "Retrieval learned from the knowledge base")
HEAD_SETTINGS = HeadSettings(C=1.0, oos_detection=False, class_weight="balanced", random_seed=0)
_SENTENCE_END = re.compile(r"(?<=[。！？；.!?;])\s*")
MIN_SENTENCE_CHARS = 4


def topic_examples(knowledge_base: KnowledgeBase) -> Tuple[List[str], List[str]]:
    """(texts, topics): every passage's question, paraphrases, answer sentences
    and whole answer, each labelled with the passage's topic."""
    texts: List[str] = []
    topics: List[str] = []
    for passage in knowledge_base.passages:
        sentences = [s.strip() for s in _SENTENCE_END.split(passage.text) if len(s.strip()) >= MIN_SENTENCE_CHARS]
        forms = [passage.title, *passage.paraphrases, *sentences]
        if len(sentences) != 1:
            forms.append(passage.text)
        for form in dict.fromkeys(f for f in forms if f):  # each once, in order
            texts.append(form)
            topics.append(passage.topic_key)
    return texts, topics


@dataclass
class TopicModel:
    """A fitted topic classifier: build one with :meth:`train` or :meth:`load`."""

    head: IntentHead
    features: Tuple[str, ...]
    fingerprint: str  # the encoders' weights it was trained with

    @classmethod
    def train(
        cls,
        knowledge_base: KnowledgeBase,
        features: Sequence[str] = DEFAULT_FEATURES,
        settings: HeadSettings = HEAD_SETTINGS,
        progress: bool = False,
    ) -> "TopicModel":
        """Fit the classifier on :func:`topic_examples` of ``knowledge_base``."""
        texts, topics = topic_examples(knowledge_base)
        if len(set(topics)) < 2:
            raise ValueError("A topic model needs a knowledge base with at least two topics.")
        featurizer = _featurizer(features)
        vectors = featurizer.encode(texts, progress=progress, desc="topic examples")
        head = fit_head(vectors, topics, settings, texts=texts)
        return cls(head, featurizer.names, featurizer.fingerprint)

    @cached_property
    def featurizer(self) -> Featurizer:
        """The encoders of ``features`` (each loaded once per process), built once."""
        return _featurizer(self.features)

    def probabilities(self, question: str) -> Dict[str, float]:
        """Each topic's calibrated probability for ``question`` (they sum to 1)."""
        row = self.head.predict_proba(self.featurizer.encode([question]), [question])[0]
        return dict(zip(self.head.labels, row.tolist()))

    def check(self) -> None:
        """A ValueError when the encoders loaded now are not the ones it was trained with."""
        loaded = self.featurizer.fingerprint
        if loaded != self.fingerprint:
            raise ValueError(f"its encoders changed since training ({self.fingerprint} -> {loaded}); "
                             "run `rasa-gpt knowledge fit --topics` again")

    def save(self, path: Path) -> None:
        arrays = self.head.to_arrays()
        arrays["topic_features"] = np.array(self.features, dtype=str)
        arrays["topic_fingerprint"] = np.array(self.fingerprint, dtype=str)
        with open(path, "wb") as file:  # np.savez would add ".npz" to a name without it
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path: Path) -> "TopicModel":
        """Read a saved model; a ValueError that names the file when it cannot be used."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            features = tuple(str(name) for name in arrays.pop("topic_features"))
            fingerprint = str(arrays.pop("topic_fingerprint"))
            return cls(IntentHead.from_arrays(arrays), features, fingerprint)
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"topic model '{path}' cannot be used ({error}); "
                             "write it again with `rasa-gpt knowledge fit --topics`.") from None


def _featurizer(features: Sequence[str]) -> Featurizer:
    def no_gpt():  # the topic model reads packaged sentence encoders only
        raise ValueError("a topic model cannot use 'gpt' features")

    return Featurizer(features, no_gpt)
