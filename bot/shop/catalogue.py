"""A generated catalogue and synthetic customers, for recommendations and their benchmark.

The 12 demo products of ``shop.db`` are too few to recommend from, and the 4 demo
customers too few to learn tastes from. This module makes more, deterministically
from a seed (``random.Random(seed)``), never from hand-copied rows:

* :func:`generate_products`: about 220 products, each a product *type* of
  :data:`PRODUCT_TYPES` (a cashmere scarf, a tea set, ...) in one *variant* of
  :data:`VARIANTS` (a colour, a size, an edition, ...), with English and Chinese
  names and descriptions, a shop price, a stock (about 8 % sold out) and the
  attribute words a recommender reasons with: recipients, occasions, styles and
  seasons (the vocabularies :data:`RECIPIENTS`, :data:`OCCASIONS`, :data:`STYLES`,
  :data:`SEASONS`, worded by :data:`LABELS`), and whether one owns it once
  (``durable``) or buys it again.
* :func:`generate_customers_and_orders`: 300 customers, each with a
  :class:`TasteProfile` (favourite categories, a style, a price tier, sometimes
  someone they buy for) and 3-12 past orders that mostly follow it; products of
  :data:`COMPANIONS` are often bought together, consumables are bought again and
  durable products never twice.

``shop.db`` seeds all of it next to the demo data. ``python -m shop.catalogue``
(from ``bot/``) lists the catalogue; ``--customers N`` adds N customers' histories.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from .demo import CATEGORIES, DEMO_ORDERS, Row, demo_product_rows, words

DEFAULT_SEED = 2026
GENERATED_PRODUCTS = 220
SYNTHETIC_CUSTOMERS = 300
FIRST_CUSTOMER_ID = 1001
FIRST_SKU_NUMBER = 101  # the demo SKUs are numbered from 001
OUT_OF_STOCK_SHARE = 0.08
MAX_STOCK = 500
ZH_SHARE = 0.6  # customers who speak Chinese
ORDERS_PER_CUSTOMER = (3, 12)
HISTORY_START, HISTORY_END = datetime(2025, 1, 1), datetime(2026, 9, 30, 23, 59)  # before the demo orders
PROFILE_SHARE = 0.8  # items that follow the customer's taste; the others are picked at random
REPEAT_SHARE = 0.15  # items that are a consumable the customer bought before
COMPANION_SHARE = 0.7  # second and third items that go with one already in the basket
CANCELLED_SHARE = 0.05

CATEGORY_PREFIXES: Dict[str, str] = {
    "electronics": "EL", "clothing": "CL", "home": "HM", "beauty": "BT",
    "sports": "SP", "food": "FD", "toys": "TY", "stationery": "ST",
}
TIERS = ("budget", "mid", "premium")  # a third of each category's products each, by price


# --- vocabularies ---------------------------------------------------------------------


def _labelled(*entries: Tuple[str, str, str]) -> Dict[str, Dict[str, str]]:
    return {word: {"en": en, "zh": zh} for word, en, zh in entries}


#: English and Chinese display labels of every vocabulary word (and category), for reasons
#: and descriptions: LABELS["recipients"]["parents"] == {"en": "parents", "zh": "父母"}.
LABELS: Dict[str, Dict[str, Dict[str, str]]] = {
    "recipients": _labelled(
        ("men", "men", "男士"), ("women", "women", "女士"), ("kids", "kids", "孩子"),
        ("parents", "parents", "父母"), ("elderly", "the elderly", "长辈"), ("couples", "couples", "情侣"),
        ("anyone", "anyone", "所有人"),
    ),
    "occasions": _labelled(
        ("birthday", "birthdays", "生日"), ("festival", "festivals", "节日"), ("wedding", "weddings", "婚礼"),
        ("anniversary", "anniversaries", "纪念日"), ("everyday", "everyday use", "日常"),
        ("office", "the office", "办公"), ("travel", "travel", "旅行"), ("sport", "sport", "运动"),
        ("housewarming", "housewarmings", "乔迁"),
    ),
    "styles": _labelled(
        ("classic", "classic", "经典"), ("minimalist", "minimalist", "简约"), ("sporty", "sporty", "运动"),
        ("cute", "cute", "可爱"), ("luxury", "luxury", "轻奢"), ("practical", "practical", "实用"),
        ("trendy", "trendy", "潮流"),
    ),
    "seasons": _labelled(
        ("spring", "spring", "春季"), ("summer", "summer", "夏季"), ("autumn", "autumn", "秋季"),
        ("winter", "winter", "冬季"), ("all", "all year round", "四季"),
    ),
    "categories": _labelled(
        ("electronics", "electronics", "数码电子"), ("clothing", "clothing", "服装"), ("home", "home", "家居"),
        ("beauty", "beauty", "美妆个护"), ("sports", "sports", "运动户外"), ("food", "food", "食品"),
        ("toys", "toys", "玩具"), ("stationery", "stationery", "文具"),
    ),
}
RECIPIENTS = tuple(LABELS["recipients"])
OCCASIONS = tuple(LABELS["occasions"])
STYLES = tuple(LABELS["styles"])
SEASONS = tuple(LABELS["seasons"])
#: product column -> its vocabulary
VOCABULARIES: Dict[str, Tuple[str, ...]] = {
    "recipients": RECIPIENTS, "occasions": OCCASIONS, "styles": STYLES, "seasons": SEASONS,
}


# --- product types and variants -----------------------------------------------------------


class Variant(NamedTuple):
    """A colour, size, edition... of a product type; ``factor`` scales its price."""

    en: str
    zh: str
    factor: float = 1.0


class ProductType(NamedTuple):
    """A kind of product; a name with "{}" takes the variant there, else after a comma (en) or space (zh)."""

    key: str
    name_en: str
    name_zh: str
    category: str
    prices: Tuple[int, int]  # yuan, before the variant's factor
    variants: str  # a key of VARIANTS
    recipients: Tuple[str, ...]
    occasions: Tuple[str, ...]
    styles: Tuple[str, ...]
    seasons: Tuple[str, ...]
    durable: bool
    tags: str
    about_en: str
    about_zh: str


def _variants(*entries: Tuple) -> Tuple[Variant, ...]:
    return tuple(Variant(*entry) for entry in entries)


VARIANTS: Dict[str, Tuple[Variant, ...]] = {
    "colour": _variants(
        ("black", "黑色"), ("white", "白色"), ("grey", "灰色"), ("navy", "藏青色"), ("red", "红色"),
        ("beige", "米色"), ("dark green", "墨绿色"), ("pink", "粉色"), ("camel", "驼色"),
    ),
    "tech_colour": _variants(
        ("midnight black", "午夜黑"), ("silver", "银色"), ("pearl white", "珍珠白"), ("ocean blue", "海蓝色"),
        ("rose gold", "玫瑰金"), ("sage green", "松石绿"),
    ),
    "leather": _variants(("black", "黑色"), ("dark brown", "深棕色"), ("tan", "棕褐色"), ("burgundy", "酒红色"), ("navy", "藏青色")),
    "edition": _variants(
        ("standard edition", "标准版"), ("sport edition", "运动版", 1.05), ("classic edition", "经典版", 1.1),
        ("gift box edition", "礼盒版", 1.2), ("pro edition", "专业版", 1.4), ("limited edition", "限量版", 1.6),
    ),
    "phone_model": _variants(
        ("A5 (64 GB)", "A5（64 GB）", 0.55), ("A5 (128 GB)", "A5（128 GB）", 0.65), ("S20 (128 GB)", "S20（128 GB）"),
        ("S20 (256 GB)", "S20（256 GB）", 1.2), ("S20 Pro (256 GB)", "S20 Pro（256 GB）", 1.6),
        ("S20 Pro (512 GB)", "S20 Pro（512 GB）", 1.9), ("Fold (512 GB)", "Fold（512 GB）", 2.6),
    ),
    "laptop": _variants(
        ("13-inch ultralight", "13 英寸轻薄版", 0.95), ("14-inch, 16 GB", "14 英寸 16 GB"),
        ("14-inch, 32 GB", "14 英寸 32 GB", 1.2), ("16-inch, 16 GB", "16 英寸 16 GB", 1.15),
        ("16-inch, 32 GB", "16 英寸 32 GB", 1.35),
    ),
    "capacity": _variants(
        ("mini 5,000 mAh", "迷你 5000 毫安", 0.7), ("magnetic 5,000 mAh", "磁吸 5000 毫安", 0.9),
        ("slim 10,000 mAh", "超薄 10000 毫安"), ("20,000 mAh", "20000 毫安", 1.2),
        ("20,000 mAh fast-charge", "20000 毫安快充", 1.5),
    ),
    "case": _variants(
        ("clear", "透明"), ("silicone", "液态硅胶", 1.2), ("cartoon", "卡通印花", 1.1), ("shockproof", "防摔", 1.3),
        ("leather", "皮革", 1.8), ("magnetic", "磁吸", 1.5),
    ),
    "scent": _variants(
        ("lavender", "薰衣草"), ("sandalwood", "檀香", 1.2), ("osmanthus", "桂花"), ("grapefruit", "西柚"),
        ("white tea", "白茶", 1.1), ("rose", "玫瑰", 1.1), ("cedar", "雪松", 1.2),
    ),
    "purifier": _variants(
        ("compact", "小巧款", 0.7), ("standard", "标准款"), ("anti-allergy", "除过敏原款", 1.2),
        ("smart, with app", "智能联网款", 1.4), ("large-room", "大空间款", 1.6),
    ),
    "porcelain": _variants(
        ("Celadon", "青瓷"), ("White porcelain", "白瓷", 0.8), ("Purple clay", "紫砂", 1.4), ("Glass", "玻璃", 0.6),
        ("Blue-and-white porcelain", "青花瓷", 1.1), ("Ru kiln", "汝窑", 1.5),
    ),
    "massage_chair": _variants(
        ("compact", "小户型款", 0.75), ("classic", "经典款"), ("zero-gravity", "零重力款", 1.15),
        ("full-body 4D", "4D 全身款", 1.3),
    ),
    "size_ml": _variants(
        ("travel size, 15 ml", "旅行装 15 毫升", 0.6), ("30 ml", "30 毫升"), ("50 ml", "50 毫升", 1.4),
        ("100 ml", "100 毫升", 2.2), ("duo pack, 2 × 30 ml", "两支装 2×30 毫升", 1.8),
    ),
    "mask": _variants(
        ("Hyaluronic acid", "玻尿酸"), ("Green tea", "绿茶"), ("Rose", "玫瑰"), ("Rice", "大米"), ("Aloe", "芦荟"),
        ("Collagen", "胶原蛋白", 1.3),
    ),
    "shade": _variants(
        ("ruby red", "正红色"), ("coral", "珊瑚色"), ("nude", "裸色"), ("rose pink", "玫瑰粉"),
        ("brick red", "砖红色"), ("plum", "梅子色"),
    ),
    "spf": _variants(
        ("SPF 30, 50 ml", "SPF30 50 毫升", 0.8), ("SPF 50+, 50 ml", "SPF50+ 50 毫升"),
        ("SPF 50+, 100 ml", "SPF50+ 100 毫升", 1.6), ("kids' SPF 50, 50 ml", "儿童 SPF50 50 毫升"),
        ("sport SPF 50+, 70 ml", "运动型 SPF50+ 70 毫升", 1.2),
    ),
    "weight": _variants(
        ("2 × 5 kg", "5 公斤×2", 0.6), ("2 × 10 kg", "10 公斤×2"), ("2 × 15 kg", "15 公斤×2", 1.4),
        ("2 × 20 kg", "20 公斤×2", 1.8), ("2 × 24 kg", "24 公斤×2", 2.1),
    ),
    "tent": _variants(
        ("ultralight 1-person", "超轻单人", 1.1), ("2-person", "双人"), ("3-person", "三人", 1.3),
        ("4-person", "四人", 1.6), ("6-person family", "六人家庭", 2.2),
    ),
    "flavour": _variants(
        ("chocolate", "巧克力味"), ("vanilla", "香草味"), ("matcha", "抹茶味"), ("strawberry", "草莓味"),
        ("unflavoured", "原味"), ("coffee", "咖啡味"),
    ),
    "tea": _variants(
        ("Longjing tea", "西湖龙井", 1.4), ("Tieguanyin oolong", "安溪铁观音"), ("Pu'er tea", "云南普洱", 1.2),
        ("Da Hong Pao rock tea", "武夷大红袍", 1.5), ("Biluochun green tea", "洞庭碧螺春", 1.2),
        ("Fuding white tea", "福鼎白茶", 1.1), ("Jasmine tea", "茉莉花茶", 0.6),
    ),
    "filling": _variants(
        ("lotus seed paste", "莲蓉"), ("red bean", "红豆", 0.8), ("custard", "奶黄"), ("five-nut", "五仁", 0.8),
        ("salted egg yolk", "蛋黄莲蓉", 1.3), ("snow skin", "冰皮", 1.1),
    ),
    "nuts": _variants(
        ("15 packs", "15 袋装", 0.6), ("30 packs", "30 袋装"), ("kids', 30 packs", "儿童款 30 袋装", 1.1),
        ("gift box, 40 packs", "40 袋礼盒装", 1.5),
    ),
    "coffee": _variants(
        ("Yunnan", "云南"), ("Ethiopian Yirgacheffe", "埃塞俄比亚耶加雪菲", 1.4), ("Colombian", "哥伦比亚", 1.1),
        ("Brazilian", "巴西"), ("Espresso blend", "意式拼配", 0.9), ("Decaf", "低因", 1.1),
    ),
    "chocolate": _variants(
        ("dark, 24 pieces", "黑巧克力 24 颗装"), ("milk, 24 pieces", "牛奶巧克力 24 颗装"),
        ("assorted, 36 pieces", "什锦 36 颗装", 1.4), ("truffles, 16 pieces", "松露 16 颗装", 1.2),
        ("hazelnut, 24 pieces", "榛子 24 颗装"),
    ),
    "honey": _variants(
        ("Acacia", "洋槐"), ("Jujube flower", "枣花"), ("Longan", "龙眼", 1.1), ("Wildflower", "百花", 0.8),
        ("Linden", "椴树", 1.2),
    ),
    "wine": _variants(
        ("Bordeaux", "波尔多", 1.3), ("Ningxia Helan Mountain", "宁夏贺兰山"), ("Rioja", "里奥哈"),
        ("Napa Valley", "纳帕谷", 1.5), ("Barossa", "巴罗萨"), ("Chianti", "基安蒂", 0.9),
    ),
    "blocks": _variants(
        ("City", "城市"), ("Space", "太空", 1.2), ("Castle", "城堡", 1.3), ("Race car", "赛车"),
        ("Dinosaur", "恐龙", 0.9), ("Great Wall", "长城", 1.6),
    ),
    "animal": _variants(
        ("Panda", "熊猫"), ("Rabbit", "兔子"), ("Teddy bear", "小熊"), ("Cat", "猫咪"), ("Corgi", "柯基"),
        ("Dinosaur", "恐龙"), ("Penguin", "企鹅"),
    ),
    "rc": _variants(
        ("Off-road", "越野"), ("Drift", "漂移", 1.1), ("Stunt", "特技", 0.9), ("Monster truck", "大脚", 1.2),
        ("Racing", "竞速", 1.3),
    ),
    "puzzle": _variants(
        ("West Lake", "西湖"), ("Great Wall", "长城"), ("Starry night", "星空"), ("World map", "世界地图"),
        ("Guilin landscape", "桂林山水"), ("Cats", "猫咪"),
    ),
    "science": _variants(
        ("chemistry", "化学"), ("crystal growing", "水晶生长"), ("electric circuits", "电路"),
        ("microscope", "显微镜", 1.4), ("solar robot", "太阳能机器人", 1.2), ("volcano", "火山", 0.8),
    ),
    "game": _variants(
        ("Family", "家庭"), ("Strategy", "策略", 1.3), ("Party", "派对", 0.8), ("Chinese idiom", "成语", 0.7),
        ("Detective", "推理", 1.1),
    ),
    "pen_finish": _variants(
        ("black lacquer", "黑漆"), ("brushed steel", "拉丝钢", 0.8), ("navy blue", "藏青", 0.9),
        ("burgundy", "酒红", 0.9), ("gold trim", "金夹", 1.6), ("jade green", "翠绿"),
    ),
    "brush": _variants(
        ("beginner", "入门款", 0.6), ("student", "学生款", 0.8), ("classic", "经典款"),
        ("travel size", "便携款", 0.9), ("collector's edition", "收藏款", 1.8),
    ),
    "gel": _variants(
        ("black", "黑色"), ("blue", "蓝色"), ("red", "红色"), ("assorted colours", "多色", 1.3),
        ("black and red", "黑红双色", 1.1),
    ),
    "organiser": _variants(
        ("Walnut", "胡桃木", 1.5), ("Bamboo", "竹制"), ("Acrylic", "亚克力", 0.8), ("Metal mesh", "金属网格", 0.7),
        ("Oak", "橡木", 1.3),
    ),
    "palette": _variants(
        ("12 colours", "12 色", 0.5), ("24 colours", "24 色", 0.8), ("36 colours", "36 色"),
        ("48 colours", "48 色", 1.3), ("72 colours, artist grade", "72 色大师级", 2.0),
    ),
}


def _type(
    key: str, names: Tuple[str, str], category: str, prices: Tuple[int, int], variants: str,
    recipients: str, occasions: str, styles: str, seasons: str, durable: bool, tags: str, about: Tuple[str, str],
) -> ProductType:
    """A row of the type table; the attribute words are space-separated."""
    return ProductType(
        key, *names, category, prices, variants, tuple(recipients.split()), tuple(occasions.split()),
        tuple(styles.split()), tuple(seasons.split()), durable, tags, *about,
    )


# key, (name en, zh), category, (price range), variants, recipients, occasions, styles, seasons,
# durable, tags, (about en, zh)
PRODUCT_TYPES: Tuple[ProductType, ...] = (
    # electronics
    _type("smartphone", ("Smartphone {}", "智能手机 {}"), "electronics", (1499, 3499), "phone_model",
          "men women parents", "birthday festival", "trendy practical luxury", "all", True, "phone",
          ("a bright screen, a battery that lasts all day and a camera that shines at night",
           "屏幕明亮，续航一整天，夜景拍照出色")),
    _type("earbuds", ("Wireless earbuds", "真无线蓝牙耳机"), "electronics", (199, 899), "tech_colour",
          "men women couples", "birthday everyday sport travel", "trendy sporty minimalist", "all", True,
          "audio,wireless", ("light in the ear, with clear sound and noise reduction for calls",
                             "佩戴轻巧，音质清晰，通话降噪")),
    _type("headphones", ("Over-ear headphones", "头戴式降噪耳机"), "electronics", (499, 1999), "tech_colour",
          "men women", "birthday travel office", "classic luxury minimalist", "all", True, "audio,wireless",
          ("deep, quiet sound for long flights and focused work", "降噪深沉安静，长途飞行和专注工作都合适")),
    _type("smartwatch", ("Smart watch", "智能手表"), "electronics", (599, 2499), "edition",
          "men women parents", "birthday anniversary sport", "sporty trendy luxury", "all", True, "wearable,sport",
          ("tracks heart rate, sleep and workouts, with a week of battery", "监测心率、睡眠和运动，续航长达一周")),
    _type("power_bank", ("Power bank", "充电宝"), "electronics", (79, 249), "capacity",
          "anyone", "travel everyday", "practical minimalist", "all", True, "charging,accessory",
          ("small enough for a pocket, with fast charging for phones", "小巧好携带，支持手机快充")),
    _type("phone_case", ("{} phone case", "{}手机壳"), "electronics", (29, 89), "case",
          "anyone", "everyday", "cute trendy practical", "all", False, "phone,accessory",
          ("protects the phone from drops and scratches", "防摔防刮，保护手机")),
    _type("speaker", ("Bluetooth speaker", "蓝牙音箱"), "electronics", (149, 1299), "tech_colour",
          "anyone", "housewarming birthday travel", "trendy practical", "all", True, "audio,wireless",
          ("room-filling sound and a battery for a whole party", "音效饱满，电量足够撑完一场聚会")),
    _type("laptop", ("Laptop", "笔记本电脑"), "electronics", (3999, 5499), "laptop",
          "men women", "office travel", "minimalist practical luxury", "all", True, "computer,office",
          ("light and fast for work, study and travel", "轻薄高效，办公、学习、出差都顺手")),
    # clothing
    _type("scarf", ("Cashmere scarf", "羊绒围巾"), "clothing", (199, 899), "colour",
          "women parents elderly", "birthday festival", "classic luxury", "autumn winter", True, "accessory,winter",
          ("soft on the skin and warm on cold days", "柔软亲肤，寒冷天气里格外温暖")),
    _type("sweater", ("Wool sweater", "羊毛衫"), "clothing", (299, 899), "colour",
          "men women parents", "festival birthday", "classic minimalist", "autumn winter", True, "tops,winter",
          ("fine merino wool that keeps its shape", "细腻美利奴羊毛，不易变形")),
    _type("tshirt", ("Printed T-shirt", "印花 T 恤"), "clothing", (59, 199), "colour",
          "men women kids couples", "everyday", "trendy cute minimalist", "spring summer", False, "tops,cotton",
          ("soft cotton with a playful print", "纯棉柔软，印花俏皮")),
    _type("socks", ("Sports socks (5 pairs)", "运动袜（5 双装）"), "clothing", (25, 79), "colour",
          "anyone", "sport everyday", "sporty practical", "all", False, "socks,sport",
          ("cushioned soles that keep feet dry", "袜底加厚，吸汗透气")),
    _type("down_jacket", ("Down jacket", "羽绒服"), "clothing", (599, 1999), "colour",
          "men women parents kids", "festival everyday", "classic practical trendy", "winter", True,
          "outerwear,winter", ("warm goose down for the coldest days", "鹅绒填充，严寒天气也暖和")),
    _type("pyjamas", ("Silk pyjamas", "真丝睡衣"), "clothing", (399, 1299), "colour",
          "women couples parents", "anniversary wedding birthday", "luxury classic", "all", True, "sleepwear",
          ("smooth mulberry silk for a comfortable night", "桑蚕丝顺滑亲肤，睡得更舒适")),
    _type("belt", ("Leather belt", "真皮腰带"), "clothing", (199, 599), "leather",
          "men parents", "birthday festival office", "classic luxury", "all", True, "accessory",
          ("full-grain leather with a brushed metal buckle", "头层牛皮，拉丝金属扣")),
    _type("hoodie", ("Kids' hoodie", "儿童连帽卫衣"), "clothing", (99, 259), "colour",
          "kids", "everyday birthday", "cute sporty", "spring autumn", False, "kids,tops",
          ("soft fleece for school and play", "柔软抓绒，上学玩耍都舒服")),
    # home
    _type("mug", ("Ceramic coffee mug", "陶瓷咖啡杯"), "home", (39, 129), "colour",
          "anyone", "everyday office", "cute minimalist", "all", True, "kitchen",
          ("a hand-glazed mug for the morning coffee", "手工釉面，适合每天早上的一杯咖啡")),
    _type("pillowcase", ("Silk pillowcase", "真丝枕套"), "home", (129, 399), "colour",
          "women couples", "wedding anniversary birthday", "luxury", "all", True, "bedroom",
          ("gentle on skin and hair while you sleep", "睡觉时呵护皮肤和头发")),
    _type("bedside_lamp", ("Bedside lamp", "床头灯"), "home", (99, 459), "tech_colour",
          "anyone", "housewarming everyday", "minimalist cute", "all", True, "lighting",
          ("warm, dimmable light for reading in bed", "暖光可调，适合睡前阅读")),
    _type("bedding", ("Cotton bedding set (4 pieces)", "纯棉床品四件套"), "home", (299, 999), "colour",
          "couples parents", "wedding housewarming", "classic luxury", "all", True, "bedroom",
          ("long-staple cotton that gets softer with every wash", "长绒棉越洗越柔软")),
    _type("candle", ("{} scented candle", "{}香薰蜡烛"), "home", (59, 199), "scent",
          "women couples", "birthday anniversary housewarming", "cute luxury minimalist", "autumn winter", False,
          "fragrance", ("a soy-wax candle that burns for about 40 hours", "大豆蜡制成，可燃烧约 40 小时")),
    _type("air_purifier", ("Air purifier", "空气净化器"), "home", (899, 2499), "purifier",
          "parents elderly kids", "housewarming", "practical", "all", True, "appliance",
          ("filters dust, pollen and smoke from the air at home", "过滤家中的粉尘、花粉和烟味")),
    _type("tea_set", ("{} tea set", "{}茶具套装"), "home", (199, 1299), "porcelain",
          "parents elderly men", "festival housewarming", "classic luxury", "all", True, "tea,kitchen",
          ("a teapot and six cups for tea with family and friends", "一壶六杯，与亲友围坐品茶")),
    _type("neck_massager", ("Neck massager", "颈椎按摩仪"), "home", (199, 699), "tech_colour",
          "parents elderly", "festival birthday", "practical", "all", True, "massage,health",
          ("gentle heat and pulses that ease a stiff neck", "温热加脉冲按摩，缓解颈部僵硬")),
    _type("massage_chair", ("Massage chair", "按摩椅"), "home", (4499, 6499), "massage_chair",
          "parents elderly", "festival", "luxury practical", "all", True, "massage,health",
          ("a full-body massage at home after a long day", "在家享受全身按摩，缓解一天的疲惫")),
    _type("thermos", ("Insulated bottle", "保温杯"), "home", (79, 259), "colour",
          "anyone parents", "office travel everyday", "practical minimalist", "all", True, "kitchen,travel",
          ("keeps drinks hot for 12 hours", "保温长达 12 小时")),
    # beauty
    _type("serum", ("Face serum", "精华液"), "beauty", (199, 449), "size_ml",
          "women", "birthday festival everyday", "luxury practical", "all", False, "skincare",
          ("a light serum that brightens and firms the skin", "质地轻薄，提亮紧致肌肤")),
    _type("masks", ("{} sheet masks (10 pack)", "{}补水面膜（10 片装）"), "beauty", (59, 199), "mask",
          "women", "everyday", "cute practical", "all", False, "skincare",
          ("ten minutes of deep hydration after a long day", "十分钟深层补水，舒缓一天的疲惫")),
    _type("lipstick", ("Matte lipstick", "哑光口红"), "beauty", (129, 329), "shade",
          "women", "birthday anniversary festival", "trendy luxury cute", "all", False, "makeup",
          ("a creamy matte colour that lasts all day", "哑光质地顺滑，持色一整天")),
    _type("perfume", ("Eau de parfum", "{}香水"), "beauty", (299, 1299), "scent",
          "women men couples", "anniversary birthday wedding", "luxury classic", "all", False, "fragrance",
          ("a lasting signature scent in an elegant glass bottle", "优雅玻璃瓶装，留香持久")),
    _type("hand_cream", ("{} hand cream gift set", "{}护手霜礼盒"), "beauty", (59, 199), "scent",
          "women parents elderly", "festival birthday", "cute practical", "autumn winter", False, "skincare",
          ("three tubes of rich hand cream for dry winter hands", "三支装滋润护手霜，冬天双手不干燥")),
    _type("shaver", ("Electric shaver", "电动剃须刀"), "beauty", (299, 1499), "tech_colour",
          "men parents", "birthday festival", "practical luxury", "all", True, "grooming",
          ("a close, gentle shave, wet or dry", "干湿两用，剃得干净又温和")),
    _type("sunscreen", ("Sunscreen lotion", "防晒乳"), "beauty", (79, 229), "spf",
          "anyone", "travel sport", "practical", "spring summer", False, "skincare,sun",
          ("light, water-resistant protection from the sun", "质地轻薄，防水防汗")),
    _type("hair_dryer", ("Ionic hair dryer", "负离子吹风机"), "beauty", (199, 1999), "tech_colour",
          "women", "birthday", "practical luxury trendy", "all", True, "haircare",
          ("dries hair fast and leaves it smooth", "快速吹干，秀发顺滑")),
    # sports
    _type("yoga_mat", ("Yoga mat", "瑜伽垫"), "sports", (79, 299), "colour",
          "women", "sport", "sporty minimalist", "all", True, "yoga,sport",
          ("a non-slip, cushioned mat for workouts at home", "防滑加厚，居家锻炼更安心")),
    _type("trail_shoes", ("Trail running shoes", "越野跑鞋"), "sports", (399, 999), "colour",
          "men women", "sport", "sporty", "all", False, "shoes,sport",
          ("grippy soles for mountain trails and city runs", "鞋底抓地力强，山路城市都能跑")),
    _type("dumbbells", ("Adjustable dumbbells", "可调节哑铃"), "sports", (199, 799), "weight",
          "men", "sport", "sporty practical", "all", True, "fitness",
          ("change the weight in seconds for a full workout at home", "几秒调节重量，在家就能全身训练")),
    _type("fitness_band", ("Fitness band", "运动手环"), "sports", (149, 399), "tech_colour",
          "anyone", "sport everyday", "sporty minimalist", "all", True, "wearable,sport",
          ("counts steps, heart rate and sleep", "记录步数、心率和睡眠")),
    _type("sports_bottle", ("Sports water bottle", "运动水壶"), "sports", (49, 129), "colour",
          "anyone kids", "sport travel", "sporty practical", "spring summer", False, "sport",
          ("a leak-proof bottle for the gym and the trail", "密封防漏，健身登山都好用")),
    _type("tent", ("Camping tent", "{}露营帐篷"), "sports", (399, 1299), "tent",
          "couples parents", "travel", "practical", "spring summer autumn", True, "outdoor,travel",
          ("sets up in minutes and keeps the rain out", "几分钟即可搭好，防风防雨")),
    _type("protein", ("Whey protein powder", "乳清蛋白粉"), "sports", (199, 459), "flavour",
          "men women", "sport", "sporty practical", "all", False, "fitness",
          ("25 g of protein a scoop for recovery after training", "每勺 25 克蛋白质，训练后快速补充")),
    # food
    _type("tea", ("{} gift box", "{}礼盒"), "food", (129, 899), "tea",
          "parents elderly men", "festival housewarming", "classic luxury", "all", False, "tea",
          ("carefully picked leaves with a lasting fragrance", "精选茶叶，香气持久")),
    _type("mooncakes", ("Mooncake gift box", "{}月饼礼盒"), "food", (99, 399), "filling",
          "anyone", "festival", "classic luxury", "autumn", False, "festival,snacks",
          ("freshly baked mooncakes for the Mid-Autumn Festival", "新鲜烘焙，中秋团圆的味道")),
    _type("nuts", ("Daily mixed nuts", "每日坚果"), "food", (69, 199), "nuts",
          "anyone", "everyday office festival", "practical", "all", False, "snacks",
          ("a small pack of nuts and dried fruit for every day", "坚果果干，每日一小袋")),
    _type("coffee", ("{} coffee beans (500 g)", "{}咖啡豆 500 克"), "food", (69, 259), "coffee",
          "men women", "office everyday", "trendy", "all", False, "coffee",
          ("freshly roasted beans for espresso or pour-over", "新鲜烘焙，意式或手冲皆可")),
    _type("chocolate", ("Chocolate gift box", "巧克力礼盒"), "food", (79, 399), "chocolate",
          "women couples kids", "anniversary birthday festival", "cute luxury", "autumn winter", False, "sweets",
          ("handmade chocolates in a box tied with ribbon", "手工巧克力，丝带礼盒包装")),
    _type("honey", ("{} honey (500 g)", "{}蜂蜜 500 克"), "food", (69, 199), "honey",
          "parents elderly", "everyday festival", "practical classic", "all", False, "honey",
          ("pure honey, matured in the hive", "纯正天然成熟蜜")),
    _type("wine", ("{} red wine", "{}红葡萄酒"), "food", (199, 1299), "wine",
          "men couples parents", "wedding anniversary festival housewarming", "luxury classic", "all", False, "wine",
          ("a smooth red for a celebration dinner", "口感顺滑，适合庆祝的晚餐")),
    # toys
    _type("blocks", ("{} building block set", "{}主题积木"), "toys", (99, 899), "blocks",
          "kids", "birthday festival", "cute trendy", "all", True, "toys,kids",
          ("hours of building fun, with a poster and instructions", "附图纸和说明，能玩上好几个小时")),
    _type("plush", ("{} plush toy", "{}毛绒公仔"), "toys", (59, 259), "animal",
          "kids couples women", "birthday festival anniversary", "cute", "all", True, "toys",
          ("a huggable friend made of soft, safe plush", "柔软安全的毛绒，抱着很舒服")),
    _type("rc_car", ("{} remote-control car", "{}遥控车"), "toys", (149, 599), "rc",
          "kids", "birthday festival", "trendy sporty", "all", True, "toys,kids",
          ("fast, rechargeable and built to survive crashes", "速度快，可充电，耐摔耐撞")),
    _type("puzzle", ("Jigsaw puzzle, {} (1000 pieces)", "{}拼图（1000 片）"), "toys", (69, 199), "puzzle",
          "anyone couples", "everyday festival", "classic", "autumn winter", True, "toys,puzzle",
          ("a quiet evening project for the whole family", "全家一起度过安静的夜晚")),
    _type("science_kit", ("Science kit", "{}科学实验套装"), "toys", (99, 299), "science",
          "kids", "birthday", "practical", "all", True, "toys,kids,education",
          ("safe experiments that make science fun", "安全有趣的实验，让孩子爱上科学")),
    _type("board_game", ("{} board game", "{}桌游"), "toys", (99, 399), "game",
          "anyone couples kids", "festival birthday", "trendy cute", "all", True, "games",
          ("easy to learn and fun for two to six players", "规则简单，2 到 6 人同乐")),
    # stationery
    _type("fountain_pen", ("Fountain pen", "钢笔"), "stationery", (129, 1299), "pen_finish",
          "men parents", "office birthday", "classic luxury", "all", True, "pens,office",
          ("a smooth nib for handwriting that stands out", "笔尖顺滑，书写更有质感")),
    _type("notebook", ("Leather notebook", "皮面笔记本"), "stationery", (49, 199), "colour",
          "anyone", "office", "classic minimalist", "all", False, "notebooks,office",
          ("thick paper that takes fountain-pen ink, in a leather cover", "纸张厚实不洇墨，皮质封面")),
    _type("calligraphy", ("Calligraphy brush set", "书法毛笔套装"), "stationery", (99, 599), "brush",
          "elderly parents kids", "festival", "classic", "all", True, "calligraphy",
          ("brushes, ink and an inkstone for Chinese calligraphy", "毛笔、墨汁和砚台一应俱全")),
    _type("gel_pens", ("Gel pens (12 pack)", "中性笔 12 支装"), "stationery", (24, 32), "gel",
          "anyone kids", "office everyday", "practical", "all", False, "pens,office",
          ("smooth, quick-drying ink for notes and exams", "书写顺滑，速干不蹭")),
    _type("organiser", ("{} desk organiser", "{}桌面收纳架"), "stationery", (49, 199), "organiser",
          "anyone", "office", "minimalist practical", "all", True, "office",
          ("keeps pens, phone and papers in order", "笔、手机和文件收纳得井井有条")),
    _type("watercolours", ("Watercolour paint set", "水彩颜料套装"), "stationery", (69, 299), "palette",
          "kids women", "birthday", "cute", "all", False, "art",
          ("bright colours that blend easily, with two brushes", "色彩明亮易调和，附两支画笔")),
)
TYPES_BY_KEY: Dict[str, ProductType] = {t.key: t for t in PRODUCT_TYPES}

#: type -> types often bought in the same order (a phone with a case, a tea set with tea)
COMPANIONS: Dict[str, Tuple[str, ...]] = {
    "smartphone": ("phone_case", "power_bank", "earbuds"),
    "laptop": ("organiser", "power_bank"),
    "trail_shoes": ("socks", "sports_bottle"),
    "yoga_mat": ("sports_bottle", "fitness_band"),
    "dumbbells": ("protein",),
    "tent": ("power_bank", "sports_bottle"),
    "tea_set": ("tea",),
    "mooncakes": ("tea",),
    "coffee": ("mug",),
    "fountain_pen": ("notebook",),
    "bedding": ("pillowcase",),
    "down_jacket": ("scarf",),
    "serum": ("masks",),
    "wine": ("chocolate",),
}

#: demo sku -> its type (its own word when no generated type matches it)
DEMO_KINDS: Dict[str, str] = {
    "EL-001": "headphones", "EL-002": "smartphone", "EL-003": "power_bank", "CL-001": "tshirt",
    "CL-002": "down_jacket", "CL-003": "trail_shoes", "HM-001": "mug", "HM-002": "pillow", "HM-003": "desk_lamp",
    "BT-001": "face_cream", "BT-002": "sunscreen", "BT-003": "lipstick",
}

# shop prices: a price drawn from a range becomes the nearest of these
PRICE_POINTS = (
    29, 39, 49, 59, 69, 79, 89, 99, 119, 129, 149, 159, 179, 199, 229, 249, 259, 279, 299, 329, 349, 399, 429,
    459, 499, 549, 599, 649, 699, 799, 899, 999, 1099, 1199, 1299, 1499, 1699, 1999, 2299, 2499, 2799, 2999,
    3499, 3999, 4499, 4999, 5499, 5999, 6499, 6999,
)


# --- products -------------------------------------------------------------------------------


def shop_price(amount: float) -> int:
    """The price point nearest to ``amount`` (in ratio): 1,150 -> 1,199, 33 -> 29."""
    return min(PRICE_POINTS, key=lambda point: abs(math.log(point / amount)))


def _name(template: str, variant: str, separator: str) -> str:
    text = template.format(variant) if "{}" in template else f"{template}{separator}{variant}"
    return text[0].upper() + text[1:]


def join_en(items: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join(filter(None, (", ".join(items[:-1]), items[-1]))) if items else ""


def join_zh(items: Sequence[str]) -> str:
    """"甲", "甲和乙", "甲、乙和丙"."""
    return "和".join(filter(None, ("、".join(items[:-1]), items[-1]))) if items else ""


def label(vocabulary: str, word: str, language: str) -> str:
    """The display label of a vocabulary word, e.g. label("recipients", "elderly", "zh") == "长辈"."""
    return LABELS[vocabulary][word][language]


def _labels(vocabulary: str, values: Iterable[str], language: str) -> List[str]:
    return [label(vocabulary, word, language) for word in values]


def describe(name_en: str, name_zh: str, kind: ProductType, styles: Sequence[str]) -> Tuple[str, str]:
    """An English and a Chinese description from a product's name, type and first style."""
    recipients, occasions = kind.recipients, kind.occasions
    en = (
        f"{name_en}: {kind.about_en}. A {label('styles', styles[0], 'en')} choice for "
        f"{join_en(_labels('recipients', recipients, 'en'))}; "
        f"good for {join_en(_labels('occasions', occasions, 'en'))}."
    )
    for_whom = "人人适用" if recipients == ("anyone",) else f"适合送给{join_zh(_labels('recipients', recipients, 'zh'))}"
    when = "、".join(_labels("occasions", occasions, "zh")) + ("皆宜" if len(occasions) > 1 else "适用")
    zh = f"{name_zh}：{kind.about_zh}。{label('styles', styles[0], 'zh')}之选，{for_whom}，{when}。"
    if "all" not in kind.seasons:
        en += f" Best in {join_en(_labels('seasons', kind.seasons, 'en'))}."
        zh += f"{join_zh(_labels('seasons', kind.seasons, 'zh'))}尤其合适。"
    return en, zh


