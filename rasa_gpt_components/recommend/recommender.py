"""Recommendations for a request and a customer: hard constraints first (the
budget, in stock, no durable item the customer already owns), then a score
per item from the request (the encoder's similarity to the item's text, the
attributes its words name, closeness to "about 500"), the customer's history
(their categories, styles and price level; co-purchase with what they bought)
and popularity; a varied list (maximal marginal relevance over the items'
vectors); a reason for each item. A request that names nothing ("推荐点东西")
from a customer with no history gets a question back instead of a guess.

Used from a custom action (docs/recommendations.md); ``recommend`` is
synchronous and CPU-bound: call it in a thread (``loop.run_in_executor``).
"""

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import reduce
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from rasa_gpt_components.recommend.catalogue import (
    Catalogue,
    Item,
    Purchase,
    customer_purchases,
    load_catalogue,
)
from rasa_gpt_components.recommend.lexicon import ATTRIBUTES, Lexicon, load_lexicon
from rasa_gpt_components.recommend.reasons import Why, word_reason
from rasa_gpt_components.recommend.request import Request, follow_up, parse_request, terms
from rasa_gpt_components.recommend.settings import RecommenderSettings
from rasa_gpt_components.recommend.signals import Signals, build_signals, co_purchase_scores, taste_scores
from rasa_gpt_components.text import clean_text

logger = logging.getLogger(__name__)

MAX_REQUEST_CHARS = 300
CANDIDATES = 50  # the best-scoring items the varied list is picked from
# how much each named attribute counts among those a request names
ATTRIBUTE_WEIGHTS = {"category": 1.0, "recipients": 1.0, "occasions": 0.6, "styles": 0.5, "seasons": 0.5}
# item values that fit any request for the attribute, half as well as a named match
WILDCARDS = {"recipients": "anyone", "seasons": "all"}


@dataclass(frozen=True)
class Pick:
    item: Item
    score: float
    reason: str


@dataclass(frozen=True)
class Recommendation:
    picks: Tuple[Pick, ...]
    basis: str  # "request", "history", "popular", "clarify" (ask ``missing``), "nothing_fits"
    request: Optional[Request] = None
    missing: Tuple[str, ...] = ()  # what to ask when basis is "clarify": "recipient", "budget"

    @property
    def items(self) -> Tuple[Item, ...]:
        return tuple(pick.item for pick in self.picks)


