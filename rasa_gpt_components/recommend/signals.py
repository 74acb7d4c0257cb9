"""What the catalogue and all purchases say before any request: popularity;
which items are bought by the same customers (item-to-item co-purchase, the
cosine of two items' buyer sets: taste) and in the same order (the cosine of
their order sets: what goes with what); and what one customer's purchases say
about every item (their categories, styles and price level)."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Sequence

import numpy as np
from scipy import sparse

from rasa_gpt_components.recommend.catalogue import Catalogue
from rasa_gpt_components.recommend.request import terms

DISTINCTIVE = 0.15  # a term in more of the items than this says nothing about which


@dataclass(frozen=True)
class Signals:
    popularity: np.ndarray  # (n,) in [0, 1]: log buyers / log most buyers
    co_purchase: sparse.csr_matrix  # (n, n) cosine of buyer sets, 0 on the diagonal
    together: sparse.csr_matrix  # (n, n) cosine of order sets (bought in one order), 0 on the diagonal
    prices: np.ndarray
    in_stock: np.ndarray  # bool
    durable: np.ndarray  # bool
    categories: np.ndarray  # (n,) the index of each item's category
    styles: sparse.csr_matrix  # (n, styles) 1 where the item has the style
    vocabulary: FrozenSet[str]  # terms of the items' texts that tell items apart (request.terms)
    # each distinctive term of the items' names (every language) -> the positions of the items it names
    names: Dict[str, np.ndarray] = field(default_factory=dict)


def build_signals(catalogue: Catalogue) -> Signals:
    n = len(catalogue.items)
    buyers = _incidence(catalogue, lambda p: p.customer)
    counts = np.asarray(buyers.sum(axis=0)).ravel()
    most = np.log1p(counts.max()) if n and counts.max() > 0 else 1.0
    vocabulary = _vocabulary(catalogue)
    return Signals(
        popularity=(np.log1p(counts) / most).astype(np.float32),
        co_purchase=_cosine(buyers),
        together=_cosine(_incidence(catalogue, lambda p: (p.customer, p.order))),
        prices=np.array([item.price for item in catalogue.items], dtype=np.float64),
        in_stock=np.array([item.stock > 0 for item in catalogue.items], dtype=bool),
        durable=np.array([item.durable for item in catalogue.items], dtype=bool),
        categories=_index([(item.category,) for item in catalogue.items]).indices,
        styles=_index([sorted(item.values("styles")) for item in catalogue.items]),
        vocabulary=vocabulary,
        names=_name_index(catalogue, vocabulary),
    )


def _name_index(catalogue: Catalogue, vocabulary: FrozenSet[str]) -> Dict[str, np.ndarray]:
    """Each term of ``vocabulary`` in the items' names -> the (sorted) positions of those items."""
    index: Dict[str, List[int]] = {}
    for position, item in enumerate(catalogue.items):
        for term in set().union(*(terms(item.name(language)) for language in item.names)) & vocabulary:
            index.setdefault(term, []).append(position)
    return {term: np.array(positions) for term, positions in index.items()}


def _vocabulary(catalogue: Catalogue) -> FrozenSet[str]:
    """The terms of the items' names and descriptions (every language) that at
    most ``DISTINCTIVE`` of the items use: words that say which item, not "a", "gift"."""
    counts: Counter = Counter()
    for item in catalogue.items:
        counts.update(set().union(*(terms(item.text(language)) for language in item.names)))
    most = max(1, int(DISTINCTIVE * len(catalogue.items)))
    return frozenset(term for term, count in counts.items() if count <= most)


def _incidence(catalogue: Catalogue, key) -> sparse.csr_matrix:  # type: ignore[no-untyped-def]
    """A binary (groups, items) matrix: 1 where the group (a customer, an order) bought the item."""
    groups: dict = {}
    pairs = {(groups.setdefault(key(p), len(groups)), catalogue.position[p.item]) for p in catalogue.purchases}
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    cols = np.array([c for _, c in pairs], dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                             shape=(max(len(groups), 1), len(catalogue.items)))


def _cosine(incidence: sparse.csr_matrix) -> sparse.csr_matrix:
    """Item-to-item cosine of the groups' columns, without the diagonal."""
    overlap = (incidence.T @ incidence).tocsr()
    overlap = (overlap - sparse.diags(overlap.diagonal())).tocsr()
    overlap.eliminate_zeros()
    scale = sparse.diags(1.0 / np.sqrt(np.maximum(np.asarray(incidence.sum(axis=0)).ravel(), 1)))
    return sparse.csr_matrix(scale @ overlap @ scale, dtype=np.float32)


def _index(values: Sequence[Sequence[str]]) -> sparse.csr_matrix:
    """A binary (items, distinct values) matrix of each item's values."""
    names = {v: i for i, v in enumerate(sorted({v for vs in values for v in vs}))}
    rows = [i for i, vs in enumerate(values) for _ in vs]
    cols = [names[v] for vs in values for v in vs]
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                             shape=(len(values), max(len(names), 1)))


def co_purchase_scores(matrix: sparse.csr_matrix, positions: Sequence[int]) -> np.ndarray:
    """(n,) in [0, 1]: how much each item goes with the items at ``positions``
    in ``matrix`` (``Signals.co_purchase`` or ``Signals.together``)."""
    if not len(positions):
        return np.zeros(matrix.shape[0], dtype=np.float32)
    weights = Counter(positions)
    rows = np.array(list(weights), dtype=np.int64)
    counts = np.array([weights[r] for r in rows], dtype=np.float32)
    scores = np.asarray(matrix[rows].T @ counts).ravel()
    top = scores.max()
    return scores / top if top > 0 else scores


def taste_scores(signals: Signals, positions: Sequence[int]) -> np.ndarray:
    """(n,) in [0, 1]: how well each item matches the categories, styles and
    price level of the customer's purchases at ``positions``."""
    n = signals.prices.shape[0]
    if not len(positions):
        return np.zeros(n, dtype=np.float32)
    owned = np.asarray(positions, dtype=np.int64)
    category_share = np.bincount(signals.categories[owned], minlength=signals.categories.max() + 1) / len(owned)
    style_share = np.asarray(signals.styles[owned].sum(axis=0)).ravel() / len(owned)
    style = np.asarray(signals.styles.multiply(style_share[None, :]).max(axis=1).todense()).ravel()
    level = np.median(np.log(np.maximum(signals.prices[owned], 1.0)))
    price = np.exp(-np.abs(np.log(np.maximum(signals.prices, 1.0)) - level))
    return (0.5 * category_share[signals.categories] + 0.25 * style + 0.25 * price).astype(np.float32)