def _product(kind: ProductType, variant: Variant, base_price: float, sku: str, rng: random.Random) -> Row:
    """A product row (columns of ``Product`` and its ``kind``), stock to be set.

    Its price is the type's ``base_price`` times the variant's factor, give or take 10 %.
    """
    name_en = _name(kind.name_en, variant.en, ", ")
    name_zh = _name(kind.name_zh, variant.zh, " ")
    chosen = set(rng.sample(kind.styles, min(len(kind.styles), rng.choice((1, 2)))))
    styles = [style for style in STYLES if style in chosen]  # in vocabulary order
    description_en, description_zh = describe(name_en, name_zh, kind, styles)
    return dict(
        sku=sku, name_en=name_en, name_zh=name_zh, category=kind.category,
        price_yuan=Decimal(shop_price(base_price * variant.factor * rng.uniform(0.9, 1.1))), tags=kind.tags,
        description_en=description_en, description_zh=description_zh, stock=0,
        recipients=",".join(kind.recipients), occasions=",".join(kind.occasions), styles=",".join(styles),
        seasons=",".join(kind.seasons), durable=kind.durable, kind=kind.key,
    )


def _quotas(rng: random.Random, total: int) -> Dict[str, int]:
    """How many variants of each type: the same for all, the rest to types chosen at random."""
    base, rest = divmod(total, len(PRODUCT_TYPES))
    roomy = [t.key for t in PRODUCT_TYPES if len(VARIANTS[t.variants]) > base]
    extra = set(rng.sample(roomy, rest))
    return {t.key: base + (t.key in extra) for t in PRODUCT_TYPES}


