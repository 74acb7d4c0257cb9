"""The shop's business rules as plain functions over a database session.

No Rasa here: every function takes a SQLAlchemy ``Session`` and returns a small
frozen dataclass. User errors (a malformed order number, an order that cannot be
refunded, ...) come back as an ``error`` code, never as an exception; database
errors (``SQLAlchemyError``) propagate to the caller.

The rules follow the knowledge base (bot/knowledge/*.yml): order numbers are
"ES" and 10 digits; refunds (returns) are for orders that have shipped, and
before shipment an order is cancelled instead; an item can be exchanged for
another size or colour of the same product once the order has shipped, while
the product is in stock; the delivery address can be changed once, before
shipment.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Callable, Optional, Sequence, Set, Tuple, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import AddressChange, Exchange, Order, Refund

REFUNDABLE_STATUSES = ("shipped", "completed")
# an exchanged item is sent back first, as for a refund: possible once the order has shipped
EXCHANGEABLE_STATUSES = REFUNDABLE_STATUSES
ADDRESS_CHANGEABLE_STATUSES = ("awaiting_payment", "awaiting_shipment")
OPEN_REFUND_STATUSES = ("requested", "approved")
OPEN_EXCHANGE_STATUSES = ("requested", "approved")
ADDRESS_MIN_CHARS, ADDRESS_MAX_CHARS = 6, 200
REASON_MAX_CHARS = 200
WANTED_MAX_CHARS = 100  # what the customer wants instead of the item: a size, a colour
ITEM_MAX_CHARS = 100  # how the customer names an item of the order
ORDER_NO_MAX_CHARS = 100

_ORDER_NO = re.compile(r"(?:ES)?(\d{10})")
_ORDER_NO_IN_TEXT = re.compile(r"(?<![A-Z0-9])(?:ES[\s\-_]*\d(?:[\s\-_]?\d){9}|\d{10})(?![\s\-_]?\d)")
_SEPARATORS = re.compile(r"[\s\-_.·#:：]+")
# what a customer types for an order number that is not one: "ES" with digits, or a run of 6+ digits
_ORDER_NO_ATTEMPT = re.compile(r"(?<![A-Z0-9])(?:ES[\s\-_]*\d[\d\s\-_]*|\d{6,})(?![A-Z0-9])")
# an item named by its position in the order: "2", "#2", "no. 2", "item 2", "第2件"
_ITEM_POSITION = re.compile(r"(?:#|no\.?|item|第)?\s*(\d{1,2})\s*(?:件|个)?")
# what every address has: a number, or a word of its place (an address with neither is no address)
_ADDRESS_PART = re.compile(r"\d|[省市区县镇乡村路街巷弄号楼栋室]|\b(?:road|rd|street|st|avenue|ave|lane|ln|drive|dr|way|"
                           r"flat|room|floor|building|block|tower|district|village|town|city|apartment|apt|unit)\b",
                           re.IGNORECASE)
_QUESTION_END = re.compile(r"(?:[?？]|[吗呢么嘛])\W*$")
# what comes before the address itself: "改到北京市…", "地址改成…", "please change it to Flat 12B…"
_ADDRESS_INTRO = re.compile(r"^(?:(?:麻烦|请|帮我|帮忙|我要|我想|想)*(?:把)?(?:收货)?(?:地址)?(?:改到|改成|改为|换到|换成|送到|寄到)"
                            r"(?:地址)?[:：]?\s*|(?:新|新的)(?:收货)?地址(?:是|为)?[:：]?\s*|"
                            r"(?:please\s+)?(?:change|update|send|deliver|ship)\s+(?:it|them|my address|the address)\s+to\s*[:：]?\s*|"
                            r"(?:the\s+|my\s+)?new address(?:\s+is)?\s*[:：]?\s*)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]{3,}|[\u4e00-\u9fff]")  # English words of 3+ letters, Chinese characters

# --- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One line of an order."""

    sku: str
    name_en: str
    name_zh: str
    quantity: int
    stock: int  # of the product in the shop
    category: str = ""  # of the product: clothing (shoes too) comes in sizes


@dataclass(frozen=True)
class AfterSale:
    """A refund or an exchange requested for an order (the latest of its kind is shown at a lookup)."""

    kind: str  # refund, exchange
    request_id: int
    status: str  # requested, approved, rejected, refunded (refund) or sent (exchange)
    requested_on: date
    sku: Optional[str] = None  # the item to exchange


@dataclass(frozen=True)
class OrderResult:
    """An order looked up by number, or an ``error``."""

    order_no: Optional[str]
    status: Optional[str] = None
    items: Tuple[Item, ...] = ()
    courier: Optional[str] = None
    tracking_no: Optional[str] = None
    address: Optional[str] = None
    customer_id: Optional[int] = None
    after_sales: Tuple[AfterSale, ...] = ()  # the latest refund and exchange, if any (look_up_order only)
    error: Optional[str] = None  # invalid_order_number, order_not_found


@dataclass(frozen=True)
class RefundResult:
    """A refund request, new or already there (``duplicate``), or an ``error``."""

    order_no: Optional[str]
    refund_id: Optional[int] = None
    status: Optional[str] = None  # the refund's status
    order_status: Optional[str] = None
    duplicate: bool = False
    error: Optional[str] = None  # invalid_order_number, order_not_found, not_refundable, invalid_reason


