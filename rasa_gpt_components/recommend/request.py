"""What a recommendation request asks for: a price range, and the attribute
values its words name (``lexicon.py``), in Chinese or English.

Prices: "500左右" / "around 500" (about: a range around the amount, the
amount preferred), "500以内" / "under $100" / "预算500" (at most),
"300到500" / "between 100 and 300" (a range), "500以上" / "over 500" (at
least), "两三百" / "三五百" (between two amounts, at most the second). Amounts in digits, "2k" / "1.5千" / "1万", or Chinese numerals
("五百", "两千五"). A dollar amount ("$", "dollars", "bucks", "usd") is converted
with ``dollar_rate``; everything else is taken in the shop's currency (yuan).
Codes such as order numbers and SKUs ("ES2611200002", "EL-101") are never read
as prices; "200-500" is a range.

Follow-ups (``follow_up``): a message that refines the recommendations just
shown ("预算300左右", "anything cheaper?", "what about headphones?") keeps what
the earlier request asked for and it does not name again; "cheaper" / "便宜点"
asks for less than the cheapest item shown, "more expensive" / "贵一点" for
more than the dearest; "换一批" / "something else" (``asks_for_others``) for
the same request without the items shown (``Recommender.recommend(exclude=)``).
A question about the items shown ("第一个多少钱", "is the second one in stock?",
``asks_about_shown``) is answered about them (``reasons.word_details``), not with
new recommendations.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Optional, Sequence, Tuple

from rasa_gpt_components.recommend.lexicon import Lexicon
from rasa_gpt_components.text import detect_language

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUMBER = (r"(?<![A-Za-z0-9.])(?<![A-Za-z]-)(?P<{0}>\d+(?:\.\d+)?\s*(?:k|K|千|w|W|万)?(?!\d|\.\d)"
           r"|[零〇一二两三四五六七八九十百千万]+)")
_CURRENCY_BEFORE = r"(?P<{0}_cur>[¥￥$]|rmb|usd|cny)?\s*"
_CURRENCY_AFTER = r"\s*(?P<{0}_unit>元|块钱?|rmb|yuan|cny|dollars?|usd|bucks|以内|以下|左右)?"


def _amount(name: str) -> str:
    return _CURRENCY_BEFORE.format(name) + _NUMBER.format(name) + _CURRENCY_AFTER.format(name)


_A, _B = _amount("a"), _amount("b")
# (kind, pattern) in the order they are tried; the first that matches wins
_PRICE_PATTERNS = [
    ("range", re.compile(rf"(?:between\s+)?{_A}\s*(?:-|~|～|–|到|至|and|to)\s*{_B}", re.I)),
    ("about", re.compile(rf"{_A}\s*(?:左右|上下|出头|or so|-?ish)", re.I)),
    ("about", re.compile(rf"(?:大概|大约|差不多|around|about|approximately|roughly|circa)\s*{_A}", re.I)),
    ("max", re.compile(rf"{_A}\s*(?:以内|以下|之内|内|封顶)", re.I)),
    ("max", re.compile(rf"(?:不超过|不要超过|别超过|最多|最高|低于|少于|不到|上限|预算(?:是|在|有|为)?|under|below|limit(?:\s+is)?|"
                       rf"less than|no more than|not more than|up to|at most|max(?:imum)?|within|cheaper than|"
                       rf"budget(?:\s+(?:of|is))?)\s*{_A}", re.I)),
    ("min", re.compile(rf"{_A}\s*(?:以上|起)", re.I)),
    ("min", re.compile(rf"(?:至少|不低于|高于|超过|over|above|more than|at least)\s*{_A}", re.I)),
    ("about", re.compile(rf"{_A}\s*(?:元|块钱?|yuan|rmb|dollars?|bucks)", re.I)),  # a bare price: "500块的"
    ("about", re.compile(rf"[¥￥$]\s*{_NUMBER.format('a')}", re.I)),
]
# "两三百", "五六百", "三五百", "一两千": between two amounts (at most the second)
_NEIGHBOURS = re.compile(r"(?<![一二两三四五六七八九十百千万\d])(?P<a>[一二两三四五六七八九])(?P<b>[二两三四五六七八九])"
                         r"(?P<unit>[十百千万])")
_DOLLARS = re.compile(r"^(?:\$|usd|dollars?|bucks)$", re.I)
MIN_PRICE = 10  # a smaller number without a currency is a count
# what follows a number that counts things, not money: "about 80 mugs", "大概50个", "for 30 people"
_COUNTED = re.compile(r"\s*(?:[个件只支套盒瓶双台份张本条位名人杯把副包袋罐箱]|"
                      r"(?:pcs|people|persons?|guests?|staff|employees|children|kids|units?|items?|pieces?|pairs?|"
                      r"sets?|packs?|boxes|bottles|copies|(?!(?:less|plus|this|does|tops|bucks|dollars|thanks)\b)[a-z]{3,}s)\b)",
                      re.IGNORECASE)


def chinese_number(text: str) -> Optional[float]:
    """"五百" -> 500, "两千五" -> 2500, "一万" -> 10000, "十" -> 10; None when not a number."""
    total, section, digit, last_unit = 0, 0, None, 1
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
        elif char in _UNITS:
            unit = _UNITS[char]
            if unit == 10000:
                total += (section + (digit or 0)) * unit
                section, digit, last_unit = 0, None, 10000
                continue
            section += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
        else:
            return None
    if digit is not None:  # "两千五": a trailing digit counts a tenth of the last unit
        section += digit * (last_unit // 10 if last_unit >= 100 and len(text) > 1 else 1)
    return float(total + section) or None


def _value(match: "re.Match[str]", name: str) -> Tuple[Optional[float], bool]:
    """The amount of the group ``name`` and whether it is in dollars."""
    raw = match.group(name).strip()
    number: Optional[float]
    if raw[0].isdigit():
        digits = re.match(r"\d+(?:\.\d+)?", raw)
        number = float(digits.group(0)) * {"k": 1000, "千": 1000, "w": 10000, "万": 10000}.get(
            raw[digits.end():].strip().lower(), 1)
    else:
        number = chinese_number(raw)
    marks = [match.groupdict().get(f"{name}_cur") or "", match.groupdict().get(f"{name}_unit") or ""]
    if number is not None and not any(m.strip() for m in marks) and (
            number < MIN_PRICE or _COUNTED.match(match.string, match.end(name))):
        number = None  # "2-3 gifts", "top 5", "about 80 mugs": counts, not prices
    return number, any(_DOLLARS.match(m.strip()) for m in marks)


@dataclass(frozen=True)
class PriceRange:
    low: Optional[float] = None
    high: Optional[float] = None
    target: Optional[float] = None  # "about": the amount asked for

    def allows(self, price: float) -> bool:
        return (self.low is None or price >= self.low) and (self.high is None or price <= self.high)

    @property
    def given(self) -> bool:
        return self.low is not None or self.high is not None


def parse_price(text: str, about_low: float = 0.6, about_high: float = 1.2, dollar_rate: float = 7.2) -> PriceRange:
    """The price range a request states, in the shop's currency; PriceRange() when none."""
    for match in _NEIGHBOURS.finditer(text):
        a, b = _DIGITS[match.group("a")], _DIGITS[match.group("b")]
        if 0 < b - a <= 2:
            unit = _UNITS[match.group("unit")]
            return PriceRange(a * unit * about_low, b * unit, target=(a + b) / 2 * unit)
    for kind, pattern in _PRICE_PATTERNS:
        for match in pattern.finditer(text):
            a, a_dollars = _value(match, "a")
            b, b_dollars = _value(match, "b") if kind == "range" else (a, a_dollars)
            if a is None or b is None:
                continue
            rate = dollar_rate if a_dollars or b_dollars else 1.0  # "100 to $300": both in dollars
            a, b = a * rate, b * rate
            if kind == "range":
                return PriceRange(min(a, b), max(a, b))
            if kind == "about":
                return PriceRange(a * about_low, a * about_high, target=a)
            if kind == "max":
                return PriceRange(None, a)
            return PriceRange(a, None)
    return PriceRange()