def generate_products(seed: int = DEFAULT_SEED, count: int = GENERATED_PRODUCTS) -> List[Row]:
    """``count`` products of the type table, numbered per category from 101 (``EL-101``).

    Rows are dicts of the ``Product`` columns plus ``kind`` (the product type's key).
    """
    rng = random.Random(seed)
    quotas = _quotas(rng, count)
    numbers: Dict[str, int] = defaultdict(lambda: FIRST_SKU_NUMBER)
    products = []
    for kind in PRODUCT_TYPES:
        base_price = rng.uniform(*kind.prices)
        for variant in rng.sample(VARIANTS[kind.variants], quotas[kind.key]):
            prefix = CATEGORY_PREFIXES[kind.category]
            products.append(_product(kind, variant, base_price, f"{prefix}-{numbers[prefix]:03d}", rng))
            numbers[prefix] += 1
    sold_out = set(rng.sample(range(len(products)), round(OUT_OF_STOCK_SHARE * len(products))))
    for index, product in enumerate(products):
        product["stock"] = 0 if index in sold_out else rng.randint(1, MAX_STOCK)
    return products


def all_products(seed: int = DEFAULT_SEED) -> List[Row]:
    """The whole catalogue: the demo products (with their ``kind``), then the generated ones."""
    demo = [dict(row, kind=DEMO_KINDS[row["sku"]]) for row in demo_product_rows()]
    return demo + generate_products(seed)