class Recommender:
    def __init__(self, settings: RecommenderSettings, catalogue: Optional[Catalogue] = None,
                 encoder: Optional[object] = None) -> None:
        """``catalogue`` given: used as it is (no database); else read from
        ``settings.database_url``. ``encoder``: a sentence encoder, by default
        ``settings.encoder`` loaded by the model loader."""
        if catalogue is None and not settings.database_url:
            raise ValueError("the recommender needs a catalogue or the option database_url.")
        self.settings = settings
        self.lexicon: Lexicon = load_lexicon(settings.lexicon)
        self.encoder = encoder if encoder is not None else _load_encoder(settings.encoder)
        self._given = catalogue
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._state: Optional[Tuple[Catalogue, Signals, Dict[str, np.ndarray]]] = None
        self._state_now()

    @classmethod
    def from_config(cls, config: Optional[Dict] = None, **kwargs) -> "Recommender":
        return cls(RecommenderSettings.from_config(config), **kwargs)

    # --- the catalogue, read again every refresh_seconds ---------------------------------

    def _state_now(self) -> Tuple[Catalogue, Signals, Dict[str, np.ndarray]]:
        with self._lock:
            stale = self._given is None and time.monotonic() - self._loaded_at > self.settings.refresh_seconds
            if self._state is None or stale:
                started = time.monotonic()
                catalogue = self._given or load_catalogue(
                    self.settings.database_url, self.settings.items_sql, self.settings.purchases_sql)
                self._state = (catalogue, build_signals(catalogue), self._vectors(catalogue))
                self._loaded_at = time.monotonic()
                logger.info("Recommender: %d items, %d purchases read in %.2f s.", len(catalogue.items),
                            len(catalogue.purchases), self._loaded_at - started)
            return self._state

    def _vectors(self, catalogue: Catalogue) -> Dict[str, np.ndarray]:
        if self.encoder is None or not catalogue.items:
            return {}
        from rasa_gpt_components.knowledge.embedding_cache import cached_encode

        return {language: cached_encode(self.encoder, [item.text(language) for item in catalogue.items],
                                        progress=len(catalogue.items) > 1000, desc=f"catalogue ({language})",
                                        kind="passage")
                for language in catalogue.languages}

    @property
    def catalogue(self) -> Catalogue:
        return self._state_now()[0]

    # --- recommending ---------------------------------------------------------------

    def recommend(self, text: Optional[str] = None, customer: Optional[str] = None, language: Optional[str] = None,
                  may_ask: bool = True, history: Optional[Sequence[Purchase]] = None,
                  previous: Optional[Request] = None, shown_prices: Sequence[float] = (),
                  exclude: Iterable[str] = ()) -> Recommendation:
        """Up to ``max_items`` items for the request ``text`` (None: from the
        customer's history, else the popular ones) of ``customer``.
        ``history``: the customer's purchases, when not read from the database.
        ``previous``: the request whose recommendations (costing ``shown_prices``)
        ``text`` follows up ("anything cheaper?"; ``request.follow_up``).
        ``exclude``: ids of items not to recommend (those shown, when "换一批" asks for others)."""
        catalogue, signals, vectors = self._state_now()
        text = clean_text(text, MAX_REQUEST_CHARS) if text else ""
        request = parse_request(text, self.lexicon, language, self.settings.about_low, self.settings.about_high,
                                self.settings.dollar_rate, signals.vocabulary) if text else None
        if request is not None and previous is not None:
            request = follow_up(request, previous, shown_prices)
        language = language or (request.language if request else "en")
        owned = self._owned(catalogue, customer, history)
        if request is not None and not request.specific and not owned and may_ask:
            return Recommendation((), "clarify", request, ("recipient", "budget"))
        allowed = self._allowed(signals, owned, request)
        allowed[[catalogue.position[i] for i in map(str, exclude) if i in catalogue.position]] = False
        named = named_items(request, signals, allowed) if request is not None else None
        if named is not None:  # "适合跑步的耳机": headphones, not running shoes
            allowed &= named
        if not allowed.any():
            return Recommendation((), "nothing_fits", request)
        parts = self._evidence(catalogue, signals, vectors, request, owned, language)
        score = sum(getattr(self.settings.weights, name) * values for name, values in parts.items())
        positions = self._varied(np.where(allowed, score, -np.inf), vectors.get(language), allowed)
        basis = "request" if request is not None and request.specific else ("history" if owned else "popular")
        picks = tuple(Pick(catalogue.items[p], float(score[p]),
                           self._reason(catalogue, p, parts, request, owned, signals, language)) for p in positions)
        return Recommendation(picks, basis, request)

    def also_bought(self, item_ids: Iterable[str], customer: Optional[str] = None, language: str = "en",
                    history: Optional[Sequence[Purchase]] = None) -> Recommendation:
        """Items the buyers of ``item_ids`` also bought ("customers who bought this also bought")."""
        catalogue, signals, vectors = self._state_now()
        seeds = [catalogue.position[i] for i in map(str, item_ids) if i in catalogue.position]
        owned = self._owned(catalogue, customer, history)
        allowed = self._allowed(signals, owned, None)
        allowed[seeds] = False
        together = co_purchase_scores(signals.together, seeds)
        allowed &= together > 0
        if not allowed.any():
            return Recommendation((), "nothing_fits")
        positions = self._varied(np.where(allowed, together, -np.inf), vectors.get(language), allowed)
        picks = tuple(Pick(catalogue.items[p], float(together[p]),
                           word_reason(catalogue.items[p], Why(together_with=self._closest(signals.together, seeds, p,
                                                                                         catalogue, language)),
                                       self.lexicon, language)) for p in positions)
        return Recommendation(picks, "history")

    # --- the parts ------------------------------------------------------------------

    def _owned(self, catalogue: Catalogue, customer: Optional[str],
               history: Optional[Sequence[Purchase]]) -> List[int]:
        if history is None and customer is not None:
            if self._given is not None or not self.settings.database_url:
                history = [p for p in catalogue.purchases if p.customer == str(customer)]
            else:
                history = customer_purchases(self.settings.database_url, self.settings.customer_sql, str(customer))
        return [catalogue.position[p.item] for p in history or () if p.item in catalogue.position]

    def _allowed(self, signals: Signals, owned: Sequence[int], request: Optional[Request]) -> np.ndarray:
        allowed = signals.in_stock.copy()
        if owned:
            owned_durable = np.zeros_like(allowed)
            owned_durable[list(owned)] = True
            allowed &= ~(owned_durable & signals.durable)
        if request is not None and request.price.given:
            low, high = request.price.low, request.price.high
            if low is not None:
                allowed &= signals.prices >= low
            if high is not None:
                allowed &= signals.prices <= high
        return allowed

    def _evidence(self, catalogue: Catalogue, signals: Signals, vectors: Dict[str, np.ndarray],
                  request: Optional[Request], owned: Sequence[int], language: str) -> Dict[str, np.ndarray]:
        n = len(catalogue.items)
        zero = np.zeros(n, dtype=np.float32)
        repeat = np.zeros(n, dtype=np.float32)
        repeat[list(owned)] = 1.0
        parts = {"text": zero, "attributes": zero, "price": zero,
                 "repeat": np.where(signals.durable, 0.0, repeat).astype(np.float32),
                 "history": taste_scores(signals, owned),
                 "co_purchase": co_purchase_scores(signals.co_purchase, owned),
                 "popularity": signals.popularity}
        if request is None or not request.specific:
            return parts
        matrix = vectors.get(language)
        if matrix is not None:
            similarity = matrix @ self.encoder.encode([request.text], kind="query")[0]
            low, high = float(similarity.min()), float(similarity.max())
            parts["text"] = (similarity - low) / (high - low) if high > low else zero
        if request.wants:
            parts["attributes"] = np.array([_attribute_fit(item, request) for item in catalogue.items],
                                           dtype=np.float32)
        if request.price.target:
            parts["price"] = np.clip(1 - np.abs(signals.prices - request.price.target) / request.price.target, 0, 1)
        return parts

    def _varied(self, score: np.ndarray, matrix: Optional[np.ndarray], allowed: np.ndarray) -> List[int]:
        """Up to max_items positions: each next one the best trade of score
        against similarity to those already picked (maximal marginal relevance)."""
        count = min(self.settings.max_items, int(allowed.sum()))
        order = np.argsort(-score, kind="stable")[:CANDIDATES]
        order = [int(p) for p in order if np.isfinite(score[p])]
        if matrix is None or self.settings.diversity == 0:
            return order[:count]
        top, bottom = score[order[0]], score[order[-1]]
        relevance = {p: (score[p] - bottom) / (top - bottom) if top > bottom else 1.0 for p in order}
        picked: List[int] = []
        while len(picked) < count:
            def value(p: int) -> float:
                overlap = max((float(matrix[p] @ matrix[q]) for q in picked), default=0.0)
                return (1 - self.settings.diversity) * relevance[p] - self.settings.diversity * overlap
            best = max((p for p in order if p not in picked), key=value)
            picked.append(best)
        return picked

    def _reason(self, catalogue: Catalogue, position: int, parts: Dict[str, np.ndarray], request: Optional[Request],
                owned: Sequence[int], signals: Signals, language: str) -> str:
        item = catalogue.items[position]
        matched: List[Tuple[str, str]] = []
        if request is not None:
            for attribute in ATTRIBUTES:
                values = sorted(item.values(attribute) & request.wants.get(attribute, frozenset()))
                matched.extend((attribute, value) for value in values[:1])
        bought_with = None
        if owned and parts["co_purchase"][position] > 0 and not parts["repeat"][position]:
            bought_with = self._closest(signals.co_purchase, owned, position, catalogue, language)
        why = Why(
            matched=tuple(matched),
            within_budget=bool(request and request.price.high is not None),
            near_target=bool(request and request.price.target),
            bought_with=bought_with if not matched else None,
            like_before=bool(owned) and parts["history"][position] > 0.5,
            bought_before=bool(parts["repeat"][position]),
        )
        return word_reason(item, why, self.lexicon, language)

    @staticmethod
    def _closest(matrix, seeds: Sequence[int], position: int, catalogue: Catalogue,  # type: ignore[no-untyped-def]
                 language: str) -> Optional[str]:
        """The name of the item of ``seeds`` that goes best with ``position`` in ``matrix``."""
        row = matrix[position].toarray().ravel()  # symmetric: the row is the column
        best = max(seeds, key=lambda q: row[q])
        return catalogue.items[best].name(language) if row[best] > 0 else None