@dataclass(frozen=True)
class Request:
    text: str
    language: str
    price: PriceRange = field(default_factory=PriceRange)
    wants: Dict[str, FrozenSet[str]] = field(default_factory=dict)  # attribute -> values asked for
    gift: bool = False
    known_terms: Tuple[str, ...] = ()  # words of the request that name something in the catalogue

    @property
    def specific(self) -> bool:
        """Whether there is anything to rank by besides the customer's history:
        a price, an attribute, or a word that the catalogue's texts use."""
        return self.price.given or bool(self.wants) or bool(self.known_terms)


_GIFT = re.compile(r"礼物|礼品|送给|送人|送\w{0,3}(?:爸|妈|父|母|老|孩|朋友|同事)|\bgifts?\b|\bpresents?\b|\bfor (?:my|a|our)\b",
                   re.I)
# what a request says without naming anything: "推荐点东西", "any recommendations?"
_FILLER = re.compile(
    r"推荐|介绍|有什么|有没有|什么|好的|好物|东西|商品|产品|宝贝|一些|一下|几款|几个|给我|帮我|我想|想要|想买|买点|买个|"
    r"适合|可以|吗|呢|吧|啊|呀|的|了|我|你们|你|请|麻烦|看看|值得|买|礼物|礼品|啥|"
    r"\b(?:recommend(?:ation)?s?|suggest(?:ion)?s?|any|some|something|things?|stuff|products?|items?|good|nice|"
    r"what|do|does|you|have|has|can|could|would|i|me|my|a|an|the|to|for|buy|get|want|like|please|show|"
    r"should|is|are|there|worth|it|of|with|in|on|and|or|anything|else|help|pick|picks|need|looking|gifts?|presents?|"
    r"ideas?)\b",
    re.I)