def price_tiers(products: Sequence[Row]) -> Dict[str, str]:
    """sku -> "budget", "mid" or "premium": the product's price third within its category."""
    by_category: Dict[str, List[Row]] = defaultdict(list)
    for product in products:
        by_category[product["category"]].append(product)
    tiers = {}
    for group in by_category.values():
        ranked = sorted(group, key=lambda p: (p["price_yuan"], p["sku"]))
        for rank, product in enumerate(ranked):
            tiers[product["sku"]] = TIERS[rank * len(TIERS) // len(ranked)]
    return tiers


# --- customers and orders -----------------------------------------------------------------


@dataclass(frozen=True)
class TasteProfile:
    """What a synthetic customer tends to buy."""

    categories: Tuple[str, ...]  # 1 or 2 favourite categories
    style: str
    tier: str
    recipient: Optional[str] = None  # whom they mostly buy for, if anyone in particular

    def summary(self) -> str:
        focus = f", buys for {self.recipient}" if self.recipient else ""
        return f"likes {' and '.join(self.categories)}, {self.style} style, {self.tier} prices{focus}"


class SyntheticCustomers(NamedTuple):
    """Rows of ``customers`` and of ``orders`` (each with ``items``: [(sku, quantity)]), and the tastes behind them."""

    customers: List[Row]
    profiles: Dict[int, TasteProfile]
    orders: List[Row]


ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁宋郑谢韩唐冯"
ZH_GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平",
    "刚", "桂英", "子涵", "欣怡", "浩然", "宇轩", "雨桐", "思远", "佳怡", "俊杰", "晓燕", "海涛", "志强", "丽华",
)
EN_FIRST_NAMES = (
    "Emma", "Olivia", "Sophie", "Grace", "Chloe", "Lucy", "Hannah", "Alice", "Mia", "Zoe", "Daniel", "Michael",
    "Thomas", "Oliver", "Jack", "Henry", "Ryan", "David", "Peter", "Lucas", "Anna", "Kevin", "Laura", "Sam",
)
EN_SURNAMES = (
    "Smith", "Brown", "Taylor", "Johnson", "Lee", "Walker", "Wright", "Green", "Hall", "Clarke", "Evans", "King",
    "Wood", "Turner", "Chan", "Wong", "Miller", "Murphy", "Schmidt", "Martin",
)
ZH_CITIES = (
    ("上海市", ("浦东新区", "徐汇区", "静安区", "闵行区")), ("北京市", ("朝阳区", "海淀区", "西城区", "丰台区")),
    ("广州市", ("天河区", "越秀区", "海珠区")), ("深圳市", ("南山区", "福田区", "宝安区")),
    ("杭州市", ("西湖区", "滨江区", "拱墅区")), ("成都市", ("武侯区", "锦江区", "青羊区")),
    ("南京市", ("鼓楼区", "玄武区")), ("武汉市", ("武昌区", "洪山区")),
)
ZH_ROADS = ("人民路", "中山路", "解放路", "建设路", "和平路", "文化路", "长江路", "新华路", "幸福路")
EN_CITIES = (
    ("Shanghai", ("Pudong New Area", "Xuhui District", "Jing'an District")),
    ("Beijing", ("Chaoyang District", "Haidian District")), ("Shenzhen", ("Nanshan District", "Futian District")),
    ("Guangzhou", ("Tianhe District",)), ("Hangzhou", ("Xihu District",)),
    ("Hong Kong", ("Central", "Tsim Sha Tsui", "Causeway Bay")),
)
EN_ROADS = ("Renmin Road", "Zhongshan Road", "Jiefang Road", "Heping Road", "Xinhua Road", "Century Avenue")
FAR_PLACES = ("Hong Kong", "Macau", "香港", "澳门")  # SF Express (bot/knowledge/shipping.yml)
SF_PRICE_OVER = Decimal(1000)  # ... and for electronics over 1,000 yuan


