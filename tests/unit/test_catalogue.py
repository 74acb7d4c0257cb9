"""The generated catalogue and synthetic customers (bot/shop/catalogue.py) and
their seeding next to the demo data (bot/shop/db.py).

The properties are checked on the generated data itself, never on hard-coded
copies of it, so that a change of the type table or the seed keeps them honest.
"""

import json
import re
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))  # the action server runs from bot/: package `shop`

from shop import catalogue, db, demo  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
ORDER_NO = re.compile(r"ES\d{10}")


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    """A fresh SQLite database (SHOP_DATABASE_URL), created on first use."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv(db.DATABASE_URL_ENV, url)
    yield url
    db.dispose_engines()


@pytest.fixture(scope="module")
def products():
    return catalogue.all_products()


@pytest.fixture(scope="module")
def synthetic(products):
    return catalogue.generate_customers_and_orders(products)


def orders_by_customer(synthetic):
    found = defaultdict(list)
    for order in synthetic.orders:
        found[order["customer_id"]].append(order)
    return found


# --- the catalogue ---------------------------------------------------------------------


def test_the_catalogue_is_big_and_every_product_is_named_and_described_in_both_languages(products):
    generated = products[len(demo.DEMO_PRODUCTS):]
    assert len(products) >= 200 and len(generated) == catalogue.GENERATED_PRODUCTS
    assert 45 <= len(catalogue.PRODUCT_TYPES) <= 60
    assert len({p["sku"] for p in products}) == len(products)
    assert len({p["name_en"] for p in products}) == len({p["name_zh"] for p in products}) == len(products)
    for product in products:
        assert product["category"] in demo.CATEGORIES, product["sku"]
        assert product["name_en"] and product["name_zh"] and product["description_en"] and product["description_zh"]
        assert CJK.search(product["name_zh"]) and CJK.search(product["description_zh"]), product["sku"]
        assert not CJK.search(product["name_en"] + product["description_en"]), product["sku"]
        assert max(len(product["description_en"]), len(product["description_zh"])) <= 500
        assert len(product["name_en"]) <= 200 and len(product["name_zh"]) <= 200
    assert {p["category"] for p in generated} == set(demo.CATEGORIES)
    assert demo.CATEGORIES[:4] == ("electronics", "clothing", "home", "beauty")


def test_generated_skus_follow_the_demo_ones_without_colliding(products):
    for product in products[len(demo.DEMO_PRODUCTS):]:
        prefix, number = product["sku"].split("-")
        assert prefix == catalogue.CATEGORY_PREFIXES[product["category"]]
        assert int(number) >= catalogue.FIRST_SKU_NUMBER
    assert set(catalogue.CATEGORY_PREFIXES) == set(demo.CATEGORIES)
    assert len(set(catalogue.CATEGORY_PREFIXES.values())) == len(demo.CATEGORIES)


def test_attributes_are_words_of_the_vocabularies_with_labels_in_both_languages(products):
    for product in products:
        for column, vocabulary in catalogue.VOCABULARIES.items():
            values = demo.words(product[column])
            assert values and set(values) <= set(vocabulary), (product["sku"], column, values)
        assert isinstance(product["durable"], bool)
    for column, vocabulary in catalogue.VOCABULARIES.items():
        assert set(catalogue.LABELS[column]) == set(vocabulary)
        used = {word for p in products for word in demo.words(p[column])}
        assert used == set(vocabulary), (column, set(vocabulary) - used)  # every word is used
    assert set(catalogue.LABELS["categories"]) == set(demo.CATEGORIES)
    for labels in catalogue.LABELS.values():
        for label in labels.values():
            assert label["en"] and not CJK.search(label["en"]) and CJK.search(label["zh"])
    assert catalogue.label("recipients", "parents", "zh") == "父母"


def test_types_companions_and_durability_make_sense():
    types = catalogue.TYPES_BY_KEY
    for kind in catalogue.PRODUCT_TYPES:
        assert kind.category in demo.CATEGORIES and kind.variants in catalogue.VARIANTS
        assert 0 < kind.prices[0] < kind.prices[1]
        for column, vocabulary in catalogue.VOCABULARIES.items():
            assert set(getattr(kind, column)) <= set(vocabulary), (kind.key, column)
    for kind, companions in catalogue.COMPANIONS.items():
        assert kind in types and set(companions) <= set(types), kind
    assert set(catalogue.DEMO_KINDS) == set(demo.DEMO_PRODUCTS)
    assert all(types[key].durable for key in ("smartphone", "headphones", "down_jacket", "bedside_lamp"))
    assert not any(types[key].durable for key in ("serum", "sunscreen", "tea", "socks", "tshirt"))
    assert demo.DEMO_PRODUCT_DETAILS["EL-001"].durable and not demo.DEMO_PRODUCT_DETAILS["BT-002"].durable


def test_prices_look_like_shop_prices_and_span_the_range(products):
    prices = [p["price_yuan"] for p in products]
    generated = [p["price_yuan"] for p in products[len(demo.DEMO_PRODUCTS):]]
    assert all(int(price) in catalogue.PRICE_POINTS for price in generated)
    assert all(price == price.to_integral_value() for price in prices)
    assert min(prices) <= 39 and max(prices) >= 4999
    assert sum(100 <= price <= 1000 for price in prices) >= 100
    assert catalogue.shop_price(1150) == 1199 and catalogue.shop_price(10) == 29


def test_some_products_are_out_of_stock(products):
    generated = products[len(demo.DEMO_PRODUCTS):]
    stocks = [p["stock"] for p in generated]
    assert stocks.count(0) == round(catalogue.OUT_OF_STOCK_SHARE * len(generated))
    assert all(0 <= stock <= catalogue.MAX_STOCK for stock in stocks)
    assert all(p["stock"] == demo.DEMO_STOCK for p in products[: len(demo.DEMO_PRODUCTS)])


def test_generation_is_deterministic(products, synthetic):
    assert catalogue.generate_products(7) == catalogue.generate_products(7)
    assert catalogue.generate_products(7) != catalogue.generate_products(8)
    assert catalogue.all_products() == products
    again = catalogue.generate_customers_and_orders(catalogue.all_products())
    assert again == synthetic
    assert catalogue.generate_customers_and_orders(products, seed=8).orders != synthetic.orders


def test_generation_does_not_depend_on_the_hash_seed(products, synthetic):
    """The same rows in a process with another PYTHONHASHSEED (no iteration over sets of strings)."""
    code = (
        "import json; from shop import catalogue as c; p = c.all_products(); s = c.generate_customers_and_orders(p); "
        "print(json.dumps([p, s.orders], default=str, sort_keys=True))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BOT_DIR, capture_output=True, text=True, timeout=120,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == json.dumps([products, synthetic.orders], default=str, sort_keys=True)


# --- customers and orders -------------------------------------------------------------------


def test_synthetic_customers_and_their_orders(synthetic):
    customers = synthetic.customers
    ids = [c["id"] for c in customers]
    assert ids == list(range(1001, 1301)) and set(synthetic.profiles) == set(ids)
    assert not set(ids) & set(demo.DEMO_CUSTOMERS)
    assert 0.5 <= sum(c["language"] == "zh" for c in customers) / len(customers) <= 0.7
    assert all(CJK.search(c["name"]) for c in customers if c["language"] == "zh")
    assert all(re.fullmatch(r"199000\d{5}", c["phone"]) for c in customers)
    assert len({c["phone"] for c in customers}) == len(customers)
    first_demo_order = min(created for *_, created, _ in demo._DEMO_ORDER_ROWS.values())
    numbers = [o["order_no"] for o in synthetic.orders]
    assert len(set(numbers)) == len(numbers) and not set(numbers) & set(demo.DEMO_ORDERS)
    for customer_id, orders in orders_by_customer(synthetic).items():
        assert 3 <= len(orders) <= 12, customer_id
        assert len({o["address"] for o in orders}) == 1
    for order in synthetic.orders:
        assert ORDER_NO.fullmatch(order["order_no"]) and order["order_no"][2:8] == f"{order['created_at']:%y%m%d}"
        assert datetime(2025, 1, 1) <= order["created_at"] < first_demo_order
        assert 1 <= len(order["items"]) <= 3 and all(quantity >= 1 for _, quantity in order["items"])
    statuses = Counter(o["status"] for o in synthetic.orders)
    assert set(statuses) == {"completed", "cancelled"} and statuses["cancelled"] < 0.1 * len(synthetic.orders)


def test_couriers_follow_the_knowledge_base(products, synthetic):
    by_sku = {p["sku"]: p for p in products}
    for order in synthetic.orders:
        if order["status"] == "cancelled":
            assert order["courier"] is None and order["tracking_no"] is None and order["shipped_at"] is None
            continue
        items = [by_sku[sku] for sku, _ in order["items"]]
        assert order["courier"] == catalogue.courier_for(items, order["address"])
        assert order["tracking_no"] and order["shipped_at"] > order["created_at"]
    assert {o["courier"] for o in synthetic.orders} == {"ZTO", "SF", None}


def test_no_customer_buys_a_durable_product_twice_but_consumables_come_back(products, synthetic):
    durable = {p["sku"] for p in products if p["durable"]}
    repeats = 0
    for customer_id, orders in orders_by_customer(synthetic).items():
        bought = Counter(sku for order in orders for sku, _ in order["items"])
        assert not [sku for sku, times in bought.items() if sku in durable and times > 1], customer_id
        repeats += any(times > 1 for times in bought.values())
    assert repeats >= 0.3 * len(synthetic.customers)


def test_customers_follow_their_taste(products, synthetic):
    """Most items are in a customer's favourite categories, and in their style and price tier more than by chance."""
    by_sku = {p["sku"]: p for p in products}
    tiers = catalogue.price_tiers(products)
    faithful = 0
    style_hits = style_chance = tier_hits = items_seen = 0
    for customer_id, orders in orders_by_customer(synthetic).items():
        profile = synthetic.profiles[customer_id]
        items = [by_sku[sku] for order in orders for sku, _ in order["items"]]
        liked = [p for p in items if p["category"] in profile.categories]
        faithful += len(liked) > len(items) / 2
        offered = [p for p in products if p["category"] in profile.categories]
        style_chance += len(liked) * sum(profile.style in demo.words(p["styles"]) for p in offered) / len(offered)
        style_hits += sum(profile.style in demo.words(p["styles"]) for p in liked)
        tier_hits += sum(tiers[p["sku"]] == profile.tier for p in liked)
        items_seen += len(liked)
    assert faithful >= 0.8 * len(synthetic.customers)
    assert style_hits >= 1.3 * style_chance
    assert tier_hits >= 0.45 * items_seen  # a third by chance
    focused = [cid for cid, profile in synthetic.profiles.items() if profile.recipient]
    assert 0.15 * len(synthetic.customers) <= len(focused) <= 0.45 * len(synthetic.customers)