def _content_words(text: str) -> Tuple[str, ...]:
    rest = _FILLER.sub(" ", text)
    return tuple(re.findall(r"[\u3400-\u9fff]{2,}|[A-Za-z]{3,}", rest))  # one character left over says nothing


def terms(text: str) -> FrozenSet[str]:
    """What a text is matched on against the catalogue's texts: English words of
    3 letters or more (lower case, without a plural s), Chinese character pairs."""
    found = set()
    for word in re.findall(r"[A-Za-z]{3,}", text):
        word = word.lower()
        found.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    for run in re.findall(r"[\u3400-\u9fff]{2,}", text):
        found.update(run[i:i + 2] for i in range(len(run) - 1))
    return frozenset(found)


def parse_request(text: str, lexicon: Lexicon, language: Optional[str] = None, about_low: float = 0.6,
                  about_high: float = 1.2, dollar_rate: float = 7.2,
                  vocabulary: Optional[FrozenSet[str]] = None) -> Request:
    """The request in ``text`` (already cleaned). ``vocabulary``: the catalogue's
    distinctive terms; without it every content word counts as known."""
    content = _content_words(text)
    known = [w for w in content if vocabulary is None or terms(w) & vocabulary]
    return Request(
        text=text,
        language=language or detect_language(text),
        price=parse_price(text, about_low, about_high, dollar_rate),
        wants=lexicon.find(text),
        gift=bool(_GIFT.search(text)),
        known_terms=tuple(known),
    )


# a follow-up that asks for less, or more, than what was just shown
_CHEAPER = re.compile(r"便宜|低一点|低点|价格低|价位低|\bcheaper\b|\bcheap\b|less expensive|lower[- ]priced?|"
                      r"more affordable|\baffordable\b|\binexpensive\b", re.I)
_DEARER = re.compile(r"贵一点|贵点|更贵|贵一些|高档|高端|档次高|more expensive|\bpricier\b|higher[- ]end|\bpremium\b|"
                     r"\bfancier\b|\bluxur", re.I)
# a follow-up that asks for other things than those just shown: "换一批", "还有别的吗", "something else"
_OTHERS = re.compile(r"换一批|换一些|换几个|换几款|换个别的|别的|其他|其它|另外几|再来几|还有什么|还有啥|"
                     r"\b(?:something|anything) else\b|\bothers?\b|\bdifferent\b|\bmore options\b|\banother\b",
                     re.I)
# words that say how much, not what: a follow-up of only these names nothing of its own
_PRICE_WORDS = re.compile(r"预算|左右|以内|以下|之内|以上|上下|出头|价格|价位|块钱?|元|\bbudget\b|\bunder\b|\bbelow\b|"
                          r"\baround\b|\babout\b|\bprice[ds]?\b|\byuan\b|\bbucks\b|\bdollars?\b", re.I)


def asks_for_others(text: str) -> bool:
    """Whether a follow-up asks for other items than those just shown ("换一批", "something else")."""
    return bool(_OTHERS.search(text or ""))