def _customer_name(rng: random.Random, language: str) -> str:
    if language == "zh":
        return rng.choice(ZH_SURNAMES) + rng.choice(ZH_GIVEN_NAMES)
    return f"{rng.choice(EN_FIRST_NAMES)} {rng.choice(EN_SURNAMES)}"


def _address(rng: random.Random, language: str) -> str:
    """A made-up address (real city names, invented numbers)."""
    number, room = rng.randint(1, 999), rng.randint(2, 30) * 100 + rng.randint(1, 12)
    if language == "zh":
        city, districts = rng.choice(ZH_CITIES)
        return f"{city}{rng.choice(districts)}{rng.choice(ZH_ROADS)} {number} 号 {rng.randint(1, 20)} 号楼 {room} 室"
    city, districts = rng.choice(EN_CITIES)
    return f"Room {room}, {number} {rng.choice(EN_ROADS)}, {rng.choice(districts)}, {city}"


def _profile(rng: random.Random, shop: _Shop) -> TasteProfile:
    """Favourite categories, then a style and maybe a recipient their products have."""
    favourites = tuple(rng.sample(CATEGORIES, rng.choice((1, 2))))
    offered = [shop.words[p["sku"]] for category in favourites for p in shop.by_category[category]]
    styles = [style for style in STYLES if any(style in attributes["styles"] for attributes in offered)]
    recipients = [
        r for r in RECIPIENTS if r != "anyone" and any(r in attributes["recipients"] for attributes in offered)
    ]
    recipient = rng.choice(recipients) if recipients and rng.random() < 0.3 else None
    return TasteProfile(favourites, rng.choice(styles), rng.choice(TIERS), recipient)