# English: where the phrase that names the thing ends, a pause or a word after which the request
# says what it is for ("wireless earbuds, any colour"; "headphones for running")
_THING_ENDS = re.compile(r"[,;.!?]|\b(?:for|to|with|that|which|under|below|around|about|as|in)\b", re.IGNORECASE)
# Chinese: the clause that says what to buy ("我爸老低头看手机，…，想给他买个按摩的")
_ZH_CLAUSE = re.compile(r"[^,，;；。!！?？]+")
_ZH_WANTS = re.compile(r"买|要|推荐|送|挑|找|选|来[个一]")


def named_items(request: Request, signals: Signals, allowed: np.ndarray) -> Optional[np.ndarray]:
    """The items that are what the request names, or None when it names fewer than two of the
    known terms that occur in item names ("耳机", "phone", "case"); items with all of them
    ("a phone case", "红色的围巾") if some are allowed, else with the one that says what the thing
    is. In Chinese the last such term of the last clause that says what to buy (买, 要, 推荐, 送…),
    else the last ("适合跑步的耳机": the headphones, not the running shoes; "我爸老低头看手机，
    …，想给他买个按摩的": a massager); in English the last of the phrase that names the thing, up
    to a pause or "for", "to", "with"… ("running headphones", "headphones for running",
    "wireless earbuds, any colour": the earbuds, not the watercolour paints)."""
    found = []  # (position in the text, term, items whose names have it)
    text = request.text.lower()
    for term in request.known_terms:
        wanted = terms(term) & signals.names.keys()
        if not wanted:
            continue
        items = np.zeros(len(allowed), dtype=bool)
        items[reduce(np.intersect1d, (signals.names[t] for t in wanted))] = True
        if (items & allowed).any():
            found.append((text.find(term.lower()), term, items))
    if len(found) < 2:
        return None  # one thing named: the ranking finds it ("跑步" alone: the running shoes and the trail ones)
    every = np.logical_and.reduce([items for _, _, items in found])
    if (every & allowed).any():
        return every
    found.sort(key=lambda f: f[0])
    if request.language == "zh":  # the last of the last clause that says what to buy, else the last
        wants = [c for c in _ZH_CLAUSE.finditer(text) if _ZH_WANTS.search(c.group())]
        last = [f for f in found if wants and wants[-1].start() <= f[0] < wants[-1].end()]
        return (last or found)[-1][2]
    first = max(found[0][0], 0) + len(found[0][1])
    end = _THING_ENDS.search(text, first)
    return [f for f in found if end is None or f[0] < end.start()][-1][2]


def _attribute_fit(item: Item, request: Request) -> float:
    """In [0, 1]: the weighted share of the request's named attributes the item has."""
    total = earned = 0.0
    for attribute, wanted in request.wants.items():
        weight = ATTRIBUTE_WEIGHTS.get(attribute, 0.5)
        total += weight
        have = item.values(attribute)
        if have & wanted:
            earned += weight
        elif WILDCARDS.get(attribute) in have:
            earned += weight / 2
    return earned / total if total else 0.0


def _load_encoder(name: Optional[str]) -> Optional[object]:
    if not name:
        return None
    from rasa_gpt_components.models.sentence import load_sentence_encoder

    return load_sentence_encoder(name)
