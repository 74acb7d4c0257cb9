"""The shop's demo data: the customers, products and orders the docs, the test
stories and the benchmarks name (``ES2611210006``...), the shop's categories,
and the row shape and comma-separated word lists that ``shop.db`` and
``shop.catalogue`` share. Plain Python: no database here (``shop.db`` seeds it).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

CATEGORIES = ("electronics", "clothing", "home", "beauty", "sports", "food", "toys", "stationery")

Row = Dict[str, Any]


def words(value: Optional[str]) -> Tuple[str, ...]:
    """The words of a comma-separated column ("men,women" -> ("men", "women"))."""
    return tuple(word.strip() for word in (value or "").split(",") if word.strip())


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