def courier_for(products: Iterable[Row], address: str) -> str:
    """SF Express for big electronics and Hong Kong / Macau, else ZTO (as the demo orders)."""
    big = any(p["category"] == "electronics" and p["price_yuan"] > SF_PRICE_OVER for p in products)
    return "SF" if big or any(place in address for place in FAR_PLACES) else "ZTO"


class _Shop:
    """The catalogue, indexed for picking products."""

    def __init__(self, products: Sequence[Row]):
        self.products = list(products)
        self.tiers = price_tiers(products)
        self.by_category: Dict[str, List[Row]] = defaultdict(list)
        self.by_kind: Dict[str, List[Row]] = defaultdict(list)
        self.words: Dict[str, Dict[str, Tuple[str, ...]]] = {}
        for product in self.products:
            self.by_category[product["category"]].append(product)
            self.by_kind[product["kind"]].append(product)
            self.words[product["sku"]] = {column: words(product[column]) for column in VOCABULARIES}

    def affinity(self, product: Row, profile: TasteProfile) -> int:
        """How well a product fits a taste, besides its category."""
        attributes = self.words[product["sku"]]
        return (
            1
            + 6 * (profile.style in attributes["styles"])
            + 6 * (self.tiers[product["sku"]] == profile.tier)
            + 4 * (profile.recipient in attributes["recipients"])
        )


