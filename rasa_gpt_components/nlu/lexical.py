"""Character n-gram TF-IDF features: the lexical half of the hybrid head.

A GPT's pooled states carry meaning; exact words and characters (product
names, 人寿保险 vs 汽车保险) are carried better by n-grams, which is what makes
Rasa's CountVectorsFeaturizer strong with few examples. The head uses both.

Stored as plain arrays (vocabulary and idf), never as a pickle.
"""

from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import csr_matrix


def _analyzer(min_n: int, max_n: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(min_n, max_n), lowercase=True).build_analyzer()


class CharNgrams:
    """Sub-linear TF-IDF of character n-grams inside word boundaries, L2-normalised."""

    def __init__(self, vocabulary: Dict[str, int], idf: np.ndarray, min_n: int = 1, max_n: int = 4):
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float32)
        self.min_n, self.max_n = min_n, max_n
        self._analyze = _analyzer(min_n, max_n)
        # the last batch and its rows: two heads sharing this vocabulary transform a batch once
        self._last: Optional[Tuple[Tuple[str, ...], csr_matrix]] = None

    @classmethod
    def fit(cls, texts: Sequence[str], min_n: int = 1, max_n: int = 4, min_df: int = 1) -> "CharNgrams":
        """Learn the vocabulary and idf from training texts."""
        analyze = _analyzer(min_n, max_n)
        document_frequency: Counter = Counter()
        for text in texts:
            document_frequency.update(set(analyze(text)))
        terms = sorted(t for t, df in document_frequency.items() if df >= min_df)
        n = len(texts)
        idf = np.array([np.log((1 + n) / (1 + document_frequency[t])) + 1.0 for t in terms])
        return cls({t: i for i, t in enumerate(terms)}, idf, min_n, max_n)

    @property
    def dimension(self) -> int:
        """Number of n-gram features."""
        return len(self.vocabulary)

    def transform(self, texts: Iterable[str]) -> csr_matrix:
        """``[n, dimension]`` sparse matrix (the same object for the same texts twice running)."""
        batch = tuple(texts)
        last = self._last  # read once: another thread may replace it meanwhile
        if last is None or last[0] != batch:
            last = (batch, self._transform(batch))
            self._last = last
        return last[1]

    def forget(self) -> None:
        """Drop the remembered batch (a benchmark that times the same text twice)."""
        self._last = None

    def _transform(self, texts: Sequence[str]) -> csr_matrix:
        rows: List[int] = []
        cols: List[int] = []
        values: List[float] = []
        count = 0
        for row, text in enumerate(texts):
            count += 1
            counts = Counter(
                self.vocabulary[g] for g in self._analyze(text) if g in self.vocabulary
            )
            if not counts:
                continue
            index = np.fromiter(counts.keys(), dtype=np.int64)
            weight = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))) * self.idf[index]
            weight /= np.linalg.norm(weight) or 1.0
            rows.extend([row] * len(index))
            cols.extend(index.tolist())
            values.extend(weight.tolist())
        return csr_matrix((values, (rows, cols)), shape=(count, self.dimension), dtype=np.float32)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Named arrays for ``np.savez``."""
        terms = sorted(self.vocabulary, key=self.vocabulary.get)
        return {
            "lex_terms": np.array(terms, dtype=str),
            "lex_idf": self.idf,
            "lex_range": np.array([self.min_n, self.max_n]),
        }

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "CharNgrams":
        """Inverse of :meth:`to_arrays`."""
        terms = [str(t) for t in arrays["lex_terms"]]
        min_n, max_n = (int(v) for v in arrays["lex_range"])
        return cls({t: i for i, t in enumerate(terms)}, arrays["lex_idf"], min_n, max_n)
