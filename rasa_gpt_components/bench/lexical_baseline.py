"""The cheap baseline every classifier benchmark reports in the same run:
character n-gram TF-IDF (``nlu/lexical.py``: 1-4 characters inside word
boundaries) and a logistic regression. It trains in seconds.

``C`` is given, or chosen on the training data only (3-fold cross-validation
over ``C_GRID``), never on the test set.
"""

import time
from typing import Dict, List, Optional, Sequence

import numpy as np

C_GRID = (1.0, 10.0, 100.0)


class LexicalBaseline:
    """Fit with :meth:`train`; :meth:`proba` gives class probabilities in ``labels`` order."""

    def __init__(self, seed: int, C: Optional[float] = None) -> None:
        self.seed = seed
        self.C = C
        self.info: Dict[str, float] = {}

    def train(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        from sklearn.linear_model import LogisticRegression

        from rasa_gpt_components.nlu.lexical import CharNgrams

        started = time.perf_counter()
        self.ngrams = CharNgrams.fit(list(texts))
        x = self.ngrams.transform(texts)
        if self.C is None:
            self.C = self._choose_c(x, np.asarray(labels))
        self.model = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.model.fit(x, list(labels))
        self.labels: List[str] = [str(label) for label in self.model.classes_]
        self.info = {"C": float(self.C), "train_seconds": round(time.perf_counter() - started, 1)}

    def _choose_c(self, x, y: np.ndarray) -> float:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        folds = min(3, int(np.unique(y, return_counts=True)[1].min()))
        if folds < 2:
            return 10.0
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        scores = {
            c: cross_val_score(LogisticRegression(C=c, max_iter=2000), x, y, cv=splitter).mean() for c in C_GRID
        }
        return max(scores, key=scores.get)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(self.ngrams.transform(texts))

    def predict(self, texts: Sequence[str]) -> List[str]:
        return [self.labels[k] for k in self.proba(texts).argmax(1)]
