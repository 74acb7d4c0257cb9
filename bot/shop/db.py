"""The shop's database: SQLAlchemy 1.4 models, engine and session setup, seeding.

The database is SQLite in the bot folder (``bot/shop.db``) unless the environment
variable ``SHOP_DATABASE_URL`` holds another SQLAlchemy URL, e.g.
``postgresql+psycopg2://shop:secret@localhost/shop``.

Run ``python -m shop.db`` from ``bot/`` to create the tables and seed the demo
data; the action server also does this lazily on first use. Besides the demo
rows (``shop.demo``), the seed holds a generated catalogue and synthetic customers with
order histories (``shop.catalogue``), for recommendations and their benchmark.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, declarative_base, relationship, sessionmaker

from .catalogue import seed_rows
from .demo import DEMO_ORDERS, Row, demo_customer_rows, demo_order_rows, words

BOT_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL_ENV = "SHOP_DATABASE_URL"

ORDER_STATUSES = ("awaiting_payment", "awaiting_shipment", "shipped", "completed", "cancelled")
COURIERS = ("ZTO", "SF")  # ZTO Express by default, SF Express for big electronics and HK/Macau

Base = declarative_base()


class Yuan(TypeDecorator):
    """An amount in yuan as a ``Decimal``: NUMERIC(10, 2), or integer fen on SQLite (lossless)."""

    impl = Numeric(10, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        return dialect.type_descriptor(Integer() if dialect.name == "sqlite" else Numeric(10, 2))

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None or dialect.name != "sqlite":
            return value
        return int((Decimal(value) * 100).to_integral_value())

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return (Decimal(value) / 100 if dialect.name == "sqlite" else Decimal(value)).quantize(Decimal("0.01"))


class Customer(Base):
    __tablename__ = "customers"

    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    phone = Column(String(32), nullable=False)
    language = Column(String(8), nullable=False, default="en")

    orders = relationship("Order", back_populates="customer")


class Product(Base):
    __tablename__ = "products"

    id = Column(Integer, primary_key=True)
    sku = Column(String(32), nullable=False, unique=True)
    name_en = Column(String(200), nullable=False)
    name_zh = Column(String(200), nullable=False)
    category = Column(String(32), nullable=False, index=True)
    price_yuan = Column(Yuan, nullable=False)
    tags = Column(String(200), nullable=False, default="")  # comma-separated
    description_en = Column(String(500))
    description_zh = Column(String(500))
    stock = Column(Integer, nullable=False, default=100)
    # comma-separated words of the vocabularies of shop.catalogue (RECIPIENTS, OCCASIONS, STYLES, SEASONS)
    recipients = Column(String(200), nullable=False, default="")
    occasions = Column(String(200), nullable=False, default="")
    styles = Column(String(200), nullable=False, default="")
    seasons = Column(String(200), nullable=False, default="")
    # True for what one owns once (a phone, a jacket, a lamp), False for what is bought again (tea, socks)
    durable = Column(Boolean, nullable=False, default=False)

    @property
    def tag_list(self) -> Tuple[str, ...]:
        """The product's tags as a tuple."""
        return words(self.tags)

    @property
    def recipient_list(self) -> Tuple[str, ...]:
        return words(self.recipients)

    @property
    def occasion_list(self) -> Tuple[str, ...]:
        return words(self.occasions)

    @property
    def style_list(self) -> Tuple[str, ...]:
        return words(self.styles)

    @property
    def season_list(self) -> Tuple[str, ...]:
        return words(self.seasons)


