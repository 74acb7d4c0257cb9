"""The trained part of ``head`` mode: a calibrated linear classifier over GPT
features, and an out-of-scope detector that needs no out-of-scope examples.

- GPT features are standardised; optionally character n-gram TF-IDF features
  of the text are added (``lexical``); a multinomial logistic regression with
  L2 regularisation is fitted on both (full-batch L-BFGS in torch).
- Temperature scaling is fitted on out-of-fold logits (k-fold over the training
  data), so confidences mean what they say even for few-shot intents.
- Out-of-scope: the energy score, log-sum-exp of the calibrated logits (Liu et
  al. 2020, "Energy-based out-of-distribution detection"): a message the head
  has no strong evidence for has a low energy. The threshold is the
  ``oos_rate`` quantile of the out-of-fold energies of the training messages:
  about ``oos_rate`` of in-scope messages are rejected, whatever the data. On
  CLINC150 it separated out-of-scope messages better than a Mahalanobis
  distance to the intent means or the top probability (docs/benchmarks.md).
  With ``oos_neighbours`` k > 0 the score adds how close a message is to its k
  nearest training messages (mean cosine of the standardised features), both
  parts standardised on held-out messages: a message far from every example
  is out of scope even when the head is sure of an intent.

Everything is kept as numpy arrays (saved with ``np.savez``; no pickles).
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import csr_matrix

from rasa_gpt_components.nlu.lexical import CharNgrams

logger = logging.getLogger(__name__)

_EPS = 1e-6


@dataclass(frozen=True)
class HeadSettings:
    """How the head is fitted (the classifier's options of the same names,
    ``C`` included); checked once, here."""

    random_seed: int
    lexical: bool = True  # character n-gram TF-IDF features beside the GPT features
    C: float = 10.0  # inverse L2 regularisation strength
    max_iter: int = 200  # L-BFGS iterations
    calibration_folds: int = 5  # temperature fitted on out-of-fold predictions
    oos_detection: bool = True  # out-of-scope detection without out-of-scope examples
    oos_rate: float = 0.02  # share of in-scope messages the threshold may reject
    # k nearest training messages whose similarity joins the energy in the out-of-scope score
    # (0: the energy alone), and its weight beside the energy (both standardised)
    oos_neighbours: int = 0
    oos_neighbour_weight: float = 0.5
    # "balanced": each intent weighs as much as any other in the loss, however many
    # examples it has (a large intent does not pull messages of small ones to it); None: by count
    class_weight: Optional[str] = "balanced"

    def __post_init__(self) -> None:
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be 'balanced' or null, got {self.class_weight!r}.")
        if not 0.0 < float(self.oos_rate) < 0.5:
            raise ValueError(f"oos_rate must be between 0 and 0.5, got {self.oos_rate}.")
        if float(self.C) <= 0:
            raise ValueError(f"C must be positive, got {self.C}.")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}.")
        if int(self.oos_neighbours) < 0 or int(self.oos_neighbours) != self.oos_neighbours:
            raise ValueError(f"oos_neighbours must be a whole number, 0 or more, got {self.oos_neighbours}.")
        if float(self.oos_neighbour_weight) < 0:
            raise ValueError(f"oos_neighbour_weight must be 0 or more, got {self.oos_neighbour_weight}.")


@dataclass
class IntentHead:
    """A fitted head. Build one with :func:`fit_head`."""

    labels: List[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [classes, dim] on standardised GPT features
    bias: np.ndarray  # [classes]
    temperature: float = 1.0
    lexical: Optional[CharNgrams] = None
    lexical_weights: Optional[np.ndarray] = None  # [classes, n-grams]
    oos_threshold: float = float("-inf")  # scores below it are out of scope
    # with oos_neighbours: the training messages' standardised features, unit length
    neighbours: Optional[np.ndarray] = None
    neighbour_count: int = 0
    neighbour_weight: float = 0.0
    # mean and standard deviation of held-out energies, then of their neighbour similarities
    score_scale: Optional[np.ndarray] = None
    info: Dict[str, float] = field(default_factory=dict)
    # after fit_head: (held-out rows, their classes, their calibrated probabilities from the
    # calibration fits); not persisted. Heads fitted on the same labels and seed hold out the same rows
    held_out: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default=None, repr=False, compare=False)
    # lexical_weights.T, contiguous: a sparse row times the transposed view made scipy copy
    # the whole [n-grams, classes] matrix for every message (7 ms for 800,000 n-grams)
    _lexical_columns: Optional[Tuple[np.ndarray, np.ndarray]] = field(default=None, init=False, repr=False,
                                                                      compare=False)  # (of, columns)

    def logits(self, features: np.ndarray, texts: Optional[Sequence[str]] = None) -> np.ndarray:
        """Uncalibrated logits ``[n, classes]``; ``texts`` feed the lexical part."""
        out = self._standardise(features) @ self.weights.T + self.bias
        if self.lexical is not None and self.lexical_weights is not None:
            if texts is None:
                raise ValueError("This head uses lexical features: pass the texts too.")
            if self._lexical_columns is None or self._lexical_columns[0] is not self.lexical_weights:
                self._lexical_columns = (self.lexical_weights, np.ascontiguousarray(self.lexical_weights.T))
            out = out + self.lexical.transform(texts) @ self._lexical_columns[1]
        return out

    def predict_proba(self, features: np.ndarray, texts: Optional[Sequence[str]] = None) -> np.ndarray:
        """Calibrated probabilities ``[n, classes]``."""
        return softmax(self.logits(features, texts) / self.temperature)

    def predict(
        self, features: np.ndarray, texts: Optional[Sequence[str]] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities ``[n, classes]`` and the out-of-scope
        probability ``[n]``: 0 for in-scope rows; for out-of-scope rows a
        confidence in (0.5, 1) that grows with how far below the threshold
        their energy is."""
        scaled = self.logits(features, texts) / self.temperature
        shortfall = self.oos_threshold - self.oos_score(scaled, features)
        p_oos = np.where(shortfall > 0, 1.0 - 0.5 * np.exp(-np.maximum(shortfall, 0.0)), 0.0)
        return softmax(scaled), p_oos

    def is_out_of_scope(self, features: np.ndarray, texts: Optional[Sequence[str]] = None) -> np.ndarray:
        """Boolean ``[n]``: too little evidence for any intent seen in training."""
        return self.predict(features, texts)[1] > 0

    def oos_score(self, scaled_logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``[n]``: the energy of the calibrated logits, or with neighbours the
        standardised energy plus the weighted standardised neighbour similarity."""
        score = energy(scaled_logits)
        if self.neighbours is None or self.score_scale is None:
            return score
        near = neighbour_similarity(_unit(self._standardise(features)), self.neighbours, self.neighbour_count)
        return _combine(score, near, self.score_scale, self.neighbour_weight)

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale

    def to_arrays(self, with_ngrams: bool = True) -> Dict[str, np.ndarray]:
        """Everything needed to rebuild the head, as named arrays; ``with_ngrams=False``
        leaves out the n-gram vocabulary (another head stores it; set ``lexical`` after loading)."""
        arrays = {
            "labels": np.array(self.labels, dtype=str),
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
            "temperature": np.array(self.temperature),
            "oos_threshold": np.array(self.oos_threshold),
        }
        if self.neighbours is not None and self.score_scale is not None:
            arrays.update(neighbours=self.neighbours.astype(np.float16), score_scale=self.score_scale,
                          neighbour_count=np.array(self.neighbour_count),
                          neighbour_weight=np.array(self.neighbour_weight))
        if self.lexical is not None and self.lexical_weights is not None:
            if with_ngrams:
                arrays.update(self.lexical.to_arrays())
            arrays["lexical_weights"] = self.lexical_weights.astype(np.float32)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "IntentHead":
        """Inverse of :meth:`to_arrays`."""
        lexical = CharNgrams.from_arrays(arrays) if "lex_terms" in arrays else None
        return cls(
            labels=[str(label) for label in arrays["labels"]],
            mean=arrays["mean"],
            scale=arrays["scale"],
            weights=arrays["weights"],
            bias=arrays["bias"],
            temperature=float(arrays["temperature"]),
            lexical=lexical,
            lexical_weights=arrays.get("lexical_weights"),
            oos_threshold=float(arrays["oos_threshold"]),
            neighbours=arrays["neighbours"].astype(np.float32) if "neighbours" in arrays else None,
            neighbour_count=int(arrays.get("neighbour_count", 0)),
            neighbour_weight=float(arrays.get("neighbour_weight", 0.0)),
            score_scale=arrays.get("score_scale"),
        )


def fit_head(
    features: np.ndarray,
    labels: Sequence[str],
    settings: HeadSettings,
    texts: Optional[Sequence[str]] = None,
    calibration_split: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    ngrams: Optional[CharNgrams] = None,
) -> IntentHead:
    """Fit the classifier, its temperature and the out-of-scope detector.

    ``texts`` (the training messages) feed the lexical features when
    ``settings.lexical`` is on.
    ``calibration_split`` (train rows, held-out rows) replaces the out-of-fold
    splits, e.g. when the features come from an encoder fine-tuned on some rows.
    ``ngrams``: a vocabulary already fitted on ``texts`` (another head's), used instead of fitting one.
    """
    features = np.asarray(features, dtype=np.float64)
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    mean = features.mean(0)
    scale = features.std(0) + _EPS
    x = (features - mean) / scale
    c, max_iter = float(settings.C), int(settings.max_iter)
    lexical = None
    if texts is not None and settings.lexical:
        lexical = ngrams if ngrams is not None else CharNgrams.fit(texts)
    lex = lexical.transform(texts) if lexical is not None else None
    if len(names) == 1:
        return IntentHead(names, mean, scale, np.zeros((1, x.shape[1])), np.zeros(1))
    balanced = settings.class_weight == "balanced"
    weights, lexical_weights, bias = _fit_logistic(x, lex, y, len(names), c, max_iter, balanced)
    head = IntentHead(names, mean, scale, weights, bias, lexical=lexical, lexical_weights=lexical_weights)

    folds = [calibration_split] if calibration_split is not None else _folds(y, settings.calibration_folds, settings.random_seed)
    if folds is None:
        logger.debug("Some intent has a single example: no calibration, no out-of-scope threshold.")
        return head
    oof_logits = np.zeros((len(y), len(names)))
    for train_index, test_index in folds:
        w, lw, b = _fit_logistic(
            x[train_index], None if lex is None else lex[train_index], y[train_index], len(names), c, max_iter,
            balanced,
        )
        oof_logits[test_index] = x[test_index] @ w.T + b
        if lex is not None:
            oof_logits[test_index] += lex[test_index] @ lw.T
    held_out = np.concatenate([test_index for _, test_index in folds])
    head.temperature = fit_temperature(oof_logits[held_out], y[held_out])
    head.info["oof_accuracy"] = float((oof_logits[held_out].argmax(1) == y[held_out]).mean())
    head.held_out = (held_out, y[held_out], softmax(oof_logits[held_out] / head.temperature))
    if settings.oos_detection:
        # energies of messages the head did not see: what new in-scope messages look like
        held_out_score = energy(oof_logits[held_out] / head.temperature)
        if settings.oos_neighbours > 0:
            # each held-out message's neighbours among the others: what a new message finds
            units = _unit(x).astype(np.float32)
            near = neighbour_similarity(units[held_out], units, int(settings.oos_neighbours), exclude=held_out)
            head.score_scale = np.array([held_out_score.mean(), held_out_score.std() + _EPS,
                                         near.mean(), near.std() + _EPS])
            head.neighbours, head.neighbour_count = units, int(settings.oos_neighbours)
            head.neighbour_weight = float(settings.oos_neighbour_weight)
            held_out_score = _combine(held_out_score, near, head.score_scale, head.neighbour_weight)
        head.oos_threshold = float(np.quantile(held_out_score, settings.oos_rate))
    return head


def neighbour_similarity(
    queries: np.ndarray, neighbours: np.ndarray, k: int, exclude: Optional[np.ndarray] = None, chunk: int = 1024,
) -> np.ndarray:
    """``[n]``: the mean cosine similarity of each unit-length query to its ``k``
    most similar rows of ``neighbours``; ``exclude[i]`` (a row of ``neighbours``)
    is left out for query i (the query itself)."""
    queries = np.asarray(queries, dtype=np.float32)
    k = max(1, min(k, len(neighbours) - (exclude is not None)))
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ neighbours.T
        if exclude is not None:
            sims[np.arange(len(sims)), exclude[start:start + chunk]] = -np.inf
        out[start:start + chunk] = np.partition(sims, -k, axis=1)[:, -k:].mean(1)
    return out


def _combine(energies: np.ndarray, near: np.ndarray, scale: np.ndarray, weight: float) -> np.ndarray:
    return (energies - scale[0]) / scale[1] + weight * (near - scale[2]) / scale[3]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + _EPS)


def _fit_logistic(
    x: np.ndarray, lex: Optional[csr_matrix], y: np.ndarray, classes: int, c: float, max_iter: int,
    balanced: bool = False,
) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """Multinomial logistic regression, L2 penalty ``|W|^2 / (2 C n)``, full-batch L-BFGS;
    ``balanced``: each class's examples weighted by ``n / (classes * count)``.

    GPT features enter divided by sqrt(dim), so both parts have rows of norm
    about 1. Returns weights for the standardised GPT features, the n-gram
    weights (or None) and the biases. Deterministic: no sampling.
    """
    import torch

    n, dim = x.shape
    dense = torch.tensor(x / np.sqrt(dim), dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.long)
    w = torch.zeros((classes, dim), requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    parameters = [w, b]
    sparse = None
    if lex is not None and lex.shape[1] > 0:
        lex = lex.tocsr()
        sparse = torch.sparse_csr_tensor(
            torch.tensor(lex.indptr, dtype=torch.int64),
            torch.tensor(lex.indices, dtype=torch.int64),
            torch.tensor(lex.data, dtype=torch.float32),
            size=lex.shape,
        )
        lw = torch.zeros((classes, lex.shape[1]), requires_grad=True)
        parameters.append(lw)
    counts = np.bincount(y, minlength=classes)
    missing = torch.tensor(counts == 0)
    class_weights = None
    if balanced:
        present = counts > 0
        share = np.where(present, n / (present.sum() * np.maximum(counts, 1)), 0.0)
        class_weights = torch.tensor(share, dtype=torch.float32)
    penalty = 1.0 / (2.0 * c * n)
    optimizer = torch.optim.LBFGS(
        parameters, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-9,
    )

    def closure():
        optimizer.zero_grad()
        logits = dense @ w.T + b
        if sparse is not None:
            logits = logits + (sparse @ lw.T)
        logits = logits.masked_fill(missing, -1e4)  # a class absent from a fold
        loss = torch.nn.functional.cross_entropy(logits, target, weight=class_weights)
        loss = loss + penalty * sum((p * p).sum() for p in parameters[:1] + parameters[2:])
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    weights = w.detach().numpy().astype(np.float64) / np.sqrt(dim)
    bias = b.detach().numpy().astype(np.float64)
    bias[missing.numpy()] = -1e4
    lexical_weights = lw.detach().numpy() if sparse is not None else None
    if lex is not None and sparse is None:
        lexical_weights = np.zeros((classes, lex.shape[1]), dtype=np.float32)
    return weights, lexical_weights, bias


def _folds(y: np.ndarray, folds: int, random_seed: int, holdout_above: int = 1500) -> Optional[list]:
    """Out-of-fold splits for calibration: k-fold on small data; on data larger
    than ``holdout_above`` one stratified 80/20 split, which is enough and costs
    one extra fit instead of k."""
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

    smallest = int(np.bincount(y).min())
    if folds < 2 or smallest < 2:
        return None
    if len(y) > holdout_above and smallest >= 5:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=random_seed)
        return list(splitter.split(np.zeros(len(y)), y))
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=random_seed)
    return list(splitter.split(np.zeros(len(y)), y))


def holdout_split(labels: Sequence[int], share: float, random_seed: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(kept rows, held-out rows): about ``share`` of each class with at least 3
    examples is held out (at least one); smaller classes are kept whole.
    None when nothing would be held out."""
    y = np.asarray(labels)
    rng = np.random.default_rng(random_seed)
    held: List[int] = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if len(rows) >= 3 and share > 0:
            count = max(1, int(round(share * len(rows))))
            held.extend(rng.choice(rows, count, replace=False).tolist())
    if not held:
        return None
    mask = np.zeros(len(y), dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def energy(logits: np.ndarray) -> np.ndarray:
    """``log(sum(exp(logits)))`` per row ``[n]``, computed stably."""
    top = logits.max(1)
    return top + np.log(np.exp(logits - top[:, None]).sum(1))


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