def test_companions_are_bought_together(products, synthetic):
    kind_of = {p["sku"]: p["kind"] for p in products}
    with_companion = together = 0
    for order in synthetic.orders:
        kinds = [kind_of[sku] for sku, _ in order["items"]]
        if len(kinds) > 1 and kinds[0] in catalogue.COMPANIONS:
            with_companion += 1
            together += bool(set(kinds[1:]) & set(catalogue.COMPANIONS[kinds[0]]))
    assert with_companion >= 50 and together >= 0.5 * with_companion


# --- the database --------------------------------------------------------------------------


def dump(url: str):
    """Every product, customer, order and order line, as plain tuples."""
    tables = (db.Customer, db.Product, db.Order, db.OrderItem)
    with db.session_scope(url) as session:
        return {
            model.__tablename__: [
                tuple(getattr(row, column) for column in model.__table__.columns.keys())
                for row in session.execute(select(model).order_by(model.id)).scalars()
            ]
            for model in tables
        }


def test_init_db_seeds_the_demo_data_and_the_generated_catalogue_identically(tmp_path, products, synthetic):
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    try:
        assert db.init_db(first) is True and db.init_db(second) is True
        assert db.init_db(first) is False
        seeded = dump(first)
        assert seeded == dump(second)
    finally:
        db.dispose_engines()
    assert len(seeded["products"]) == len(products)
    assert len(seeded["customers"]) == len(demo.DEMO_CUSTOMERS) + len(synthetic.customers)
    assert len(seeded["orders"]) == len(demo.DEMO_ORDERS) + len(synthetic.orders)
    assert len(seeded["order_items"]) == sum(len(o["items"]) for o in demo.demo_order_rows() + synthetic.orders)