# "another" what: a question or a matter of the shop, not items ("有别的付款方式吗", "the other
# order", "为什么这么便宜，是正品吗", "超过99包邮吗")
_OTHER_MATTER = re.compile(r"问题|事情|付款|支付|运费|邮费|包邮|会员|积分|发票|订单|快递|物流|退|换货|正品|假货|优惠券|"
                           r"\b(?:questions?|issues?|things? to ask|pay|payment|paying|shipping|delivery|member\w*|"
                           r"points|invoice|orders?|refund|return|exchange|genuine|authentic|fake|coupons?)\b", re.I)
# no other items wanted: "没有其他的了", "别的不用了", "I don't need anything else"
_NO_OTHERS = re.compile(r"(?:没有|没|不用|不要|不需要)[^，,。.!！?？]{0,3}(?:其他|其它|别的)|(?:其他|其它|别的)[^，,。.!！?？]{0,3}"
                        r"(?:没有|没了|不用|不要|不需要)|\b(?:nothing|not anything) else\b|\bdon'?t (?:need|want) anything\b|"
                        r"\bthat'?s (?:all|it)\b|\bno more\b", re.I)


def refines(text: str) -> bool:
    """Whether a message, right after recommendations, asks to change them: another batch
    ("换一批", "还有别的吗"), cheaper or dearer ("有便宜点的吗", "anything cheaper?"), or a
    budget of its own ("under 1000 yuan", "预算300左右"). Not another matter of the shop
    ("我还有其他问题", "有别的付款方式吗", "the other order"), nor no more items ("别的不用了")."""
    text = text or ""
    if _OTHER_MATTER.search(text) or _NO_OTHERS.search(text):
        return False
    return (asks_for_others(text) or bool(_CHEAPER.search(text)) or bool(_DEARER.search(text))
            or parse_price(text).given)


# a question about the items just shown: what it asks (a price, stock, what an item is like) ...
_ABOUT_ITEM = re.compile(r"多少钱|价格|价钱|几块钱?|什么价|有货|库存|还有货|缺货|怎么样|好不好|好用吗|详细|介绍一下|参数|"
                         r"\bhow much\b|\bprices?\b|\bcosts?\b|\bin stock\b|\bavailable\b|\bsold out\b|"
                         r"\btell me (?:more )?about\b|\bmore (?:info|information|details)\b|\bdetails\b|"
                         r"\bany good\b|\bwhat(?:'s| is) (?:it|that|this) like\b", re.I)
# ... and which one: an ordinal ("第二个", "the first one", "#2", "最后一个"), or this / that
_ZH_ORDINAL = re.compile(r"第\s*([一二两三四五1-5])\s*[个款件种样双条]?|(最后)(?:一|那)[个款件种双条]")
_EN_ORDINAL = re.compile(r"\b(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last)\b(?!\s+(?:time|order|message))|"
                         r"#\s*([1-5])\b|\b(?:number|option|no\.?)\s*([1-5])\b", re.I)
_ORDINALS = {"一": 0, "1": 0, "first": 0, "1st": 0, "二": 1, "两": 1, "2": 1, "second": 1, "2nd": 1,
             "三": 2, "3": 2, "third": 2, "3rd": 2, "四": 3, "4": 3, "fourth": 3, "4th": 3,
             "五": 4, "5": 4, "fifth": 4, "5th": 4, "最后": -1, "last": -1}
_POINTER = re.compile(r"这个|这款|那个|那款|这件|那件|这双|那双|它们?|这几[个款]|这些|"
                      r"\b(?:this|that|these|those)(?:\s+ones?)?\b|\bit\b|\bthem\b", re.I)
# what else such a question may say in Chinese ("那", "请问", "多少"); English: these and ``_FILLER``'s
_AROUND = re.compile(r"那么?|呢|吗|啊|呀|吧|请问|的|还|有|多少|一下|具体|说说|告诉我|能|是|个|款|"
                     r"\b(?:and|about|one|ones|how|much|many|still|left|more|tell|know|its|there|that's|it's)\b", re.I)


@dataclass(frozen=True)
class ShownQuestion:
    """A question about the items just shown: ``position`` (0-based, -1 the last) of the one it
    asks about, or None for all of them ("这个多少钱？" after three)."""

    position: Optional[int] = None

    def pick(self, items: Sequence[Any]) -> Tuple[Any, ...]:
        """The items of ``items`` (those shown, in order) it asks about; () when it points past them."""
        if self.position is None:
            return tuple(items)
        index = self.position if self.position >= 0 else len(items) + self.position
        return (items[index],) if 0 <= index < len(items) else ()


