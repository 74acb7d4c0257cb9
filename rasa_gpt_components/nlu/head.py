"""The trained part of ``head`` mode: a calibrated linear classifier over GPT
features, and an out-of-scope detector that needs no out-of-scope examples.

- Features are standardised, then a multinomial logistic regression is fitted.
- Temperature scaling is fitted on out-of-fold logits (k-fold over the training
  data), so confidences mean what they say even for few-shot intents.
- Out-of-scope: Mahalanobis distance to the nearest intent mean under a shared,
  shrunk covariance. The threshold is the (1 - ``oos_rate``) quantile of the
  out-of-fold distances of the training messages: about ``oos_rate`` of
  in-scope messages are rejected, whatever the data.

Everything is kept as numpy arrays (saved with ``np.savez``; no pickles).
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

_EPS = 1e-6


@dataclass
class IntentHead:
    """A fitted head. Build one with :func:`fit_head`."""

    labels: List[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [classes, dim]
    bias: np.ndarray  # [classes]
    temperature: float = 1.0
    class_means: Optional[np.ndarray] = None  # [classes, dim], standardised space
    precision: Optional[np.ndarray] = None  # [dim, dim]
    oos_threshold: float = float("inf")
    info: Dict[str, float] = field(default_factory=dict)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated logits ``[n, classes]``."""
        return self._standardise(features) @ self.weights.T + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``[n, classes]``."""
        return softmax(self.logits(features) / self.temperature)

    def oos_distance(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest intent mean ``[n]``."""
        if self.class_means is None or self.precision is None:
            return np.zeros(len(features))
        return nearest_mahalanobis(self._standardise(features), self.class_means, self.precision)

    def is_out_of_scope(self, features: np.ndarray) -> np.ndarray:
        """Boolean ``[n]``: far from every intent seen in training."""
        return self.oos_distance(features) > self.oos_threshold

    def oos_probability(self, features: np.ndarray) -> np.ndarray:
        """``[n]``: 0 for in-scope rows; for out-of-scope rows a confidence in
        (0.5, 1) that grows with how far past the threshold they are."""
        distance = self.oos_distance(features)
        beyond = distance > self.oos_threshold
        ratio = np.where(beyond, self.oos_threshold / np.maximum(distance, _EPS), 1.0)
        return np.where(beyond, 1.0 - 0.5 * ratio, 0.0)

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Everything needed to rebuild the head, as named arrays."""
        arrays = {
            "labels": np.array(self.labels, dtype=object).astype(str),
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
            "temperature": np.array(self.temperature),
            "oos_threshold": np.array(self.oos_threshold),
        }
        if self.class_means is not None and self.precision is not None:
            arrays["class_means"] = self.class_means
            arrays["precision"] = self.precision
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "IntentHead":
        """Inverse of :meth:`to_arrays`."""
        return cls(
            labels=[str(label) for label in arrays["labels"]],
            mean=arrays["mean"],
            scale=arrays["scale"],
            weights=arrays["weights"],
            bias=arrays["bias"],
            temperature=float(arrays["temperature"]),
            class_means=arrays.get("class_means"),
            precision=arrays.get("precision"),
            oos_threshold=float(arrays["oos_threshold"]),
        )


def fit_head(
    features: np.ndarray,
    labels: Sequence[str],
    c: float = 1.0,
    max_iter: int = 500,
    calibration_folds: int = 5,
    oos_rate: float = 0.03,
    oos_detection: bool = True,
    random_seed: int = 0,
) -> IntentHead:
    """Fit the classifier, its temperature and the out-of-scope detector."""
    features = np.asarray(features, dtype=np.float64)
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    mean = features.mean(0)
    scale = features.std(0) + _EPS
    x = (features - mean) / scale
    if len(names) == 1:
        dim = x.shape[1]
        head = IntentHead(names, mean, scale, np.zeros((1, dim)), np.zeros(1))
        return head
    weights, bias = _fit_logistic(x, y, c, max_iter, random_seed)
    head = IntentHead(names, mean, scale, weights, bias)

    folds = _folds(y, calibration_folds, random_seed)
    if folds is None:
        logger.debug("Some intent has a single example: no calibration, no out-of-scope threshold.")
        if oos_detection:
            head.class_means, head.precision = _gaussian(x, y, len(names))
        return head
    if oos_detection:
        head.class_means, head.precision = _gaussian(x, y, len(names))
    oof_logits = np.zeros((len(y), len(names)))
    oof_distance = np.zeros(len(y))
    for train_index, test_index in folds:
        w, b = _fit_logistic(x[train_index], y[train_index], c, max_iter, random_seed)
        oof_logits[test_index] = x[test_index] @ w.T + b
        if oos_detection:
            # fold means, the shared metric: distances comparable to prediction time
            means = _class_means(x[train_index], y[train_index], len(names))
            oof_distance[test_index] = nearest_mahalanobis(x[test_index], means, head.precision)
    head.temperature = fit_temperature(oof_logits, y)
    head.info["oof_accuracy"] = float((oof_logits.argmax(1) == y).mean())
    if oos_detection:
        head.oos_threshold = float(np.quantile(oof_distance, 1.0 - oos_rate))
    return head


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, c: float, max_iter: int, random_seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=max_iter, random_state=random_seed)
    model.fit(x, y)
    classes = int(y.max()) + 1
    weights = np.zeros((classes, x.shape[1]))
    bias = np.full(classes, -1e4)  # a class absent from this fold is never predicted
    if len(model.classes_) == 2:  # sklearn's binary form: one weight vector
        weights[model.classes_[1]], bias[model.classes_[1]] = model.coef_[0], model.intercept_[0]
        weights[model.classes_[0]], bias[model.classes_[0]] = 0.0, 0.0
    else:
        weights[model.classes_] = model.coef_
        bias[model.classes_] = model.intercept_
    return weights, bias


def _folds(y: np.ndarray, folds: int, random_seed: int) -> Optional[list]:
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    if folds < 2 or smallest < 2:
        return None
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=random_seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _class_means(x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Mean of each class; a class with no rows gets +inf (never the nearest)."""
    means = np.full((classes, x.shape[1]), np.inf)
    for label in np.unique(y):
        means[label] = x[y == label].mean(0)
    return means


def _gaussian(x: np.ndarray, y: np.ndarray, classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Class means and the shrunk precision of the shared (tied) covariance."""
    from sklearn.covariance import LedoitWolf

    means = _class_means(x, y, classes)
    precision = LedoitWolf().fit(x - means[y]).precision_
    return means, precision


def nearest_mahalanobis(x: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``x`` to its nearest mean."""
    finite = np.isfinite(means).all(1)
    means = means[finite]
    xp = x @ precision
    mp = means @ precision
    distances = (
        (xp * x).sum(1)[:, None] - 2 * xp @ means.T + (mp * means).sum(1)[None, :]
    )
    return distances.min(1)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``y``."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled = scaled - scaled.max(1, keepdims=True)
        log_z = np.log(np.exp(scaled).sum(1))
        return float((log_z - scaled[np.arange(len(y)), y]).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(1, keepdims=True)