class Order(Base):
    __tablename__ = "orders"

    id = Column(Integer, primary_key=True)
    order_no = Column(String(20), nullable=False, unique=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    status = Column(String(20), nullable=False)
    address = Column(String(300), nullable=False)
    courier = Column(String(8))
    tracking_no = Column(String(32))
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    shipped_at = Column(DateTime)

    customer = relationship("Customer", back_populates="orders")
    items = relationship("OrderItem", back_populates="order", order_by="OrderItem.id")


class OrderItem(Base):
    __tablename__ = "order_items"

    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id"), nullable=False, index=True)
    product_id = Column(Integer, ForeignKey("products.id"), nullable=False)
    quantity = Column(Integer, nullable=False, default=1)

    order = relationship("Order", back_populates="items")
    product = relationship("Product")


class Refund(Base):
    __tablename__ = "refunds"

    id = Column(Integer, primary_key=True)
    order_no = Column(String(20), ForeignKey("orders.order_no"), nullable=False, index=True)
    reason = Column(String(500), nullable=False)
    status = Column(String(20), nullable=False, default="requested")  # requested/approved/rejected/refunded
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    request_key = Column(String(64), nullable=False, unique=True)


class Exchange(Base):
    """A request to exchange an item of an order for another size or colour of the same product."""

    __tablename__ = "exchanges"

    id = Column(Integer, primary_key=True)
    order_no = Column(String(20), ForeignKey("orders.order_no"), nullable=False, index=True)
    sku = Column(String(32), ForeignKey("products.sku"), nullable=False)
    wanted = Column(String(200), nullable=False)  # what the customer wants instead, cleaned (service.clean_wanted)
    status = Column(String(20), nullable=False, default="requested")  # requested/approved/rejected/sent
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    request_key = Column(String(64), nullable=False, unique=True)


class AddressChange(Base):
    __tablename__ = "address_changes"

    id = Column(Integer, primary_key=True)
    order_no = Column(String(20), ForeignKey("orders.order_no"), nullable=False, index=True)
    old_address = Column(String(300), nullable=False)
    new_address = Column(String(300), nullable=False)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    request_key = Column(String(64), nullable=False, unique=True)


# --- engine and sessions -------------------------------------------------------------

_engines: Dict[str, Engine] = {}


def database_url() -> str:
    """The database URL: ``$SHOP_DATABASE_URL``, else SQLite at ``bot/shop.db``."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{BOT_DIR / 'shop.db'}"


def _use_real_sqlite_transactions(engine: Engine) -> None:
    """Let pysqlite use real transactions, so SAVEPOINTs (``begin_nested``) work.

    The recipe of SQLAlchemy's SQLite documentation ("Serializable isolation /
    Savepoints / Transactional DDL").
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")


def get_engine(url: Optional[str] = None) -> Engine:
    """The (cached) engine of ``url``, by default :func:`database_url`."""
    url = url or database_url()
    engine = _engines.get(url)
    if engine is None:
        # hide_parameters: error messages and logs never show the values (addresses, phones)
        if url.startswith("sqlite"):
            engine = create_engine(url, future=True, hide_parameters=True)
            _use_real_sqlite_transactions(engine)
        else:
            engine = create_engine(url, future=True, hide_parameters=True, pool_pre_ping=True)
        _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, process shutdown)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: Optional[str] = None) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on an exception."""
    session = sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _insert_rows(session: Session, model: Any, rows: List[Row]) -> None:
    """One bulk INSERT of ``rows`` into the table of ``model`` (keys that are not columns are left out)."""
    columns = set(model.__table__.columns.keys())
    session.execute(insert(model), [{key: value for key, value in row.items() if key in columns} for row in rows])


def _seed(session: Session) -> None:
    """The demo rows first (products 1-12, orders 1-10), then the generated catalogue and customers."""
    products, synthetic = seed_rows()
    orders = demo_order_rows() + synthetic.orders
    _insert_rows(session, Customer, demo_customer_rows() + synthetic.customers)
    _insert_rows(session, Product, products)
    product_ids = dict(session.execute(select(Product.sku, Product.id)).all())
    _insert_rows(session, Order, orders)
    order_ids = dict(session.execute(select(Order.order_no, Order.id)).all())
    items = [
        dict(order_id=order_ids[order["order_no"]], product_id=product_ids[sku], quantity=quantity)
        for order in orders
        for sku, quantity in order["items"]
    ]
    _insert_rows(session, OrderItem, items)


def _check_schema(engine: Engine) -> None:
    """Refuse a database whose ``products`` table predates columns of ``Product`` (create_all adds none)."""
    inspector = inspect(engine)
    if not inspector.has_table(Product.__tablename__):
        return
    present = {column["name"] for column in inspector.get_columns(Product.__tablename__)}
    missing = [name for name in Product.__table__.columns.keys() if name not in present]
    if missing:
        raise RuntimeError(
            f"The shop database {engine.url.render_as_string(hide_password=True)} was created by an older "
            f"version: its products table has no column {', '.join(missing)}. Delete the file (by default "
            f"bot/shop.db; it is created again with the new data) or point {DATABASE_URL_ENV} at another database."
        )


def _create_recommender_views(engine: Engine) -> None:
    """The two views the plugin's recommender reads (docs/recommendations.md):
    ``recommend_items`` (prices in yuan; SQLite stores fen) and
    ``recommend_purchases`` (items of orders that were not cancelled)."""
    sqlite = engine.dialect.name == "sqlite"
    create = "CREATE VIEW IF NOT EXISTS" if sqlite else "CREATE OR REPLACE VIEW"
    price = "price_yuan / 100.0" if sqlite else "price_yuan"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"{create} recommend_items AS SELECT sku AS id, name_en, name_zh, description_en, description_zh, "
            f"category, {price} AS price, stock, durable, recipients, occasions, styles, seasons FROM products")
        connection.exec_driver_sql(
            f"{create} recommend_purchases AS SELECT o.customer_id AS customer_id, p.sku AS item_id, "
            "o.order_no AS order_id, o.created_at AS bought_at FROM order_items i "
            "JOIN orders o ON o.id = i.order_id JOIN products p ON p.id = i.product_id "
            "WHERE o.status <> 'cancelled'")


def init_db(url: Optional[str] = None) -> bool:
    """Create the tables and seed the demo data and the generated catalogue into an empty database.

    Idempotent: returns True when it seeded, False when the data was already there.
    Raises RuntimeError for a database made before the catalogue's product columns.
    """
    engine = get_engine(url)
    _check_schema(engine)
    Base.metadata.create_all(engine)
    _create_recommender_views(engine)
    with session_scope(url) as session:
        if session.execute(select(func.count(Product.id))).scalar_one():
            return False
        _seed(session)
    return True


def main() -> None:
    """Initialise the database and print the demo order numbers."""
    try:
        seeded = init_db()
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    print(f"{'Seeded' if seeded else 'Already seeded'}: {get_engine().url.render_as_string(hide_password=True)}")
    for order_no, status in sorted(DEMO_ORDERS.items()):
        print(f"  {order_no}  {status}")


if __name__ == "__main__":
    main()