@dataclass(frozen=True)
class ExchangeResult:
    """An exchange of an item, checked or requested (new or already there: ``duplicate``), or an ``error``."""

    order_no: Optional[str]
    order_status: Optional[str] = None
    item: Optional[Item] = None  # None: the order has several items and none was named yet
    exchange_id: Optional[int] = None
    status: Optional[str] = None  # the exchange's status
    duplicate: bool = False
    # invalid_order_number, order_not_found, not_exchangeable, item_not_in_order, out_of_stock, invalid_wanted
    error: Optional[str] = None


@dataclass(frozen=True)
class AddressResult:
    """An address change, new or already made (``duplicate``), or an ``error``."""

    order_no: Optional[str]
    new_address: Optional[str] = None
    order_status: Optional[str] = None
    duplicate: bool = False
    # invalid_order_number, order_not_found, invalid_address, already_shipped,
    # order_cancelled, address_already_changed
    error: Optional[str] = None


# --- input cleaning -------------------------------------------------------------------


def _clean(text: Optional[str], max_chars: int) -> str:
    """``text`` as one line: NFKC (full-width letters and digits as ASCII), control
    characters as spaces, white space collapsed, at most ``max_chars`` + 1 characters
    (so that a text too long stays too long)."""
    text = unicodedata.normalize("NFKC", str(text or "")[: 4 * max_chars])
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())[: max_chars + 1]


def normalise_order_no(text: Optional[str]) -> Optional[str]:
    """The canonical order number ("ES" + 10 digits) in ``text``, or None.

    Accepts lower case, spaces, hyphens, full-width characters, a missing "ES"
    prefix and an order number inside a sentence ("我的订单号是 ES2611200002").
    """
    return _order_no_in(_clean(text, ORDER_NO_MAX_CHARS).upper())


def _order_no_in(cleaned: str) -> Optional[str]:
    """:func:`normalise_order_no` of text already cleaned and upper-cased."""
    match = _ORDER_NO.fullmatch(_SEPARATORS.sub("", cleaned))
    if match is None:
        found = _ORDER_NO_IN_TEXT.search(cleaned)
        match = _ORDER_NO.fullmatch(_SEPARATORS.sub("", found.group())) if found else None
    return f"ES{match.group(1)}" if match else None


# words that only say "here is my order number": what is left of such a message is no reason
_ORDER_WORDS = re.compile(r"订单号|订单|单号|我的|就是|是|这个|\b(?:order|number|no|my|it'?s|its|is|the|here)\b",
                          re.IGNORECASE)


def only_an_order_number(text: Optional[str]) -> bool:
    """Whether ``text`` says nothing but an order number or an attempt at one
    ("ES2611200002", "我的订单号是 ES2611200002", "ES261121006"): never a refund reason
    or an exchange wish, whatever the form asked."""
    cleaned = _clean(text, REASON_MAX_CHARS).upper()
    rest = _ORDER_NO_ATTEMPT.sub(" ", _ORDER_NO_IN_TEXT.sub(" ", cleaned))
    if rest == cleaned:
        return False
    return sum(ch.isalnum() for ch in _ORDER_WORDS.sub(" ", rest)) < 2


def order_number_attempt(text: Optional[str]) -> Optional[str]:
    """What in ``text`` was meant as an order number but is none ("ES261012", a phone
    number), or None when there is no such thing or ``text`` holds a real one."""
    cleaned = _clean(text, ORDER_NO_MAX_CHARS).upper()
    if _order_no_in(cleaned) is not None:
        return None
    found = _ORDER_NO_ATTEMPT.search(cleaned)
    return found.group().strip(" -_") if found else None


def _clean_short(text: Optional[str], max_chars: int) -> Optional[str]:
    """``text`` cleaned (:func:`_clean`), or None when empty or longer than ``max_chars``."""
    cleaned = _clean(text, max_chars)
    return cleaned if 0 < len(cleaned) <= max_chars else None


# a message that says something the customer said before was wrong ("不对 我说错了 是T恤要换",
# "哦我弄混了，要换的是那件T恤", "no, wait, the reason is wrong: ..."): at a confirmation it corrects,
# it does not confirm (a mix-up of the customer's own: "你们发货弄混了" is a reason)
_CORRECTION = re.compile(r"不对|不是这|说错|搞错|弄错|写错|打错|选错|错了|我(?:给)?(?:弄|搞|记)混|(?:搞|弄|说|写)反了|"
                         r"\b(?:wrong|mistake|mistaken|(?<!the one )(?<!what )i meant|not that one|not the one|"
                         r"the other way (?:a)?round|"
                         r"i (?:got )?(?:them |it |those )?mixed (?:them |it |those )?up)\b", re.IGNORECASE)
# what comes before a corrected reason: "不对，原因是", "no, wait, the reason is wrong:", "sorry,"
_GIVES_REASON = (r"^.*?(?:(?:原因|理由)(?:(?:是|改成|改为|换成)\s*[:：]?|\s*[:：])|"
                 r"\breason(?:\s+is(?:\s+wrong)?\s*[:：]?|\s*[:：]))\s*")