def _draw(draw: Callable[[], Row], accept: Callable[[Row], bool], tries: int = 100) -> Optional[Row]:
    """The first product ``draw()`` gives that ``accept`` takes, or None after ``tries``."""
    for _ in range(tries):
        product = draw()
        if accept(product):
            return product
    return None


class _Shopper:
    """One synthetic customer filling baskets: their taste and what they own.

    A basket holds one product of a type at most; a durable product is bought
    once, and another of a type one owns (a second laptop) is ten times less likely.
    """

    def __init__(self, rng: random.Random, shop: _Shop, profile: TasteProfile):
        self.rng, self.shop, self.profile = rng, shop, profile
        self.owned: Set[str] = set()  # durable products bought
        self.owned_kinds: Set[str] = set()  # and their types
        self.consumables: List[Row] = []  # consumables bought, in order (a product can repeat)
        self.liked = [p for category in profile.categories for p in shop.by_category[category]]
        self.cumulative = list(accumulate(shop.affinity(p, profile) for p in self.liked))

    def basket(self) -> List[Row]:
        size = self.rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        basket: List[Row] = []
        while len(basket) < size:
            product = self._next(basket)
            if product is None:
                break
            basket.append(product)
            if product["durable"]:
                self.owned.add(product["sku"])
                self.owned_kinds.add(product["kind"])
            else:
                self.consumables.append(product)
        return basket

    def _next(self, basket: List[Row]) -> Optional[Row]:
        """A companion of the basket, a consumable again, a product to one's taste or any product."""
        rng, shop = self.rng, self.shop
        kinds_in_basket = {p["kind"] for p in basket}

        def can_buy(product: Row) -> bool:
            return product["kind"] not in kinds_in_basket and product["sku"] not in self.owned

        def new_kind(product: Row) -> bool:
            return not (product["durable"] and product["kind"] in self.owned_kinds)

        def welcome(product: Row) -> bool:
            return can_buy(product) and (new_kind(product) or rng.random() < 0.1)

        companions = [
            p for item in basket for kind in COMPANIONS.get(item["kind"], ())
            for p in shop.by_kind[kind] if can_buy(p) and new_kind(p)
        ]
        if companions and rng.random() < COMPANION_SHARE:
            return rng.choice(companions)
        again = [p for p in self.consumables if can_buy(p)]
        if again and rng.random() < REPEAT_SHARE:
            return rng.choice(again)
        liked = None
        if rng.random() < PROFILE_SHARE:
            liked = _draw(lambda: rng.choices(self.liked, cum_weights=self.cumulative)[0], welcome)
        return liked or _draw(lambda: rng.choice(shop.products), can_buy, tries=len(shop.products))

    def quantity(self, product: Row) -> int:
        return 1 if product["durable"] else self.rng.choices((1, 2, 3), weights=(6, 3, 1))[0]


