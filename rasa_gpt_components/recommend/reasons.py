"""One line per recommended item saying why, in the customer's language, built
only from what matched: the item's own attributes and price (its record) and
the customer's request and purchases. Nothing is generated, so nothing can be
invented (a model's wording was not measured to stay faithful; not used)."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from rasa_gpt_components.recommend.catalogue import Item
from rasa_gpt_components.recommend.lexicon import Lexicon

# attribute -> (English, Chinese) wording of a match with the value's label
_PHRASES = {
    "category": ("{label}", "{label}"),
    "recipients": ("for {label}", "适合{label}"),
    "occasions": ("good for {label}", "适合{label}"),
    "styles": ("{label} style", "{label}风格"),
    "seasons": ("for {label}", "适合{label}"),
}
_SEPARATOR = {"en": "; ", "zh": "，"}


@dataclass(frozen=True)
class Why:
    """What made an item fit: matched (attribute, value) pairs, the price
    against the request, and the customer's purchases it goes with."""

    matched: Tuple[Tuple[str, str], ...] = ()
    within_budget: bool = False
    near_target: bool = False
    bought_with: Optional[str] = None  # an item the customer bought whose buyers bought this too
    together_with: Optional[str] = None  # an item this is often bought with in one order
    like_before: bool = False  # in the categories the customer buys
    bought_before: bool = False  # a consumable the customer bought before


def _price(amount: float) -> str:
    return f"¥{amount:,.0f}" if float(amount).is_integer() else f"¥{amount:,.2f}"


def word_reason(item: Item, why: Why, lexicon: Lexicon, language: str) -> str:
    """"for parents; classic style; ¥459, within your budget" / "适合父母，经典风格，¥459，在预算内"."""
    zh = language == "zh"
    parts: List[str] = []
    for attribute, value in why.matched:
        english, chinese = _PHRASES[attribute]
        parts.append((chinese if zh else english).format(label=lexicon.label(attribute, value, language)))
    if why.bought_before:
        parts.append("您之前买过，可以回购" if zh else "you bought it before")
    elif why.together_with:
        parts.append(f"常与{why.together_with}一起购买" if zh else f"often bought with the {why.together_with}")
    elif why.bought_with:
        parts.append(f"买过{why.bought_with}的顾客也买了它" if zh else f"bought by customers who bought your {why.bought_with}")
    elif why.like_before and not why.matched:
        parts.append("和您常买的品类一致" if zh else "like what you usually buy")
    price = _price(item.price)
    if why.near_target:
        parts.append(f"{price}，接近您的预算" if zh else f"{price}, close to your budget")
    elif why.within_budget:
        parts.append(f"{price}，在预算内" if zh else f"{price}, within your budget")
    else:
        parts.append(price)
    return _SEPARATOR["zh" if zh else "en"].join(parts)


def word_details(item: Item, language: str) -> str:
    """What a customer asking about an item shown is told, from its record: "Wireless earbuds,
    sage green: ¥799, in stock. <description>" / "真无线蓝牙耳机 松石绿：¥799，有货。<description>"."""
    zh = language == "zh"
    stock = ("有货" if zh else "in stock") if item.stock > 0 else ("暂时缺货" if zh else "out of stock")
    name = item.name(language)
    description = item.descriptions.get(language) or item.descriptions.get("en") or ""
    if description.startswith(name):  # "Fitness band, sage green: counts steps…": the name once
        description = description[len(name):].lstrip(" :：,，.。")
    line = f"{name}：{_price(item.price)}，{stock}。" if zh else f"{name}: {_price(item.price)}, {stock}."
    return f"{line}{description}" if zh else f"{line} {description}".strip()
