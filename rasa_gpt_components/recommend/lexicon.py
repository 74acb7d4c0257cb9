"""The words that name what a customer wants, per attribute: the recommender's
vocabulary for understanding a request ("送爸爸" -> recipient parents and men)
and for wording a reason ("for parents" / "适合父母").

Each attribute (``category``, ``recipients``, ``occasions``, ``styles``,
``seasons``) maps values (the words of the catalogue's columns) to a label per
language and the words a customer uses for it. One word may stand for values
of several attributes ("运动" is a style and an occasion). A bot adds or
overrides entries with its own YAML file of the same shape (option
``lexicon``); values the catalogue does not use are harmless.

Chinese words are found as substrings, English words as whole words (with an
optional plural "s"); matching is case-insensitive. In the built-in table the
words are separated by spaces and a phrase is written with "_" ("new_year").
"""

import re
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from rasa_gpt_components.yaml_files import YAMLFileError, read_yaml_file

ATTRIBUTES = ("category", "recipients", "occasions", "styles", "seasons")

# attribute -> value -> (English label, Chinese label, words)
_DEFAULT: Dict[str, Dict[str, Tuple[str, str, str]]] = {
    "category": {
        "electronics": ("electronics", "数码", "数码 电子 电器 科技 electronics electronic gadget gadgets tech device"),
        "clothing": ("clothing", "服饰", "衣服 服装 服饰 穿的 clothes clothing apparel outfit wear"),
        "home": ("home goods", "家居", "家居 家用 居家 家里用 home household homeware"),
        "beauty": ("beauty", "美妆", "美妆 护肤 化妆 彩妆 beauty skincare makeup cosmetics"),
        "sports": ("sports", "运动户外", "运动装备 健身器材 户外 sports equipment fitness gear outdoor"),
        "food": ("food", "食品", "食品 零食 吃的 特产 茶叶 food snack snacks tea treats"),
        "toys": ("toys", "玩具", "玩具 积木 toy toys lego"),
        "stationery": ("stationery", "文具", "文具 图书 书籍 笔记本 钢笔 stationery book books notebook pen"),
    },
    "recipients": {
        "parents": ("parents", "父母", "爸爸 父亲 老爸 我爸 咱爸 妈妈 母亲 老妈 我妈 咱妈 父母 爸妈 长辈 岳父 岳母 公公 婆婆 "
                    "dad father mom mother mum parents parent in-laws"),
        "elderly": ("older people", "长辈老人", "老人 爷爷 奶奶 外公 外婆 姥姥 姥爷 长辈 老年 "
                    "grandpa grandma grandfather grandmother grandparents elderly seniors"),
        "men": ("men", "男士", "爸爸 父亲 老爸 我爸 咱爸 老公 男朋友 男友 丈夫 爷爷 外公 哥哥 弟弟 男士 男生 男性 "
                "dad father husband boyfriend grandpa grandfather brother him man men guy"),
        "women": ("women", "女士", "妈妈 母亲 老妈 我妈 咱妈 老婆 女朋友 女友 妻子 奶奶 外婆 姐姐 妹妹 女士 女生 女性 闺蜜 "
                  "mom mother mum wife girlfriend grandma grandmother sister her woman women lady ladies"),
        "kids": ("kids", "孩子", "孩子 小孩 儿子 女儿 宝宝 儿童 小朋友 侄子 外甥 kid kids child children son daughter "
                 "baby toddler nephew niece boy girl year_old year-old"),
        "couples": ("couples", "情侣", "情侣 一对 夫妻 couple couples"),
    },
    "occasions": {
        "birthday": ("birthday", "生日", "生日 birthday"),
        "festival": ("festivals", "节日", "节日 过节 春节 过年 新年 中秋 圣诞 端午 festival holiday holidays christmas "
                     "new_year mid-autumn"),
        "wedding": ("weddings", "婚礼", "结婚 婚礼 新婚 wedding"),
        "anniversary": ("anniversaries", "纪念日", "纪念日 情人节 七夕 anniversary valentine"),
        "office": ("the office", "办公", "办公 上班 工作用 office desk"),
        "travel": ("travel", "出行", "旅行 旅游 出差 出行 travel trip travelling traveling"),
        "sport": ("sport", "运动", "运动 健身 跑步 锻炼 sport sports workout gym running fitness"),
        "housewarming": ("housewarming", "乔迁", "乔迁 新家 搬家 housewarming new_home"),
        "everyday": ("every day", "日常", "日常 平时 每天 everyday daily"),
    },
    "styles": {
        "classic": ("classic", "经典", "经典 传统 大方 稳重 classic traditional timeless"),
        "minimalist": ("minimalist", "简约", "简约 简单 极简 minimalist minimal simple"),
        "sporty": ("sporty", "运动风", "运动风 运动 sporty athletic"),
        "cute": ("cute", "可爱", "可爱 萌 卡通 cute adorable"),
        "luxury": ("premium", "高端", "高端 奢华 高档 大牌 精致 贵重 luxury premium high-end luxurious"),
        "practical": ("practical", "实用", "实用 实惠 耐用 practical useful handy"),
        "trendy": ("trendy", "时尚", "时尚 潮流 新潮 流行 trendy fashionable stylish"),
    },
    "seasons": {
        "spring": ("spring", "春季", "春天 春季 spring"),
        "summer": ("summer", "夏季", "夏天 夏季 夏日 炎热 summer hot_weather"),
        "autumn": ("autumn", "秋季", "秋天 秋季 autumn fall"),
        "winter": ("winter", "冬季", "冬天 冬季 冬日 寒冷 保暖 winter cold_weather"),
    },
}

