"""The shop's database: SQLAlchemy 1.4 models, engine and session setup, demo data.

The database is SQLite in the bot folder (``bot/shop.db``) unless the environment
variable ``SHOP_DATABASE_URL`` holds another SQLAlchemy URL, e.g.
``postgresql+psycopg2://shop:secret@localhost/shop``.

Run ``python -m shop.db`` from ``bot/`` to create the tables and seed the demo
data; the action server also does this lazily on first use. Besides the demo
rows below, the seed holds a generated catalogue and synthetic customers with
order histories (``shop.catalogue``), for recommendations and their benchmark.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

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

BOT_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL_ENV = "SHOP_DATABASE_URL"

ORDER_STATUSES = ("awaiting_payment", "awaiting_shipment", "shipped", "completed", "cancelled")
CATEGORIES = ("electronics", "clothing", "home", "beauty", "sports", "food", "toys", "stationery")
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


def words(value: Optional[str]) -> Tuple[str, ...]:
    """The words of a comma-separated column ("men,women" -> ("men", "women"))."""
    return tuple(word.strip() for word in (value or "").split(",") if word.strip())


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


# --- demo data -------------------------------------------------------------------

# id: (name, phone, language)
DEMO_CUSTOMERS: Dict[int, Tuple[str, str, str]] = {
    1: ("王芳", "13812345678", "zh"),
    2: ("李伟", "13987654321", "zh"),
    3: ("Emily Carter", "+852 5123 4567", "en"),
    4: ("James Wilson", "18600002222", "en"),
}

# sku: (name_en, name_zh, category, price_yuan, tags)
DEMO_PRODUCTS: Dict[str, Tuple[str, str, str, str, str]] = {
    "EL-001": ("Wireless noise-cancelling headphones", "无线降噪耳机", "electronics", "899.00", "audio,wireless"),
    "EL-002": ("X12 smartphone (128 GB)", "X12 智能手机（128 GB）", "electronics", "2999.00", "phone"),
    "EL-003": ("10,000 mAh power bank", "10000 毫安充电宝", "electronics", "129.00", "charging,accessory"),
    "CL-001": ("Cotton T-shirt", "纯棉 T 恤", "clothing", "79.00", "tops,cotton"),
    "CL-002": ("Lightweight down jacket", "轻薄羽绒服", "clothing", "499.00", "outerwear,winter"),
    "CL-003": ("Running shoes", "跑步鞋", "clothing", "399.00", "shoes,sport"),
    "HM-001": ("Ceramic mug set", "陶瓷马克杯套装", "home", "69.00", "kitchen"),
    "HM-002": ("Memory-foam pillow", "记忆棉枕头", "home", "159.00", "bedroom"),
    "HM-003": ("LED desk lamp", "LED 护眼台灯", "home", "199.00", "lighting"),
    "BT-001": ("Hydrating face cream", "保湿面霜", "beauty", "259.00", "skincare"),
    "BT-002": ("Sunscreen SPF 50", "防晒霜 SPF50", "beauty", "129.00", "skincare,sun"),
    "BT-003": ("Velvet lipstick", "丝绒口红", "beauty", "189.00", "makeup"),
}


class ProductDetails(NamedTuple):
    """What a product says about itself besides its name and price (columns of ``Product``)."""

    description_en: str
    description_zh: str
    recipients: str
    occasions: str
    styles: str
    seasons: str
    durable: bool


# sku: details of the demo products (their stock is 100)
DEMO_PRODUCT_DETAILS: Dict[str, ProductDetails] = {
    "EL-001": ProductDetails(
        "Wireless headphones with active noise cancelling and 30 hours of battery; quiet on flights and in the office.",
        "无线降噪耳机，续航 30 小时，飞机上、办公室里都能安静下来。",
        "men,women,couples", "birthday,travel,office", "trendy,luxury", "all", True,
    ),
    "EL-002": ProductDetails(
        "The X12 smartphone with 128 GB of storage, a bright OLED screen and a battery that lasts all day.",
        "X12 智能手机，128 GB 存储，OLED 屏幕明亮清晰，电池续航一整天。",
        "men,women,parents", "birthday,festival", "trendy,practical", "all", True,
    ),
    "EL-003": ProductDetails(
        "A pocket-sized 10,000 mAh power bank that charges a phone about twice; handy for travel.",
        "小巧便携的 10000 毫安充电宝，可为手机充电约两次，出行必备。",
        "anyone", "travel,everyday", "practical", "all", True,
    ),
    "CL-001": ProductDetails(
        "A soft, breathable cotton T-shirt for every day.",
        "柔软透气的纯棉 T 恤，日常百搭。",
        "men,women", "everyday", "minimalist,practical", "spring,summer", False,
    ),
    "CL-002": ProductDetails(
        "A lightweight down jacket that packs small and keeps you warm all winter.",
        "轻薄保暖的羽绒服，收纳小巧，整个冬天都温暖。",
        "men,women,parents", "everyday,travel,festival", "practical,minimalist", "autumn,winter", True,
    ),
    "CL-003": ProductDetails(
        "Cushioned running shoes for daily runs and the gym.",
        "缓震跑步鞋，日常跑步、健身都合适。",
        "men,women", "sport,everyday", "sporty", "all", False,
    ),
    "HM-001": ProductDetails(
        "Two ceramic mugs for coffee or tea; a simple gift for couples and new homes.",
        "两只装陶瓷马克杯，喝咖啡、喝茶都合适，送情侣或乔迁新居的简单礼物。",
        "couples", "housewarming,wedding,everyday", "minimalist,cute", "all", True,
    ),
    "HM-002": ProductDetails(
        "A memory-foam pillow that supports the neck for a better night's sleep.",
        "记忆棉枕头，贴合颈部曲线，让睡眠更安稳。",
        "parents,elderly", "everyday,housewarming", "practical", "all", True,
    ),
    "HM-003": ProductDetails(
        "An LED desk lamp with flicker-free, adjustable light for reading and homework.",
        "LED 护眼台灯，无频闪，亮度可调，适合阅读和写作业。",
        "kids,men,women", "office,everyday", "minimalist,practical", "all", True,
    ),
    "BT-001": ProductDetails(
        "A rich hydrating face cream for dry skin, morning and night.",
        "滋润保湿面霜，适合干性肌肤，早晚都可使用。",
        "women", "everyday,birthday", "practical", "autumn,winter", False,
    ),
    "BT-002": ProductDetails(
        "A light SPF 50 sunscreen for the city, the beach and sport.",
        "轻薄的 SPF50 防晒霜，通勤、海边、运动都适用。",
        "anyone", "travel,sport,everyday", "practical", "spring,summer", False,
    ),
    "BT-003": ProductDetails(
        "A velvet-matte lipstick with a soft colour that lasts.",
        "丝绒哑光口红，颜色柔和持久。",
        "women", "birthday,anniversary,festival", "trendy,luxury", "all", False,
    ),
}
DEMO_STOCK = 100

_ADDRESSES = {
    1: "上海市浦东新区世纪大道 100 号 8 楼 801 室",
    2: "北京市朝阳区建国路 88 号 3 号楼 1205 室",
    3: "Flat 12B, 8 Harbour Road, Wan Chai, Hong Kong",
    4: "Room 1502, 200 Nanjing West Road, Jing'an District, Shanghai",
}


def _at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00")


# order_no: (customer_id, status, [(sku, quantity)], courier, tracking_no, created_at, shipped_at)
# Couriers follow bot/knowledge/shipping.yml: ZTO by default, SF Express for
# electronics over 1,000 yuan and for Hong Kong / Macau addresses.
_DEMO_ORDER_ROWS = {
    "ES2610080010": (4, "completed", [("EL-001", 1)], "ZTO", "781026100810", _at("2026-10-08"), _at("2026-10-09")),
    "ES2610120001": (1, "completed", [("CL-001", 2), ("HM-001", 1)], "ZTO", "781026101201", _at("2026-10-12"), _at("2026-10-13")),
    "ES2610300008": (3, "completed", [("BT-002", 1), ("BT-001", 1)], "SF", "SF1402610300008", _at("2026-10-30"), _at("2026-10-31")),
    "ES2611050005": (2, "cancelled", [("BT-003", 1)], None, None, _at("2026-11-05"), None),
    "ES2611190007": (3, "shipped", [("EL-001", 1)], "SF", "SF1402611190007", _at("2026-11-19"), _at("2026-11-20")),
    "ES2611200002": (1, "shipped", [("EL-002", 1)], "SF", "SF1402611200002", _at("2026-11-20"), _at("2026-11-21")),
    "ES2611210006": (2, "shipped", [("CL-003", 1), ("EL-003", 1)], "ZTO", "781026112106", _at("2026-11-21"), _at("2026-11-22")),
    "ES2611230009": (4, "awaiting_shipment", [("HM-002", 1), ("HM-003", 1)], None, None, _at("2026-11-23"), None),
    "ES2611240003": (1, "awaiting_shipment", [("CL-003", 1)], None, None, _at("2026-11-24"), None),
    "ES2611250004": (2, "awaiting_payment", [("CL-002", 1)], None, None, _at("2026-11-25", 9), None),
}

#: The demo orders (order number -> status), for docs and tests.
DEMO_ORDERS: Dict[str, str] = {no: row[1] for no, row in _DEMO_ORDER_ROWS.items()}


Row = Dict[str, Any]


def demo_product_rows() -> List[Row]:
    """The demo products as rows of ``products`` (column name -> value), in catalogue order."""
    return [
        dict(
            sku=sku, name_en=name_en, name_zh=name_zh, category=category, price_yuan=Decimal(price), tags=tags,
            stock=DEMO_STOCK, **DEMO_PRODUCT_DETAILS[sku]._asdict(),
        )
        for sku, (name_en, name_zh, category, price, tags) in DEMO_PRODUCTS.items()
    ]


def demo_customer_rows() -> List[Row]:
    """The demo customers as rows of ``customers``."""
    return [
        dict(id=cid, name=name, phone=phone, language=language)
        for cid, (name, phone, language) in DEMO_CUSTOMERS.items()
    ]


def demo_order_rows() -> List[Row]:
    """The demo orders as rows of ``orders``, each with its ``items``: [(sku, quantity)]."""
    return [
        dict(
            order_no=order_no, customer_id=cid, status=status, address=_ADDRESSES[cid], courier=courier,
            tracking_no=tracking, created_at=created, shipped_at=shipped, items=list(items),
        )
        for order_no, (cid, status, items, courier, tracking, created, shipped) in _DEMO_ORDER_ROWS.items()
    ]


def _insert_rows(session: Session, model: Any, rows: List[Row]) -> None:
    """One bulk INSERT of ``rows`` into the table of ``model`` (keys that are not columns are left out)."""
    columns = set(model.__table__.columns.keys())
    session.execute(insert(model), [{key: value for key, value in row.items() if key in columns} for row in rows])


def _seed(session: Session) -> None:
    """The demo rows first (products 1-12, orders 1-10), then the generated catalogue and customers."""
    from .catalogue import seed_rows  # here, as shop.catalogue imports this module

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