_REASON_INTRO = re.compile(_GIVES_REASON + r"|"
                           r"^(?:(?:不对|说错了|我说错了|错了|等等|等一下)[\s,，。.!！:：]+|"
                           r"(?:no|nope|wait|sorry|oops|actually)\s*[,，.!！:：]\s*)+", re.IGNORECASE)


def clean_reason(text: Optional[str]) -> Optional[str]:
    """A refund reason with whitespace collapsed and without the words that introduce it
    ("原因是过敏了" -> "过敏了", "the reason is they broke" -> "they broke"), or None when
    empty or too long."""
    reason = _clean_short(text, REASON_MAX_CHARS)
    return (_REASON_INTRO.sub("", reason) or reason) if reason else None


# --- a reason given with the request itself ---------------------------------------------

# the words of a refund request: "想退", "帮忙退个款", "i want to return", "refund please", "need to go back"
_REFUND_WORDS = re.compile(r"退(?!色)|"
                           r"\b(?:return(?:s|ing|ed)?|refund(?:s|ing|ed)?|money back|send (?:\w+ )?back|"
                           r"go(?:es)? back|take (?:\w+ )?back)\b", re.IGNORECASE)
# a message's clauses: split at punctuation, at a dash, at a space between Chinese words ("我要退款 不想要了")
# and before "because" or "因为"
_CLAUSE_BREAK = re.compile(r"[，,。;；!！\n]+|\.\s+|(?<=[?？])|\s+[-–—]+\s+|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])|"
                           r"(?:因为|由于)|\b(?:because|since|'?cause|cos)\b", re.IGNORECASE)
# words that say nothing of a reason: a greeting, thanks, please, "算了", "let me start over"
_SAYS_NOTHING = re.compile(r"你好|您好|在吗|亲|请问|麻烦(?:你|您)?(?:了|处理(?:一)?下|看(?:一)?下)?|帮(?:我|忙)?(?:处理|看)(?:一)?下|"
                           r"谢谢|尽快|算了|还是|重新|重来|再来|\b(?:hi|hello|hey|sorry|thanks|thank you|please|pls|asap|ok|okay|"
                           r"um+|uh+|so|well|actually|anyway|never mind|let me|start(?:ing)? (?:over|again)|"
                           r"(?:over )?again|same order|this order|that order)\b", re.IGNORECASE)
# the end of words that name what an order holds, right before its number: "the science kit from ES…",
# "the lamp in ES…", "瑜伽垫那单ES…", "耳机这一单 ES…"
_NAMES_THE_ORDER = re.compile(r"(?:\b(?:from|in|of|on|under|with)|[这那](?:一|个)?单(?:号|号码)?)\s*[:：]?\s*$", re.IGNORECASE)
_ORDER_LABEL = re.compile(r"(?:订单号|单号|订单|\border(?:\s+(?:no\.?|number))?)\s*(?:是|is)?\s*[:：]?\s*$", re.IGNORECASE)
# a clause that asks: a question mark or particle at its end, a question word first ("怎么操作")
_ASKS = re.compile(r"^(?:请问|怎么|怎样|如何|为什么|为啥|能不能|可不可以|是否|多久|多少|哪|什么时候|"
                   r"(?:(?:and|also|plus|oh|btw|so)\s+)?(?:how|what|when|where|which|who|why|can|could|do|does|is|are|will|"
                   r"would)\b)|"
                   # a question word inside the clause: "还有我另一单到哪了", "另外那单什么时候到" ("怎么" and "为什么"
                   # are as often a complaint's: "质量怎么这么差", "不知道为什么就坏了")
                   r"哪(?:里|儿)?|什么时候|多久|多长时间|几天|能不能|可不可以|是不是|是否|有没有", re.IGNORECASE)