_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Entry:
    attribute: str
    value: str
    labels: Mapping[str, str]
    words: Tuple[str, ...]


class Lexicon:
    """What words of a request mean: ``find(text)`` -> attribute -> values."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries: Tuple[Entry, ...] = tuple(entries)
        self._labels = {(e.attribute, e.value): e.labels for e in self.entries}
        self._patterns = [(e, _pattern(e.words)) for e in self.entries if e.words]

    def find(self, text: str) -> Dict[str, FrozenSet[str]]:
        """The values whose words occur in ``text``, per attribute (attributes without one are absent)."""
        found: Dict[str, set] = {}
        for entry, pattern in self._patterns:
            if pattern.search(text):
                found.setdefault(entry.attribute, set()).add(entry.value)
        return {attribute: frozenset(values) for attribute, values in found.items()}

    def label(self, attribute: str, value: str, language: str) -> str:
        labels = self._labels.get((attribute, value), {})
        return labels.get(language) or labels.get("en") or value

    def words(self) -> FrozenSet[str]:
        return frozenset(word for entry in self.entries for word in entry.words)


def _pattern(words: Iterable[str]) -> "re.Pattern[str]":
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word.lower())
        parts.append(escaped if _CJK.search(word) else rf"(?<![a-z]){escaped}(?:s|es)?(?![a-z])")
    return re.compile("|".join(parts), re.IGNORECASE)


def _entries(table: Mapping[str, Mapping[str, Any]]) -> List[Entry]:
    entries = []
    for attribute, values in table.items():
        if attribute not in ATTRIBUTES:
            raise ValueError(f"unknown lexicon attribute '{attribute}'; known: {', '.join(ATTRIBUTES)}.")
        for value, spec in (values or {}).items():
            if isinstance(spec, tuple):  # the built-in table
                english, chinese, words = spec
                entries.append(Entry(attribute, str(value), {"en": english, "zh": chinese}, tuple(w.replace("_", " ") for w in words.split())))
                continue
            if not isinstance(spec, Mapping):
                raise ValueError(f"lexicon entry {attribute}.{value} must be a mapping with 'label' and 'words'.")
            labels = spec.get("label") or {}
            words = spec.get("words") or []
            if not isinstance(labels, Mapping) or not isinstance(words, list):
                raise ValueError(f"lexicon entry {attribute}.{value}: 'label' is a mapping, 'words' a list.")
            entries.append(Entry(attribute, str(value), {str(k): str(v) for k, v in labels.items()},
                                 tuple(str(w) for w in words)))
    return entries


def load_lexicon(path: Optional[str] = None) -> Lexicon:
    """The built-in lexicon, with the entries of the YAML file ``path`` replacing
    those of the same attribute and value."""
    entries = {(e.attribute, e.value): e for e in _entries(_DEFAULT)}
    if path:
        try:
            extra = read_yaml_file(path) or {}
        except YAMLFileError as error:
            raise ValueError(f"the lexicon file {error}") from None  # "<path> could not be read: …"
        if not isinstance(extra, Mapping):
            raise ValueError(f"the lexicon file {path} must map attributes to values.")
        entries.update({(e.attribute, e.value): e for e in _entries(extra)})
    return Lexicon(entries.values())