def _order_no(rng: random.Random, created: datetime, taken: Set[str]) -> str:
    while True:
        order_no = f"ES{created:%y%m%d}{rng.randrange(10_000):04d}"
        if order_no not in taken:
            taken.add(order_no)
            return order_no


def _moment(rng: random.Random) -> datetime:
    """A time of day between 8:00 and 23:00 of a day of the history."""
    days = (HISTORY_END - HISTORY_START).days
    day = HISTORY_START + timedelta(days=rng.randint(0, days))
    return day.replace(hour=rng.randint(8, 22), minute=rng.randrange(60))


def _order(rng: random.Random, customer_id: int, address: str, shopper: _Shopper, created: datetime,
           taken: Set[str]) -> Row:
    basket = shopper.basket()
    order_no = _order_no(rng, created, taken)
    cancelled = rng.random() < CANCELLED_SHARE
    courier = None if cancelled else courier_for(basket, address)
    tracking = None if cancelled else (f"SF140{order_no[2:]}" if courier == "SF" else f"78{order_no[2:]}")
    return dict(
        order_no=order_no, customer_id=customer_id, status="cancelled" if cancelled else "completed",
        address=address, courier=courier, tracking_no=tracking, created_at=created,
        shipped_at=None if cancelled else created + timedelta(hours=rng.randint(6, 40)),
        items=[(p["sku"], shopper.quantity(p)) for p in basket],
    )


def generate_customers_and_orders(
    products: Sequence[Row], seed: int = DEFAULT_SEED, count: int = SYNTHETIC_CUSTOMERS
) -> SyntheticCustomers:
    """``count`` customers (ids from 1001) with a taste profile and 3-12 orders each, oldest order first.

    ``products`` are rows with a ``kind`` (:func:`all_products`). All orders are
    completed (a few cancelled) and older than the demo orders, whose numbers they never take.
    """
    rng = random.Random(seed)
    shop = _Shop(products)
    taken = set(DEMO_ORDERS)
    customers, profiles, orders = [], {}, []
    for customer_id in range(FIRST_CUSTOMER_ID, FIRST_CUSTOMER_ID + count):
        language = "zh" if rng.random() < ZH_SHARE else "en"
        name, phone = _customer_name(rng, language), f"199000{customer_id:05d}"  # 199 000...: not given out
        customers.append(dict(id=customer_id, name=name, phone=phone, language=language))
        profiles[customer_id] = profile = _profile(rng, shop)
        address, shopper = _address(rng, language), _Shopper(rng, shop, profile)
        for created in sorted(_moment(rng) for _ in range(rng.randint(*ORDERS_PER_CUSTOMER))):
            orders.append(_order(rng, customer_id, address, shopper, created, taken))
    orders.sort(key=lambda order: (order["created_at"], order["order_no"]))
    return SyntheticCustomers(customers, profiles, orders)


@lru_cache(maxsize=2)
def seed_rows(seed: int = DEFAULT_SEED) -> Tuple[List[Row], SyntheticCustomers]:
    """:func:`all_products` and their :func:`generate_customers_and_orders`, made once per seed
    (``init_db`` runs for every fresh database). Shared: read them, do not change them."""
    products = all_products(seed)
    return products, generate_customers_and_orders(products, seed)


# --- listing ------------------------------------------------------------------------------


def product_line(product: Row) -> str:
    """One line of the listing: sku, category, price, stock, durable, attributes, names."""
    attributes = " ".join(f"{column}={product[column]}" for column in VOCABULARIES)
    return (
        f"{product['sku']:<7} {product['category']:<11} ¥{product['price_yuan']:>5,.0f}  stock {product['stock']:>3}  "
        f"{'durable' if product['durable'] else 'consumable':<10}  {attributes}  "
        f"| {product['name_en']} | {product['name_zh']}"
    )


def customer_lines(customer: Row, profile: TasteProfile, orders: Sequence[Row], products: Dict[str, Row]) -> List[str]:
    """A customer, their taste and their orders with the items' names in their language."""
    name_key = "name_zh" if customer["language"] == "zh" else "name_en"
    lines = [f"{customer['id']} {customer['name']} ({customer['language']}): {profile.summary()}"]
    for order in orders:
        items = "; ".join(f"{sku} x{quantity} {products[sku][name_key]}" for sku, quantity in order["items"])
        lines.append(f"    {order['created_at']:%Y-%m-%d} {order['order_no']} {order['status']:<9} {items}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shop.catalogue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--customers", type=int, default=0, metavar="N", help="also print N customers' histories")
    args = parser.parse_args(argv)
    products = all_products(args.seed)
    for product in products:
        print(product_line(product))
    out = sum(1 for p in products if p["stock"] == 0)
    print(f"# {len(products)} products, {out} out of stock")
    if args.customers > 0:
        synthetic = generate_customers_and_orders(products, args.seed)
        by_sku = {p["sku"]: p for p in products}
        by_customer: Dict[int, List[Row]] = defaultdict(list)
        for order in synthetic.orders:
            by_customer[order["customer_id"]].append(order)
        for customer in synthetic.customers[: args.customers]:
            print()
            profile, orders = synthetic.profiles[customer["id"]], by_customer[customer["id"]]
            print("\n".join(customer_lines(customer, profile, orders, by_sku)))


if __name__ == "__main__":
    main()