def asks_about_shown(text: str) -> Optional[ShownQuestion]:
    """Right after recommendations, a question about the items shown, or None: an item's price,
    stock or what it is like, of one by its place ("第一个多少钱", "is the second one in stock?",
    "最后一款怎么样"), of this / that ("这个多少钱？", "how much is it?": all shown), or a bare
    "多少钱？" / "how much?"; "那第二个呢" / "and the third one?" asks the same of another. Not
    another matter of the shop ("运费多少钱", "how much is shipping?"), not a question that names
    something of its own ("礼品卡多少钱": the catalogue's names are not read here)."""
    text = text or ""
    if _OTHER_MATTER.search(text) or refines(text):
        return None
    asks = bool(_ABOUT_ITEM.search(text))
    found = _ZH_ORDINAL.search(text) or _EN_ORDINAL.search(text)
    rest = _AROUND.sub(" ", _POINTER.sub(" ", _ABOUT_ITEM.sub(" ", _ZH_ORDINAL.sub(" ", _EN_ORDINAL.sub(" ", text)))))
    if re.search(r"[\u3400-\u9fff]{2,}", rest) or re.search(r"[A-Za-z]{3,}", _FILLER.sub(" ", rest)):
        return None  # it names something else too
    if found:
        word = next(g for g in found.groups() if g)
        return ShownQuestion(_ORDINALS[word.lower()])
    return ShownQuestion(None) if asks else None


def follows_recommendations(text: str) -> bool:
    """Whether a message right after recommendations builds on them: it changes them
    (:func:`refines`) or asks about the items shown (:func:`asks_about_shown`)."""
    return refines(text) or asks_about_shown(text) is not None


def follow_up(request: Request, previous: Request, shown_prices: Sequence[float] = ()) -> Request:
    """``request`` as a refinement of ``previous``, whose recommendations cost
    ``shown_prices``: what it names (a price, a category, a recipient...)
    replaces the earlier value, the rest carries over. A request for someone
    else (other recipients) starts afresh. Without a price of its own, "cheaper"
    is less than the cheapest item shown and "more expensive" more than the
    dearest; otherwise the earlier price range holds."""
    recipients = request.wants.get("recipients")
    if recipients and previous.wants.get("recipients") and recipients != previous.wants["recipients"]:
        return request
    price = request.price
    if not price.given:
        shown = [float(p) for p in shown_prices if p is not None]
        if shown and _CHEAPER.search(request.text):
            price = PriceRange(None, min(shown) - 0.01)
        elif shown and _DEARER.search(request.text):
            price = PriceRange(max(shown) + 0.01, None)
        else:
            price = previous.price
    # the earlier words still say what the customer is after, unless this message names a thing of its own
    own_terms = tuple(t for t in request.known_terms
                      if not any(p.search(t) for p in (_CHEAPER, _DEARER, _PRICE_WORDS, _OTHERS)))
    own_subject = bool(own_terms) or "category" in request.wants
    return Request(
        text=request.text if own_subject else f"{previous.text} {request.text}".strip(),
        language=request.language,
        price=price,
        wants={**previous.wants, **request.wants},
        gift=request.gift or previous.gift,
        known_terms=own_terms or previous.known_terms,
    )


def request_to_dict(request: Request) -> Dict[str, Any]:
    """A request as plain JSON values (for a slot), read back by ``request_from_dict``."""
    price = request.price
    return {"text": request.text, "language": request.language,
            "price": {"low": price.low, "high": price.high, "target": price.target},
            "wants": {attribute: sorted(values) for attribute, values in sorted(request.wants.items())},
            "gift": request.gift, "known_terms": list(request.known_terms)}


def request_from_dict(data: Dict[str, Any]) -> Request:
    """The request ``request_to_dict`` wrote; ValueError when ``data`` is not one."""
    try:
        price = data.get("price") or {}
        return Request(
            text=str(data["text"]), language=str(data["language"]),
            price=PriceRange(*(None if price.get(k) is None else float(price[k]) for k in ("low", "high", "target"))),
            wants={str(a): frozenset(map(str, v)) for a, v in (data.get("wants") or {}).items()},
            gift=bool(data.get("gift")), known_terms=tuple(map(str, data.get("known_terms") or ())))
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"not a recommendation request: {error}") from None
