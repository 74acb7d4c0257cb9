"""What GPTIntentClassifier's head reads: the sentence vectors of the sources
named in ``features``, side by side.

A source is ``gpt`` (pooled hidden states of the shared GPT model, through
``GPTEncoder``) or a packaged sentence encoder (``models/sentence.py``:
``multilingual-e5-small``, ``use-multilingual``). Each is loaded once per
process and shared with the other components; a source that is not named is
never loaded. Which sources are the default, and why: docs/intent_classifier.md.
"""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from rasa_gpt_components.models.encoder import GPTEncoder
from rasa_gpt_components.models.sentence import SENTENCE_ENCODERS, SentenceEncoder, load_sentence_encoder

GPT = "gpt"


def check_features(features: Sequence[str]) -> Tuple[str, ...]:
    """``features`` as a tuple, or a ValueError that names what is wrong."""
    if isinstance(features, str):
        features = [features]
    names = tuple(str(name) for name in features or ())
    known = (GPT, *SENTENCE_ENCODERS)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"features: unknown source(s) {unknown}; known: {', '.join(known)}.")
    if not names:
        raise ValueError(f"features must name at least one of {', '.join(known)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"features names a source twice: {list(names)}.")
    return names


class Featurizer:
    """``encode(texts)``: the named sources' vectors concatenated, in the order named."""

    def __init__(self, names: Sequence[str], gpt: Callable[[], GPTEncoder]) -> None:
        self.names = check_features(names)
        self._gpt_factory = gpt
        self._sources: Optional[List[Union[GPTEncoder, SentenceEncoder]]] = None

    @property
    def sources(self) -> List[Union[GPTEncoder, SentenceEncoder]]:
        """The encoders, loaded on first use."""
        if self._sources is None:
            self._sources = [self._gpt_factory() if name == GPT else load_sentence_encoder(name) for name in self.names]
        return self._sources

    @property
    def gpt(self) -> Optional[GPTEncoder]:
        """The GPT encoder when ``gpt`` is a source (LoRA adapts it), else None."""
        return self.sources[self.names.index(GPT)] if GPT in self.names else None  # type: ignore[return-value]

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "features") -> np.ndarray:
        parts = [
            source.encode(texts, progress=progress, desc=f"{desc} ({name})")
            for name, source in zip(self.names, self.sources)
        ]
        return np.hstack(parts) if len(parts) > 1 else parts[0]

    @property
    def fingerprint(self) -> str:
        """The sources' weights; for ``[gpt]`` alone, the GPT model's fingerprint
        (what classifiers trained before ``features`` existed recorded)."""
        return "|".join(source.fingerprint for source in self.sources)

    def warm_up(self) -> None:
        for source in self.sources:
            source.warm_up()