def test_the_demo_rows_are_unchanged(db_url):
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        customers = {c.id: (c.name, c.phone, c.language) for c in session.execute(select(db.Customer)).scalars()}
        products = {p.sku: p for p in session.execute(select(db.Product).order_by(db.Product.id)).scalars()}
        orders = {o.order_no: o for o in session.execute(select(db.Order)).scalars()}
        assert {cid: customers[cid] for cid in demo.DEMO_CUSTOMERS} == demo.DEMO_CUSTOMERS
        assert [products[sku].id for sku in demo.DEMO_PRODUCTS] == list(range(1, len(demo.DEMO_PRODUCTS) + 1))
        for sku, (name_en, name_zh, category, price, tags) in demo.DEMO_PRODUCTS.items():
            product = products[sku]
            stored = (product.name_en, product.name_zh, product.category, product.tags)
            assert stored == (name_en, name_zh, category, tags)
            assert product.price_yuan == Decimal(price) and product.stock == demo.DEMO_STOCK
            details = demo.DEMO_PRODUCT_DETAILS[sku]
            assert (product.description_en, product.durable) == (details.description_en, details.durable)
            assert product.recipient_list == demo.words(details.recipients)
        for order_no, (cid, status, items, courier, tracking, created, shipped) in demo._DEMO_ORDER_ROWS.items():
            order = orders[order_no]
            stored = (order.customer_id, order.status, order.courier, order.tracking_no)
            assert stored == (cid, status, courier, tracking)
            assert (order.created_at, order.shipped_at, order.address) == (created, shipped, demo._ADDRESSES[cid])
            assert [(line.product.sku, line.quantity) for line in order.items] == items
        assert [orders[no].id for no in demo.DEMO_ORDERS] == list(range(1, 11))
        # the demo customers have only their demo orders
        demo_orders = [o.order_no for o in orders.values() if o.customer_id in demo.DEMO_CUSTOMERS]
        assert sorted(demo_orders) == sorted(demo.DEMO_ORDERS)