_ORDER_NO_ANY_CASE = re.compile(_ORDER_NO_IN_TEXT.pattern, re.IGNORECASE)
_REASON_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z]{2,}(?:'[a-z]+)?", re.IGNORECASE)


def _asks(clause: str) -> bool:
    """Whether a (cleaned) clause asks something (``_QUESTION_END``, ``_ASKS``)."""
    return bool(_QUESTION_END.search(clause) or _ASKS.search(clause))


def reason_in_request(text: Optional[str]) -> Optional[str]:
    """The reason a refund request gives with itself ("耳机降噪没什么效果，想退" -> "耳机降噪没什么效果",
    "pls refund ES2611190007, they're not for me" -> "they're not for me"), or None: the clauses
    that are not the request ("想退", "I want to return order ...") nor a question, an order
    number, a greeting or thanks. The form then does not ask for what the customer said already;
    its confirmation shows the reason, to be corrected there."""
    kept = []
    for clause in _CLAUSE_BREAK.split(_clean(text, REASON_MAX_CHARS)):
        clause = clause.strip(" .。~～:：")
        if not clause or _asks(clause) or _REFUND_WORDS.search(clause):
            continue
        parts = _ORDER_NO_ANY_CASE.split(clause)
        if len(parts) > 1 and not parts[-1].strip() and _NAMES_THE_ORDER.search(parts[-2]):
            continue  # what was bought, named before its number: "the science kit from ES…", "瑜伽垫那单ES…"
        if len(parts) > 1:  # the clause without its order numbers and what labels them
            clause = " ".join(_ORDER_LABEL.sub("", part).strip() for part in parts).strip(" :：")
        rest = _SAYS_NOTHING.sub(" ", clause)
        if len(parts) > 1:
            rest = _ORDER_WORDS.sub(" ", rest)
        if len(_REASON_WORD.findall(rest)) >= 2:
            kept.append(clause)
    reason = "，".join(kept) if any("\u4e00" <= ch <= "\u9fff" for ch in "".join(kept)) else ", ".join(kept)
    return reason if 0 < len(reason) <= REASON_MAX_CHARS else None


# a message that speaks of another item than the one held, without naming it: "是另一件要换", "the other one"
_ANOTHER_ITEM = re.compile(r"另一|别的|其他|其它|\b(?:the other|another)\b", re.IGNORECASE)


def means_another_item(text: Optional[str]) -> bool:
    """Whether ``text`` speaks of another item of the order than the one held ("是另一件要换")."""
    return bool(text) and bool(_ANOTHER_ITEM.search(text))


# "I meant" that confirms what is held: "good, that's the band and colour I meant" ("it's the red one I
# meant" corrects as often as it confirms)
_CONFIRMED_AS_MEANT = re.compile(r"\b(?:that'?s|that is|exactly)\b(?:(?!\bnot\b)[^,.;!?，。；！？]){0,40}?"
                                 r"\bi meant\b", re.IGNORECASE)


def corrects_itself(text: Optional[str]) -> bool:
    """Whether ``text`` says that something said before was wrong ("that's the band I meant" says
    that what is held is right)."""
    return bool(text) and bool(_CORRECTION.search(_CONFIRMED_AS_MEANT.sub(" ", text)))


_GIVES_REASON_AT = re.compile(_GIVES_REASON, re.IGNORECASE)


def corrected_reason(text: Optional[str]) -> Optional[str]:
    """The refund reason a correction gives ("我写错了，原因是月饼皮已经发硬裂开了" -> "月饼皮已经发硬裂开了",
    "sorry, wrong reason: the strap snapped"): a message that says something said before was
    wrong and then gives the reason ("原因是…", "the reason is…", "reason: …"); None for any other
    message ("不对，原因写错了" gives none)."""
    given = _GIVES_REASON_AT.match(text or "") if corrects_itself(text) else None
    return clean_reason(text[given.end():]) if given else None


# the verbs that ask for a wish: "换成黑色", "change it to black"
_ZH_WISH_VERB = r"换成|换为|改成|改为"
_EN_WISH_VERB = r"(?:change|swap|switch|exchange|trade)(?:\s+(?:it|them|this|that))?\s+(?:to|for|into)\s+"
# a message that is the wish: it is what follows the verb
_WANTED_VERB = re.compile(rf"^(?:我想|我要|想|要|请|麻烦)?(?:帮我)?(?:{_ZH_WISH_VERB}|换个|换)(?=\S)|"
                          r"^(?:就|我)?要(?=\S)|"
                          rf"^(?:(?:yes|yeah|yep|ok|okay|actually|no|nah|sorry)\b[\s,]*(?:but\s+)?)?"
                          rf"(?:please\s+|i'?d like to\s+|i want to\s+|can you\s+)?"
                          rf"(?:{_EN_WISH_VERB}|make (?:it|them|that)\s+|go (?:with|for)\s+|in\s+)(?=\S)",
                          re.IGNORECASE)


# "换成黑色的吧": a particle at the end is no part of the wish
_TRAILING_PARTICLE = re.compile(r"(?<=\S)[吧啊呀哈嘛]+[。！!.]*$")


# a new wish inside a longer message: "换成黑色的吧", "yes but change it to the white one"
_NEW_WISH = re.compile(rf"(?:{_ZH_WISH_VERB})(?P<zh>\S.*)$|\b(?:{_EN_WISH_VERB}|make (?:it|them|that)\s+)(?P<en>\S.*)$",
                       re.IGNORECASE)


ONLY_A_WISH_MAX_CHARS = 16


def only_a_wish(text: Optional[str]) -> Optional[str]:
    """A message that is only a size or a colour ("白色", "43码", "size 44", "black please"), as the
    wish; None for anything else (a question, an order number, a longer message)."""
    said = _clean(text, WANTED_MAX_CHARS)
    wanted = clean_wanted(_POLITE_END.sub("", said))
    if (not wanted or len(wanted) > ONLY_A_WISH_MAX_CHARS or _QUESTION_END.search(said) or _QUESTION_END.search(wanted)
            or _ORDER_NO_ANY_CASE.search(wanted)):
        return None
    return wanted if _CONCRETE_WISH.search(wanted) else None


def wish_in(text: Optional[str]) -> Optional[str]:
    """The wish a message states with its verb ("好的 换成黑色的" -> "黑色的", "那换大半码，41.5" ->
    "大半码": :func:`wish_in_request`), or None."""
    said = wish_in_request(text)
    if said:
        return said
    found = _NEW_WISH.search(_clean(text, WANTED_MAX_CHARS * 2)) if text else None
    return clean_wanted(found.group("zh") or found.group("en")) if found else None


# a wish inside an exchange request: the verbs above, "换大一码" / "换个M码" / "换XL的" / "换黑色的" (换
# before a size or a colour), and
# an English verb a few words before its "for" ("exchange order ES2611210006 for a size L")
_ZH_SIZE_AFTER_VERB = (r"换(?:个|一个|一双|一件|一条)?"
                       r"(?=[大小][半一1]?个?[码号]|\d|[a-z]{1,3}(?:[码号]|(?![a-z]))|[黑白灰银金红粉橙黄绿蓝紫棕咖米青藏卡]色|"
                       r"[黑白灰红粉黄绿蓝紫棕]的)")
_WISH_IN_REQUEST = re.compile(rf"(?:{_ZH_WISH_VERB}|{_ZH_SIZE_AFTER_VERB})(?P<zh>\S.*)$|"
                              r"\b(?:change|swap|switch|exchange|trade)\b(?:\s+\S+){0,5}?\s+(?:to|for|into)\s+(?P<en>\S.*)$",
                              re.IGNORECASE)
_LAST_FOR = re.compile(r"\s+(?:for|to|into)\s+", re.IGNORECASE)
_ASKED_END = re.compile(r"\s*(?:[吗呢么嘛][?？]?|[?？])+$")
_POLITE_END = re.compile(r"[\s,，]*\b(?:please|pls|plz|instead|thanks|thank you)\b[\s.!?]*$", re.IGNORECASE)
# a wish says which size or colour: a number, a size's letters, a colour, one size up or down
# ("a size L", "XL的", "42码", "白色的", "黑的", "the black one", "大一码"); "another colour", "a different size",
# "a bigger pair", "that same order", "please" say none, and the form asks
_COLOURS = ("black|white|grey|gray|silver|gold|red|pink|rose|orange|yellow|green|blue|navy|purple|violet|"
            "brown|beige|khaki|cream|ivory|teal|turquoise|burgundy|charcoal")
# the ways of naming a size that a wish and a size alone (``_SIZE``, below) share: "L", "XL", "size 44",
# "one size up", "M码"
_SIZE_WORDS = (r"(?-i:(?<![A-Za-z])(?:XX?S|S|M|L|XX?L|XXXL)(?![A-Za-z]))|\bsize\s+[a-z0-9]|"
               r"\b(?:one|a) size (?:up|down|bigger|smaller)\b|[A-Za-z]{1,3}[码号]")
_CONCRETE_WISH = re.compile(rf"\d|{_SIZE_WORDS}|\b(?:{_COLOURS})\b|"
                            r"[黑白灰银金红粉橙黄绿蓝紫棕咖米青藏卡]色|[黑白灰红粉黄绿蓝紫棕]的|[大小][半一1]个?[码号]",
                            re.IGNORECASE)


def wish_in_request(text: Optional[str]) -> Optional[str]:
    """The wish an exchange request states with itself ("ES2611210006的跑鞋小了，想换大一码" -> "大一码",
    "exchange order ES2611210006 for a size L" -> "a size L", "能换成白色的吗？" -> "白色的"), or None:
    the first clause that asks for something with a wish's verb, without its order numbers, the
    question's end and a "please", that names a size or a colour (``_CONCRETE_WISH``). The form
    then does not ask for it again; its confirmation shows it, to be corrected there."""
    for clause in _CLAUSE_BREAK.split(_clean(text, WANTED_MAX_CHARS * 2)):
        found = _WISH_IN_REQUEST.search(clause.strip()) if clause else None
        if not found:
            continue
        wish = found.group("zh") or found.group("en")
        tail = _LAST_FOR.split(wish)[-1]  # "the shoes I got for my son's birthday for a 43" -> "a 43"
        wish = tail if _CONCRETE_WISH.search(tail) else wish
        wish = " ".join(_ORDER_LABEL.sub("", part).strip() for part in _ORDER_NO_ANY_CASE.split(wish))
        wish = clean_wanted(_POLITE_END.sub("", _ASKED_END.sub("", wish)).strip(" :："))
        if wish and _CONCRETE_WISH.search(wish):
            return wish
    return None


def clean_wanted(text: Optional[str]) -> Optional[str]:
    """What the customer wants instead of an item (a size, a colour), without the verb that asks
    for it ("换成黑色" -> "黑色", "swap it for a size 44" -> "a size 44"), or None when empty or too long."""
    wanted = _clean_short(text, WANTED_MAX_CHARS)
    return (_WANTED_VERB.sub("", _TRAILING_PARTICLE.sub("", wanted)) or wanted) if wanted else None


def clean_address(text: Optional[str]) -> Optional[str]:
    """A delivery address with whitespace collapsed, or None when too short or too long, or
    when it does not read as an address: no house number or address word ("不用改了，原地址能收"),
    or a question ("改地址要额外收钱吗？"), which a form asking for the address must not store;
    without the words that introduce it ("改到北京市…" -> "北京市…")."""
    address = _clean(text, ADDRESS_MAX_CHARS)
    address = _ADDRESS_INTRO.sub("", address) or address
    letters = sum(ch.isalnum() for ch in address)
    if letters < ADDRESS_MIN_CHARS or len(address) > ADDRESS_MAX_CHARS:
        return None
    if _QUESTION_END.search(address) or not _ADDRESS_PART.search(address):
        return None
    return address


def mask_phone(phone: Optional[str]) -> str:
    """A phone number for logs: the first 3 and last 2 digits only."""
    digits = re.sub(r"\D", "", phone or "")
    return f"{digits[:3]}{'*' * max(len(digits) - 5, 0)}{digits[-2:]}" if len(digits) > 5 else "***"


def mask_address(address: Optional[str]) -> str:
    """An address for logs: its first 4 characters and its length."""
    address = address or ""
    return f"{address[:4]}…({len(address)} chars)" if address else "<empty>"


# --- orders -----------------------------------------------------------------------


def _load_order(session: Session, order_no: Optional[str]) -> Tuple[Optional[str], Optional[Order], Optional[str]]:
    """(canonical number, order, error) for ``order_no`` as the user typed it."""
    canonical = normalise_order_no(order_no)
    if canonical is None:
        return None, None, "invalid_order_number"
    order = session.execute(select(Order).where(Order.order_no == canonical)).scalar_one_or_none()
    return canonical, order, (None if order else "order_not_found")


def find_order(session: Session, order_no: Optional[str]) -> OrderResult:
    """Status, items, courier, tracking number and address of an order."""
    canonical, order, error = _load_order(session, order_no)
    if order is None:
        return OrderResult(canonical, error=error)
    items = tuple(
        Item(line.product.sku, line.product.name_en, line.product.name_zh, line.quantity, line.product.stock,
             line.product.category)
        for line in order.items
    )
    return OrderResult(
        canonical,
        status=order.status,
        items=items,
        courier=order.courier,
        tracking_no=order.tracking_no,
        address=order.address,
        customer_id=order.customer_id,
    )


def look_up_order(session: Session, order_no: Optional[str]) -> OrderResult:
    """:func:`find_order` with the order's latest refund and exchange (``after_sales``): what a
    customer's lookup shows; the forms' checks need none of it."""
    order = find_order(session, order_no)
    return order if order.error else replace(order, after_sales=_latest_after_sales(session, order.order_no))


def _latest_after_sales(session: Session, order_no: str) -> Tuple[AfterSale, ...]:
    """The latest refund and the latest exchange of an order, those it has."""
    found = []
    for kind, table in (("refund", Refund), ("exchange", Exchange)):
        row = session.execute(
            select(table).where(table.order_no == order_no).order_by(table.created_at.desc(), table.id.desc()).limit(1)
        ).scalar_one_or_none()
        if row is not None:
            sku = row.sku if kind == "exchange" else None
            found.append(AfterSale(kind, row.id, row.status, row.created_at.date(), sku))
    return tuple(found)


# a message that asks how a refund or an exchange is going: "退款到账了吗", "where is my refund"
_AFTER_SALE_WORDS = {"refund": _REFUND_WORDS, "exchange": re.compile(r"换货|\bexchang(?:e|es|ed|ing)\b", re.IGNORECASE)}


def after_sales_asked(text: Optional[str]) -> Tuple[str, ...]:
    """The kinds of request (refund, exchange) a message speaks of: "ES2611200002的退款到账了吗"
    -> ("refund",); a lookup then says how they stand, or that there is none."""
    return tuple(kind for kind, words in _AFTER_SALE_WORDS.items() if words.search(text or ""))


Row = TypeVar("Row")


def _insert_once(session: Session, row: Row, existing: Callable[[], Optional[Row]]) -> Tuple[Row, bool]:
    """Insert ``row`` in a savepoint: (row, True), or (``existing()``, False).

    For rows with a unique key (a request key): a concurrent insert of the same
    key loses the race on the unique constraint and gets the winner's row back.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        winner = existing()
        if winner is None:
            raise
        return winner, False
    return row, True


def submit_refund(session: Session, order_no: Optional[str], reason: Optional[str], request_key: str) -> RefundResult:
    """Request a refund (a return) for a shipped or completed order, once.

    The same ``request_key``, or an open refund of the order, returns the
    existing refund with ``duplicate=True`` and writes nothing.
    """
    canonical, order, error = _load_order(session, order_no)
    if order is None:
        return RefundResult(canonical, error=error)
    if order.status not in REFUNDABLE_STATUSES:
        return RefundResult(canonical, order_status=order.status, error="not_refundable")
    cleaned = clean_reason(reason)
    if cleaned is None:
        return RefundResult(canonical, order_status=order.status, error="invalid_reason")

    def existing() -> Optional[Refund]:
        by_key = session.execute(select(Refund).where(Refund.request_key == request_key)).scalar_one_or_none()
        return by_key or session.execute(
            select(Refund)
            .where(Refund.order_no == canonical, Refund.status.in_(OPEN_REFUND_STATUSES))
            .order_by(Refund.id)
        ).scalars().first()

    refund, inserted = existing(), False
    if refund is None:
        refund, inserted = _insert_once(
            session, Refund(order_no=canonical, reason=cleaned, status="requested", request_key=request_key), existing
        )
    return RefundResult(canonical, refund.id, refund.status, order.status, duplicate=not inserted)


def order_item(items: Sequence[Item], said: Optional[str]) -> Optional[Item]:
    """The item of an order the customer means, or None when ``said`` names none or several.

    ``said`` None: the order's only item. Else its SKU ("CL-002"), its position
    in the order ("2", "第2件") or words of its name ("the shoes", "跑步鞋"): the
    one item that shares the most English words (of 3+ letters, a plural "s"
    aside) or Chinese characters with ``said``.
    """
    if said is None:
        return items[0] if len(items) == 1 else None
    text = _clean(said, ITEM_MAX_CHARS).casefold()
    by_sku = [item for item in items if item.sku.casefold() in text]
    if by_sku:
        return by_sku[0] if len(by_sku) == 1 else None
    position = _ITEM_POSITION.fullmatch(text)
    if position:
        index = int(position.group(1)) - 1
        return items[index] if 0 <= index < len(items) else None

    def words(name: str) -> Set[str]:  # "色" is in every colour ("驼色" names no "藏青色" item)
        return {word.removesuffix("s") for word in _WORD.findall(name.casefold())} - {"色"}

    asked = words(text)
    scores = [len(asked & (words(item.name_en) | words(item.name_zh))) for item in items]
    best = max(scores, default=0)
    return items[scores.index(best)] if best and scores.count(best) == 1 else None


# words of an exchange request that name no item ("我想把…换货", "I want to exchange order … for")
_REQUEST_FILLER = re.compile(r"[我想要把将帮请换货退的了这那个件双条一里中小大码号尺寸色]|订单|单号|麻烦|"
                             r"\b(?:want|wanna|would|like|exchange|swap|switch|change|order|number|the|for|from|"
                             r"with|please|size|them|this|that|these|those|one|pair|bought|got|ordered)\b",
                             re.IGNORECASE)


def item_in_request(items: Sequence[Item], text: Optional[str]) -> Optional[Item]:
    """The item of an order of several that an exchange request names ("我想把ES2603157742的羊毛衫换成M码"
    -> the wool sweater), or None: the words before the request's wish (:func:`wish_in_request`),
    without its order numbers and the words of any request, name one item only (:func:`order_item`)."""
    if not text or len(items) < 2:
        return None
    said = _clean(text, ITEM_MAX_CHARS * 2)
    wish = _WISH_IN_REQUEST.search(said)
    said = _REQUEST_FILLER.sub(" ", _ORDER_NO_ANY_CASE.sub(" ", said[:wish.start(wish.lastgroup)] if wish else said))
    return order_item(items, said) if _WORD.search(said.casefold()) else None


def words_beside(text: Optional[str], other: Any) -> Optional[str]:
    """``text`` with the words and Chinese characters of ``other`` blanked out, what it says beside
    them ("行，按墨绿色那件给我换就好" beside "墨绿色的那件": "行，按     给我换就好"); ``text`` when
    ``other`` is no text."""
    if not text or not isinstance(other, str):
        return text
    taken = set(_WORD.findall(other.casefold()))
    return _WORD.sub(lambda found: " " if found.group(0) in taken else found.group(0), text.casefold())


SIZED_CATEGORIES = ("clothing",)  # the products that come in sizes (the shop's shoes are clothing)
# a size, not a colour: "L码", "XL", "size 44", "43码", "41.5", "大一码", "one size up" (not "第2件", "#3")
_SIZE = re.compile(rf"{_SIZE_WORDS}|(?<![第#\d.])\d{{2}}(?:\.5)?(?!\s*[件个\d])|[大小][半一1]?个?[码号]|"
                   r"\b(?:bigger|larger|smaller) size\b",
                   re.IGNORECASE)


def item_for_wish(items: Sequence[Item], wish: Optional[str]) -> Optional[Item]:
    """The item of an order that a wish naming no item is for: a size ("那就换L码", "43码") can
    only be for an item that comes in sizes (``SIZED_CATEGORIES``); None when the wish names
    no size, or the order has no such item or several."""
    if not wish or not _SIZE.search(wish):
        return None
    sized = [item for item in items if item.category in SIZED_CATEGORIES]
    return sized[0] if len(sized) == 1 else None


def item_and_wish(items: Sequence[Item], said: Optional[str]) -> Tuple[Optional[Item], Optional[str]]:
    """(item, wish) an answer to "which item?" gives: the item it names (:func:`order_item`) and
    a wish said with its verb ("跑步鞋换43码" -> the shoes, "43码"; "换个黑色的" -> "黑色的"); an
    answer that names no item but a size ("L码", "a larger size") is that wish, if concrete
    (:func:`only_a_wish`), and the item the one a size can be for (:func:`item_for_wish`), if any.
    A bare colour ("the blue one", "白色的那个") names an item by its colour, no wish; a position
    ("第3件") neither."""
    item = order_item(items, said) if said else None
    wish = wish_in(said)
    if item is None and said and not _ITEM_POSITION.fullmatch(_clean(said, ITEM_MAX_CHARS).casefold()):
        wish = wish or (only_a_wish(said) if _SIZE.search(said) else None)
        item = item_for_wish(items, wish or said)  # "I want a larger size": the shoes, the wish asked
    return item, wish


def only_names_an_item(items: Sequence[Item], said: Optional[str]) -> bool:
    """Whether ``said`` only names an item of the order ("跑步鞋", "the shoes", "#1", "第1件") and
    no size or colour: no wish ("the shoes, size 44" is one)."""
    if not said or not items:
        return False
    position = _ITEM_POSITION.fullmatch(_clean(said, ITEM_MAX_CHARS).casefold())
    if position:
        return 1 <= int(position.group(1)) <= len(items)
    return order_item(items, said) is not None and not _CONCRETE_WISH.search(said)


def only_an_item_answer(items: Sequence[Item], said: Optional[str]) -> bool:
    """:func:`only_names_an_item`, and no question ("跑步鞋", not "跑步鞋能退吗？"): an item
    named where the form asks something else (its confirmation)."""
    return not _asks(_clean(said, ITEM_MAX_CHARS)) and only_names_an_item(items, said)


def check_exchange(order: OrderResult, said_item: Optional[str]) -> ExchangeResult:
    """Whether an item of an order looked up (:func:`find_order`) can be exchanged.

    The order must have shipped, ``said_item`` name one of its items
    (:func:`order_item`; None: the only one, if it has one) and the product be in
    stock. The result has the item, also with the error ``out_of_stock``; no
    error and no item when the order can be exchanged but has several items.
    """
    if order.error:
        return ExchangeResult(order.order_no, error=order.error)
    checked = ExchangeResult(order.order_no, order.status)
    if order.status not in EXCHANGEABLE_STATUSES:
        return replace(checked, error="not_exchangeable")
    item = order_item(order.items, said_item)
    if item is None:
        return checked if said_item is None else replace(checked, error="item_not_in_order")
    return replace(checked, item=item, error=None if item.stock > 0 else "out_of_stock")


def submit_exchange(
    session: Session, order_no: Optional[str], item: Optional[str], wanted: Optional[str], request_key: str
) -> ExchangeResult:
    """Request the exchange of an item of a shipped or completed order (``item`` as
    :func:`order_item` reads it) for ``wanted`` (another size or colour), once.

    The same ``request_key``, or an open exchange of the same item of the order,
    returns the existing exchange with ``duplicate=True`` and writes nothing
    (also when the product has sold out since). Otherwise a product out of stock
    is refused (``out_of_stock``) and nothing is written.
    """
    checked = check_exchange(find_order(session, order_no), item)
    if checked.item is None:
        return replace(checked, error=checked.error or "item_not_in_order")
    canonical, sku = checked.order_no, checked.item.sku

    def existing() -> Optional[Exchange]:
        by_key = session.execute(select(Exchange).where(Exchange.request_key == request_key)).scalar_one_or_none()
        return by_key or session.execute(
            select(Exchange)
            .where(Exchange.order_no == canonical, Exchange.sku == sku, Exchange.status.in_(OPEN_EXCHANGE_STATUSES))
            .order_by(Exchange.id)
        ).scalars().first()

    exchange, inserted = existing(), False
    if exchange is None:
        if checked.error:  # out_of_stock
            return checked
        cleaned = clean_wanted(wanted)
        if cleaned is None:
            return replace(checked, error="invalid_wanted")
        exchange, inserted = _insert_once(
            session,
            Exchange(order_no=canonical, sku=sku, wanted=cleaned, status="requested", request_key=request_key),
            existing,
        )
    return replace(checked, exchange_id=exchange.id, status=exchange.status, duplicate=not inserted, error=None)


def change_address(
    session: Session, order_no: Optional[str], new_address: Optional[str], request_key: str
) -> AddressResult:
    """Change the delivery address of an order that has not shipped, once.

    Repeating the same request (``request_key``) returns the change already
    made with ``duplicate=True``; a different second change is refused.
    """
    canonical, order, error = _load_order(session, order_no)
    if order is None:
        return AddressResult(canonical, error=error)
    if order.status == "cancelled":
        return AddressResult(canonical, order_status=order.status, error="order_cancelled")
    if order.status not in ADDRESS_CHANGEABLE_STATUSES:
        return AddressResult(canonical, order_status=order.status, error="already_shipped")

    def existing() -> Optional[AddressChange]:
        return session.execute(
            select(AddressChange).where(AddressChange.request_key == request_key)
        ).scalar_one_or_none()

    change = existing()
    if change is None:
        cleaned = clean_address(new_address)
        if cleaned is None:
            return AddressResult(canonical, order_status=order.status, error="invalid_address")
        earlier = session.execute(select(AddressChange.id).where(AddressChange.order_no == canonical)).first()
        if earlier is not None:
            return AddressResult(canonical, order_status=order.status, error="address_already_changed")
        change, inserted = _insert_once(
            session,
            AddressChange(order_no=canonical, old_address=order.address, new_address=cleaned, request_key=request_key),
            existing,
        )
        if inserted:
            order.address = cleaned
            return AddressResult(canonical, cleaned, order.status)
    return AddressResult(canonical, change.new_address, order.status, duplicate=True)
