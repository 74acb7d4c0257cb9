"""The recommender's options, one frozen object with every default declared
once (docs/recommendations.md lists them)."""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional

DEFAULT_ITEMS_SQL = "SELECT * FROM recommend_items"
DEFAULT_PURCHASES_SQL = "SELECT customer_id, item_id, order_id, bought_at FROM recommend_purchases"
DEFAULT_CUSTOMER_SQL = ("SELECT customer_id, item_id, order_id FROM recommend_purchases "
                        "WHERE CAST(customer_id AS TEXT) = :customer")


@dataclass(frozen=True)
class Weights:
    """How much each kind of evidence counts in an item's score (each in [0, 1] before weighting)."""

    # chosen on the development half of `rasa-gpt bench recommend` (docs/recommendations.md)
    text: float = 2.0  # the request's similarity to the item's name and description (encoder)
    attributes: float = 1.5  # the request's category, recipient, occasion, style, season
    price: float = 1.0  # closeness to the amount of "about 500"
    history: float = 1.0  # the customer's own categories, styles and price level
    co_purchase: float = 1.0  # bought by the customers who bought what this customer bought
    repeat: float = 2.0  # a consumable the customer bought before (bought again)
    popularity: float = 0.3


@dataclass(frozen=True)
class RecommenderSettings:
    database_url: Optional[str] = None
    items_sql: str = DEFAULT_ITEMS_SQL
    purchases_sql: str = DEFAULT_PURCHASES_SQL
    customer_sql: str = DEFAULT_CUSTOMER_SQL
    encoder: Optional[str] = "multilingual-e5-small"  # a packaged sentence encoder (docs/models.md), or None
    lexicon: Optional[str] = None  # a YAML file adding to the built-in lexicon (lexicon.py)
    max_items: int = 3
    diversity: float = 0.3  # 0: by score only; 1: as unlike each other as possible
    about_low: float = 0.6  # "about 500" allows 0.6 x 500 ...
    about_high: float = 1.2  # ... to 1.2 x 500
    dollar_rate: float = 7.2  # yuan per dollar, for "$100" and "100 dollars"
    refresh_seconds: float = 300.0  # the catalogue and all purchases are read again after this
    weights: Weights = field(default_factory=Weights)

    @classmethod
    def from_config(cls, given: Optional[Mapping[str, Any]] = None) -> "RecommenderSettings":
        """The settings of a mapping (a YAML file's); ValueError naming an unknown or wrong option."""
        given = dict(given or {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown recommender options {unknown}; known: {sorted(f.name for f in fields(cls))}.")
        weights = dict(given.pop("weights", None) or {})
        unknown = sorted(set(weights) - {f.name for f in fields(Weights)})
        if unknown:
            raise ValueError(f"unknown recommender weights {unknown}.")
        if any(not isinstance(v, (int, float)) or v < 0 for v in weights.values()):
            raise ValueError("recommender weights must be numbers >= 0.")
        return cls(**given, weights=Weights(**{k: float(v) for k, v in weights.items()}))

    def __post_init__(self) -> None:
        """Every value checked once, however the settings were made."""
        if not isinstance(self.max_items, int) or not 1 <= self.max_items <= 20:
            raise ValueError("recommender option max_items must be an integer from 1 to 20.")
        if not 0 <= self.diversity <= 1:
            raise ValueError("recommender option diversity must be from 0 to 1.")
        if not 0 < self.about_low <= 1 <= self.about_high:
            raise ValueError("recommender options about_low <= 1 <= about_high, about_low > 0.")
        if self.dollar_rate <= 0 or self.refresh_seconds < 0:
            raise ValueError("recommender options dollar_rate > 0 and refresh_seconds >= 0.")


def default_config() -> Dict[str, Any]:
    """Every option with its default (the flat view, weights nested)."""
    settings = RecommenderSettings()
    config = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "weights"}
    config["weights"] = {f.name: getattr(settings.weights, f.name) for f in fields(Weights)}
    return config