def test_product_attribute_lists(db_url):
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        product = session.execute(select(db.Product).where(db.Product.sku == "EL-001")).scalar_one()
        assert product.recipient_list == ("men", "women", "couples")
        assert product.occasion_list and product.style_list and product.season_list == ("all",)
        assert product.tag_list == ("audio", "wireless")


def test_a_database_made_before_the_new_columns_gives_a_clear_error(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE products (id INTEGER PRIMARY KEY, sku VARCHAR(32) NOT NULL UNIQUE, name_en VARCHAR(200),"
            " name_zh VARCHAR(200), category VARCHAR(32), price_yuan INTEGER, tags VARCHAR(200))"
        )
        connection.execute("INSERT INTO products VALUES (1, 'EL-001', 'x', 'x', 'electronics', 89900, '')")
    connection.close()
    try:
        with pytest.raises(RuntimeError, match=r"older version.*description_en.*Delete the file.*SHOP_DATABASE_URL"):
            db.init_db(f"sqlite:///{path}")
    finally:
        db.dispose_engines()


# --- the listing ------------------------------------------------------------------------------


def test_the_listing_prints_one_line_per_product_and_customer_histories(capsys, products, synthetic):
    catalogue.main(["--customers", "2"])
    lines = capsys.readouterr().out.splitlines()
    for product, line in zip(products, lines):
        assert line.startswith(product["sku"]) and line.endswith(f"| {product['name_en']} | {product['name_zh']}")
        assert f"styles={product['styles']}" in line and ("durable" in line) == product["durable"]
    assert lines[len(products)].startswith(f"# {len(products)} products")
    first = synthetic.customers[0]
    assert any(line.startswith(f"{first['id']} {first['name']}") for line in lines)
    assert sum(bool(ORDER_NO.search(line)) for line in lines) == sum(
        o["customer_id"] in (1001, 1002) for o in synthetic.orders
    )
