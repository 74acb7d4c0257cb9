"""The shop's products and purchases as the recommender reads them: from any
SQLAlchemy database, through two queries (``items_sql``, ``purchases_sql``)
and one for a single customer's purchases (``customer_sql``, run for every
recommendation so that an order placed a minute ago counts).

The queries' columns (docs/recommendations.md): items ``id, category, price,
stock, durable, recipients, occasions, styles, seasons`` and per language
``name_<lang>``, ``description_<lang>`` (attribute values comma-separated);
purchases ``customer_id, item_id, order_id`` and, for the benchmark's
held-out last purchases, ``bought_at`` (cancelled orders left out by the
query). A shop whose tables differ writes the queries, or a view.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from rasa_gpt_components.text import clean_text

ITEM_ATTRIBUTES = ("recipients", "occasions", "styles", "seasons")
_TRUE = {"1", "true", "t", "yes", "y"}


@dataclass(frozen=True)
class Item:
    id: str
    category: str
    price: float
    stock: int
    durable: bool
    names: Mapping[str, str]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, FrozenSet[str]] = field(default_factory=dict)

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or next(iter(self.names.values()), self.id)

    def text(self, language: str) -> str:
        """What the encoder reads: the name and the description in ``language``."""
        description = self.descriptions.get(language) or self.descriptions.get("en") or ""
        return f"{self.name(language)}. {description}".strip()

    def values(self, attribute: str) -> FrozenSet[str]:
        if attribute == "category":
            return frozenset((self.category,))
        return self.attributes.get(attribute, frozenset())


@dataclass(frozen=True)
class Purchase:
    customer: str
    item: str
    order: str
    bought_at: str = ""  # sortable (ISO time), when the query gives ``bought_at``


def _words(value: Any) -> FrozenSet[str]:
    return frozenset(w.strip().lower() for w in str(value or "").split(",") if w.strip())


def item_from_row(row: Mapping[str, Any]) -> Item:
    """An Item from one row of ``items_sql``; ValueError naming what is missing."""
    missing = [c for c in ("id", "category", "price") if row.get(c) is None]
    if missing:
        raise ValueError(f"an item row lacks {missing} (columns: {sorted(row)}).")
    names = {k[5:]: clean_text(v, 200) for k, v in row.items() if k.startswith("name_") and v}
    if not names:
        raise ValueError(f"item {row['id']} has no name_<language> column with a value.")
    return Item(
        id=str(row["id"]),
        category=str(row["category"]).strip().lower(),
        price=float(row["price"]),
        stock=int(row["stock"]) if row.get("stock") is not None else 1,
        durable=str(row.get("durable", "")).strip().lower() in _TRUE,
        names=names,
        descriptions={k[12:]: clean_text(v, 500) for k, v in row.items() if k.startswith("description_") and v},
        attributes={a: _words(row.get(a)) for a in ITEM_ATTRIBUTES},
    )


def purchase_from_row(row: Mapping[str, Any]) -> Purchase:
    return Purchase(str(row["customer_id"]), str(row["item_id"]), str(row.get("order_id", "")),
                    str(row.get("bought_at") or ""))


@dataclass(frozen=True)
class Catalogue:
    items: Tuple[Item, ...]
    purchases: Tuple[Purchase, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", {item.id: i for i, item in enumerate(self.items)})

    position: Dict[str, int] = field(init=False, repr=False, compare=False)

    def item(self, item_id: str) -> Optional[Item]:
        index = self.position.get(str(item_id))
        return None if index is None else self.items[index]

    @property
    def languages(self) -> Tuple[str, ...]:
        return tuple(sorted({language for item in self.items for language in item.names}))


def catalogue_from_rows(items: Iterable[Mapping[str, Any]], purchases: Iterable[Mapping[str, Any]] = ()) -> Catalogue:
    built = [item_from_row(dict(row)) for row in items]
    known = {item.id for item in built}
    bought = [p for p in (purchase_from_row(dict(row)) for row in purchases) if p.item in known]
    return Catalogue(tuple(built), tuple(bought))


_engines: Dict[str, Any] = {}


def _engine(url: str) -> Any:
    from sqlalchemy import create_engine

    if url not in _engines:  # hide_parameters: a customer id never reaches a log line
        _engines[url] = create_engine(url, future=True, hide_parameters=True, pool_pre_ping=not url.startswith("sqlite"))
    return _engines[url]


def _rows(url: str, sql: str, parameters: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    from sqlalchemy import text

    with _engine(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql), parameters or {})]


def load_catalogue(url: str, items_sql: str, purchases_sql: str) -> Catalogue:
    """The catalogue and every purchase from the database at ``url``."""
    return catalogue_from_rows(_rows(url, items_sql), _rows(url, purchases_sql))


def customer_purchases(url: str, customer_sql: str, customer: str) -> Sequence[Purchase]:
    """One customer's purchases, as the database has them now."""
    return [purchase_from_row(row) for row in _rows(url, customer_sql, {"customer": str(customer)})]
