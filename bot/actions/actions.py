"""Custom actions of the Example Shop bot (rasa-sdk 3.6), over the shop's backend.

The business rules and the database are the package ``shop`` beside this one
(``bot/shop/``); the database is created and seeded on first use, so
``rasa run actions`` needs no setup step. Every reply is a response of
``domain.yml``, sent by name with its variables
(``dispatcher.utter_message(response="utter_order_status", order_number=...)``);
the domain picks the variation by the slot ``language``, and the values the
actions fill in (order statuses, product names) are in that language too.

Slots read: language, order_number, refund_reason, refund_confirmed, frustration,
exchange_item, exchange_to, exchange_confirmed, new_address, customer_id,
preference, recommend_asked, recommend_context. Slots set: order_number (canonical or None),
customer_id (the customer of an order looked up), refund_reason,
refund_confirmed, exchange_item (a SKU), exchange_to, exchange_confirmed and
new_address (cleared after use), preference, recommend_asked, recommend_context (the
last recommendation's request and prices, for a follow-up such as "anything
cheaper?"), handoff.
Recommendations come from the plugin's recommender
(``rasa_gpt_components.recommend``, options in ``bot/recommend.yml``); an order
lookup's delivery time, from the knowledge base's entry for the region of the
order's address (``bot/knowledge/delivery.yml``).
Entities read: order_number, preference.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sys
import threading
from abc import ABC, abstractmethod
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Text, TypeVar

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from rasa_gpt_components.knowledge import KnowledgeBase
from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
from rasa_gpt_components.recommend import (
    Recommender,
    asks_about_shown,
    asks_for_others,
    request_from_dict,
    request_to_dict,
    word_details,
)
from rasa_gpt_components.text import (
    after_leading_yes, clean_text, leading_yes_or_no, looks_like_question, restates, unnegated_clauses,
)
from rasa_gpt_components.yaml_files import read_yaml_file

from shop import service
from shop.db import database_url, init_db, session_scope

logger = logging.getLogger(__name__)

# order statuses as bot/knowledge/orders.yml names them
STATUS_LABELS = {
    "awaiting_payment": {"en": "Awaiting payment", "zh": "待付款"},
    "awaiting_shipment": {"en": "Awaiting shipment", "zh": "待发货"},
    "shipped": {"en": "Shipped", "zh": "已发货"},
    "completed": {"en": "Completed", "zh": "已完成"},
    "cancelled": {"en": "Cancelled", "zh": "已取消"},
}
# the status of a refund or an exchange (shop.db), as a lookup shows it
AFTER_SALE_LABELS = {
    "requested": {"en": "submitted, waiting for review", "zh": "已提交，待审核"},
    "approved": {"en": "approved", "zh": "已通过审核"},
    "rejected": {"en": "not approved", "zh": "未通过审核"},
    "refunded": {"en": "refunded to the original payment method", "zh": "已原路退款"},
    "sent": {"en": "the replacement has been sent", "zh": "新商品已寄出"},
}
# couriers as bot/knowledge/shipping.yml names them
COURIER_NAMES = {
    "ZTO": {"en": "ZTO Express", "zh": "中通快递"},
    "SF": {"en": "SF Express", "zh": "顺丰速运"},
}
LIST_SEPARATOR = {"en": ", ", "zh": "、"}
# the knowledge base's delivery times by region (bot/knowledge/delivery.yml), matched to an
# order's address for "when will it arrive?"; orders that have not arrived yet
DELIVERY_TIMES = (Path(__file__).resolve().parent.parent / "knowledge" / "delivery.yml",
                  ("delivery_time_", "delivery_remote", "ship_hong_kong_", "ship_macau_", "ship_taiwan_"))
ON_THE_WAY_STATUSES = ("awaiting_payment", "awaiting_shipment", "shipped")

T = TypeVar("T")
_initialised: set = set()


# --- helpers ----------------------------------------------------------------------


def conversation_language(tracker: Tracker) -> str:
    """The slot ``language`` as "zh" or "en" (the default)."""
    value = str(tracker.get_slot("language") or "").strip().lower()
    return "zh" if value.startswith("zh") else "en"


def request_key(kind: str, sender_id: str, *parts: str) -> str:
    """A stable key of one user request, so that a repeated message is done once."""
    return hashlib.sha256("\x1f".join((kind, sender_id, *parts)).encode("utf-8")).hexdigest()


def _conversation_ref(tracker: Tracker) -> str:
    """The conversation in logs: a short hash, as sender ids can be phone numbers."""
    return hashlib.sha256(tracker.sender_id.encode("utf-8")).hexdigest()[:10]


def _set_up_once(url: str) -> None:
    """Create and seed the shop database at ``url`` the first time this process uses it."""
    if url not in _initialised:
        init_db(url)
        _initialised.add(url)


def _with_session(work: Callable[[Session], T]) -> T:
    url = database_url()
    _set_up_once(url)
    with session_scope(url) as session:
        return work(session)


async def run_in_database(work: Callable[[Session], T]) -> T:
    """Run ``work`` in a committed session, off the event loop; the database is set up on first use."""
    return await asyncio.to_thread(_with_session, work)


def _latest_entity(tracker: Tracker, entity: str) -> Optional[str]:
    return next(tracker.get_latest_entity_values(entity), None)


def requested_order_number(tracker: Tracker) -> Optional[str]:
    """The order number of the latest message (entity ``order_number``), else the slot."""
    return _latest_entity(tracker, "order_number") or tracker.get_slot("order_number")


_delivery_lock = threading.Lock()


@lru_cache(maxsize=1)
def _build_delivery_times() -> HybridRetriever:
    file, prefixes = DELIVERY_TIMES
    entries = [p for p in KnowledgeBase.load(file).passages if p.id.startswith(prefixes)]
    return HybridRetriever(KnowledgeBase(entries), RetrievalSettings(bm25_weight=1.0, threshold=0.05))


def _delivery_times() -> HybridRetriever:
    """The retriever over the region entries: built once (about a second: jieba's dictionary
    loads), in a thread as the action server starts (below), so no lookup waits for it."""
    with _delivery_lock:
        return _build_delivery_times()


def delivery_time(address: Optional[str], language: str) -> Optional[str]:
    """The knowledge base's delivery time for the region of ``address`` (BM25 over the region
    entries of DELIVERY_TIMES, in ``language``; house numbers left out: "8" is no region), or
    None when no region matches."""
    place = re.sub(r"\d+", " ", address or "").strip()
    hits = _delivery_times().search(place, top_k=1, language=language) if place else []
    return hits[0].passage.text if hits else None


def _status(status: Optional[str], language: str, labels: Dict[str, Dict[str, str]] = STATUS_LABELS) -> str:
    """``status`` as ``labels`` word it in ``language`` (an order's by default), else as it is."""
    return labels.get(status or "", {}).get(language, status or "")


def _price(amount: Decimal) -> str:
    return f"¥{amount:.0f}" if amount == amount.to_integral_value() else f"¥{amount:.2f}"


def _name(thing: Any, language: str) -> str:
    return thing.name_zh if language == "zh" else thing.name_en


def _items(items: Iterable[service.Item], language: str) -> str:
    return LIST_SEPARATOR[language].join(f"{_name(item, language)} × {item.quantity}" for item in items)


def _numbered_items(items: Iterable[service.Item], language: str) -> str:
    """One line per item of an order, numbered, for the customer to choose one ("2. 跑步鞋 × 1")."""
    return "\n".join(f"{number}. {_name(item, language)} × {item.quantity}" for number, item in enumerate(items, 1))


def _picks(picks: Iterable[Any], language: str) -> str:
    """One line per recommended item: its name and why ("- 羊绒围巾（适合父母，¥459，在预算内）")."""
    if language == "zh":
        return "\n".join(f"- {p.item.name('zh')}（{p.reason}）" for p in picks)
    return "\n".join(f"- {p.item.name('en')} ({p.reason})" for p in picks)


def _reference(prefix: str, row_id: Optional[int]) -> str:
    """The reference customers are given for a request: "RF000012" (refund), "EX000003" (exchange)."""
    return f"{prefix}{row_id or 0:06d}"


def utter_order_error(dispatcher: CollectingDispatcher, error: Optional[str], order_no: Optional[str]) -> bool:
    """Reply to a malformed or unknown order number; False when ``error`` is neither."""
    if error == "invalid_order_number":
        dispatcher.utter_message(response="utter_invalid_order_number")
    elif error == "order_not_found":
        dispatcher.utter_message(response="utter_order_not_found", order_number=order_no)
    else:
        return False
    return True


def utter_database_error(dispatcher: CollectingDispatcher, where: str) -> None:
    """Log a database error (SQL without values) and tell the user to try later."""
    logger.exception("%s: database error", where)
    dispatcher.utter_message(response="utter_database_error")


async def order_to_validate(
    dispatcher: CollectingDispatcher, where: str, order_no: Optional[str]
) -> Optional[service.OrderResult]:
    """The order a form's validation checks; None, after ``utter_database_error``, on a database error
    (a validation action answers, as ShopAction does)."""
    try:
        return await run_in_database(lambda session: service.find_order(session, order_no))
    except SQLAlchemyError:
        utter_database_error(dispatcher, where)
        return None


async def existing_order(
    dispatcher: CollectingDispatcher, where: str, order_no: Optional[str]
) -> Optional[service.OrderResult]:
    """``order_to_validate``, and None after telling the customer when the number is malformed or
    no such order exists (the refund and address forms' first check)."""
    order = await order_to_validate(dispatcher, where, order_no)
    if order is None or utter_order_error(dispatcher, order.error, order.order_no):
        return None
    return order


class ShopAction(Action, ABC):
    """An action that answers ``utter_database_error`` instead of failing on database errors.

    Abstract, so that the action server does not register it.
    """

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        try:
            return await self.act(dispatcher, tracker, conversation_language(tracker))
        except SQLAlchemyError:
            utter_database_error(dispatcher, self.name())
            return []

    @abstractmethod
    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        """The action itself, in the conversation's ``language``."""


# --- actions ----------------------------------------------------------------------


class ActionOrderStatus(ShopAction):
    """Status, items and tracking of the order in the message or slot ``order_number``."""

    def name(self) -> Text:
        return "action_order_status"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        asked = requested_order_number(tracker)
        if not asked:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        order = await run_in_database(lambda session: service.look_up_order(session, asked))
        if utter_order_error(dispatcher, order.error, order.order_no):
            return [SlotSet("order_number", None)]
        dispatcher.utter_message(
            response="utter_order_status",
            order_number=order.order_no,
            status=_status(order.status, language),
            items=_items(order.items, language),
        )
        if order.tracking_no:
            courier = COURIER_NAMES.get(order.courier or "", {}).get(language, order.courier)
            dispatcher.utter_message(
                response="utter_order_tracking",
                order_number=order.order_no,
                courier=courier,
                tracking_number=order.tracking_no,
            )
        estimate = delivery_time(order.address, language) if order.status in ON_THE_WAY_STATUSES else None
        if estimate:  # "when will it arrive?" after a lookup is this action again (the slot): the answer
            dispatcher.utter_message(response="utter_delivery_estimate", delivery_time=estimate)
        asked_about = service.after_sales_asked(tracker.latest_message.get("text"))
        utter_after_sales(dispatcher, order, asked_about, language)
        if not asked_about and not looked_up_before(tracker, order.order_no) and not sounds_unhappy(tracker):
            # not again at "when will it arrive?", and no sales pitch to an unhappy customer
            await utter_also_bought(dispatcher, order, language)
        # the order's customer: recommendations can then follow their past orders
        return [SlotSet("order_number", order.order_no), SlotSet("customer_id", str(order.customer_id))]


def utter_after_sales(dispatcher: CollectingDispatcher, order: service.OrderResult, asked_about: Iterable[str],
                      language: str) -> None:
    """How the order's latest refund and exchange stand, and that there is none of a kind the
    customer asked about ("ES2611200002的退款到账了吗" had started a new refund)."""
    shown = set()
    for request in order.after_sales:
        shown.add(request.kind)
        common = {"order_number": order.order_no, "requested_on": request.requested_on.isoformat(),
                  "status": _status(request.status, language, AFTER_SALE_LABELS)}
        if request.kind == "refund":
            dispatcher.utter_message(response="utter_order_refund", refund_id=_reference("RF", request.request_id), **common)
        else:
            item = next((item for item in order.items if item.sku == request.sku), None)
            dispatcher.utter_message(response="utter_order_exchange", exchange_id=_reference("EX", request.request_id),
                                     item=_name(item, language) if item else request.sku, **common)
    for kind in asked_about:
        if kind not in shown:
            dispatcher.utter_message(response=f"utter_order_no_{kind}", order_number=order.order_no)


# the frustration score (slot ``frustration``) from which a customer counts as unhappy
UNHAPPY_FRUSTRATION = 0.5


def sounds_unhappy(tracker: Tracker) -> bool:
    """Whether the customer's message reads as negative (SentimentAnalyzer's ``sentiment``) or the
    conversation's frustration score (GenerativeFallbackPolicy's slot) is at least UNHAPPY_FRUSTRATION."""
    sentiment = tracker.latest_message.get("sentiment")
    frustration = tracker.get_slot("frustration")
    negative = isinstance(sentiment, dict) and sentiment.get("label") == "negative"
    return negative or (isinstance(frustration, (int, float)) and frustration >= UNHAPPY_FRUSTRATION)


def looked_up_before(tracker: Tracker, order_no: Optional[str]) -> bool:
    """Whether ``action_order_status`` already looked ``order_no`` up in this conversation."""
    action = None
    for event in tracker.events:
        if event.get("event") == "action":
            action = event.get("name")
        elif event.get("event") == "slot" and event.get("name") == "order_number" and action == "action_order_status":
            if event.get("value") == order_no:
                return True
    return False


async def utter_also_bought(dispatcher: CollectingDispatcher, order: service.OrderResult, language: str) -> None:
    """"Customers who bought this also bought ...", after an order lookup, when there is anything."""
    skus = [item.sku for item in order.items]
    customer = None if order.customer_id is None else str(order.customer_id)
    try:
        recommender = shop_recommender(wait=False)
        if recommender is None:  # still being built: the order's answer does not wait for it
            return
        found = await asyncio.to_thread(recommender.also_bought, skus, customer, language)
    except Exception as error:  # noqa: BLE001 - the order's answer stands without suggestions
        logger.warning("no also-bought suggestions: %s", error)
        return
    if found.picks:
        dispatcher.utter_message(response="utter_also_bought", products=_picks(found.picks[:2], language))


class ActionSubmitRefund(ShopAction):
    """Submit the refund of the ``refund_form`` (slots ``order_number``, ``refund_reason``), once,
    unless the customer said no at the confirmation (slot ``refund_confirmed`` False)."""

    def name(self) -> Text:
        return "action_submit_refund"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        if tracker.get_slot("refund_confirmed") is False:
            dispatcher.utter_message(response="utter_refund_cancelled")
            return [SlotSet("refund_reason", None), SlotSet("refund_confirmed", None)]
        asked = requested_order_number(tracker)
        if not asked:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        reason = tracker.get_slot("refund_reason")
        key = request_key("refund", tracker.sender_id, service.normalise_order_no(asked) or str(asked))
        refund = await run_in_database(lambda session: service.submit_refund(session, asked, reason, key))
        if utter_order_error(dispatcher, refund.error, refund.order_no):
            return [SlotSet("order_number", None)]
        if refund.error == "not_refundable":
            dispatcher.utter_message(
                response="utter_refund_not_allowed",
                order_number=refund.order_no,
                status=_status(refund.order_status, language),
            )
        elif refund.error == "invalid_reason":
            dispatcher.utter_message(response="utter_invalid_refund_reason", max_length=service.REASON_MAX_CHARS)
        else:
            logger.info(
                "refund %s for %s (conversation %s, duplicate=%s)",
                refund.refund_id, refund.order_no, _conversation_ref(tracker), refund.duplicate,
            )
            dispatcher.utter_message(
                response="utter_refund_duplicate" if refund.duplicate else "utter_refund_submitted",
                order_number=refund.order_no,
                refund_id=_reference("RF", refund.refund_id),
            )
        return [SlotSet("refund_reason", None), SlotSet("refund_confirmed", None)]


# a message with one of these intents only thanks, greets, says goodbye or yes: not what a form asked
NOT_FREE_TEXT_INTENTS = ("thank", "greet", "goodbye", "affirm")
# what the exchange confirmation maps (domain.yml; validate_exchange_confirmed reads a new wish in them)
CONFIRMATION_INTENTS = ("affirm", "deny", "stop", "request_exchange")


def besides_the_confirmation(tracker: Tracker) -> bool:
    """Whether the latest message came at the exchange confirmation and is neither its yes nor
    its no (:data:`CONFIRMATION_INTENTS`): a wish or an item said again, or a question."""
    return (tracker.get_slot(REQUESTED_SLOT) == "exchange_confirmed"
            and latest_intent(tracker) not in CONFIRMATION_INTENTS)


def latest_intent(tracker: Tracker) -> Optional[str]:
    """The intent the NLU gave the latest message (``nlu_fallback`` included), or None."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def request_text(tracker: Tracker, intent: str) -> Optional[str]:
    """The text of the latest message read as ``intent`` (the request that started a form), or None."""
    for event in reversed(tracker.events):
        if event.get("event") == "user" and ((event.get("parse_data") or {}).get("intent") or {}).get("name") == intent:
            return event.get("text")
    return None


def not_an_answer(tracker: Tracker, text: Any) -> bool:
    """Whether ``text``, taken by a free-text slot (a refund reason, what an exchange is
    for), is no answer: the customer only gave an order number ("ES2611200002", often to
    say which order after a lookup), or only thanked, greeted or said yes. The slot stays empty and
    the form asks again, silently (nothing was wrong with what they said)."""
    if not isinstance(text, str):
        return False
    return latest_intent(tracker) in NOT_FREE_TEXT_INTENTS or service.only_an_order_number(text)


def corrected_at_confirmation(tracker: Tracker, slot_value: Any) -> bool:
    """Whether a yes taken at a confirmation from the request itself ("yes, submit the
    exchange" read as request_exchange) is a correction instead: "不对 我说错了 是T恤要换 换成M码"
    is read as request_exchange too, and filed the item the customer was correcting."""
    return (slot_value is True and latest_intent(tracker) != "affirm"
            and service.corrects_itself(tracker.latest_message.get("text")))


def corrected_item(order: Optional[service.OrderResult], text: Optional[str]) -> Optional[str]:
    """The SKU of the item a correction names, of an order of several whose product can be
    exchanged ("哦我弄混了，要换的是那件印花T恤"), or None. What it says is not ("跑步鞋不用换") names
    none (:func:`text.unnegated_clauses`)."""
    if order is None or not text:
        return None
    item = service.item_in_request(order.items, unnegated_clauses(text))
    checked = service.check_exchange(order, item.sku) if item else None  # it refuses an order with an error
    return checked.item.sku if checked and checked.item and not checked.error else None


def another_item(item: str, wish: Optional[str]) -> Dict[Text, Any]:
    """The exchange's slots when a confirmation named another item (and the wish it stated):
    that item, to confirm."""
    return {"exchange_confirmed": None, "exchange_item": item, **({"exchange_to": wish} if wish else {})}


def value_before(tracker: Tracker, slot: str) -> Any:
    """``slot``'s value before the latest message (the form has already set this turn's candidate)."""
    seen_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_message = True
        elif seen_message and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


class OrderFormValidation(FormValidationAction, ABC):
    """A form that asks for an order number: what the customer meant as one and is none
    ("uh it's ES261012 something") is validated like one, so the customer hears that it
    is not an order number and is asked again (not a fallback: the form would reject a
    message from which it extracted nothing)."""

    @abstractmethod
    def name(self) -> Text:
        """The validation action's name, ``validate_<form>``."""

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if tracker.get_slot(REQUESTED_SLOT) != "order_number" or _latest_entity(tracker, "order_number"):
            return {}
        attempt = service.order_number_attempt(tracker.latest_message.get("text"))
        return {"order_number": attempt} if attempt else {}


class ValidateRefundForm(OrderFormValidation):
    """Checks the slots of ``refund_form``: a refundable order and a reason."""

    def name(self) -> Text:
        return "validate_refund_form"

    async def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An existing order that has shipped, as its canonical number."""
        order = await existing_order(dispatcher, self.name(), slot_value)
        if order is None:
            return {"order_number": None}
        if order.status not in service.REFUNDABLE_STATUSES:
            dispatcher.utter_message(
                response="utter_refund_not_allowed",
                order_number=order.order_no,
                status=_status(order.status, conversation_language(tracker)),
            )
            return {"order_number": None}
        return {"order_number": order.order_no}

    async def extract_refund_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """The reason the request itself gave ("耳机降噪没什么效果，想退", "I want to return order
        ES2611210006, the blender arrived cracked"), at the form's start: the form does not ask
        for what the customer already said (:func:`service.reason_in_request`); its confirmation
        shows it, and a new reason there replaces it. There, a message that corrects the reason
        (:func:`service.corrected_reason`: "我写错了，原因是月饼皮已经发硬裂开了", holdout set 33, read as
        nlu_fallback, which domain.yml's mapping does not take) is the new reason, however it was
        read: the confirmation is asked again with it."""
        text = tracker.latest_message.get("text")
        if tracker.get_slot(REQUESTED_SLOT) == "refund_confirmed" and not looks_like_question(text or ""):
            corrected = service.corrected_reason(text)
            if not corrected:
                return {}
            # not the yes or no a mapping of its reading made it ("不对，原因是过敏了" read as deny)
            undone = {"refund_confirmed": None} if tracker.get_slot("refund_confirmed") is not None else {}
            return {"refund_reason": corrected, **undone}
        if (tracker.get_slot(REQUESTED_SLOT) or tracker.get_slot("refund_reason")
                or latest_intent(tracker) != "request_refund"):
            return {}
        reason = service.reason_in_request(tracker.latest_message.get("text"))
        return {"refund_reason": reason} if reason else {}

    def validate_refund_reason(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A non-empty reason of at most ``service.REASON_MAX_CHARS`` characters, that is one
        (:func:`not_an_answer`); no complaint about an empty slot (the repair policy empties
        it when the customer corrects the order). At the confirmation, a message that starts
        with a plain yes (:func:`leading_yes_or_no`) is that yes: the reason stays."""
        at_confirmation = tracker.get_slot(REQUESTED_SLOT) == "refund_confirmed"
        if at_confirmation and leading_yes_or_no(clean_text(tracker.latest_message.get("text") or "")) is True:
            # "correct, the 50 ml bottle" (holdout set 27): a yes that says a little more, not a new reason
            return {"refund_reason": value_before(tracker, "refund_reason"), "refund_confirmed": True}
        reason = None
        if slot_value is not None and not not_an_answer(tracker, slot_value):
            reason = service.clean_reason(slot_value if isinstance(slot_value, str) else None)
            if reason is None:
                dispatcher.utter_message(response="utter_invalid_refund_reason", max_length=service.REASON_MAX_CHARS)
        if reason is None and at_confirmation:
            # at the confirmation the reason given before stays (domain.yml: a message there is a new reason)
            return {"refund_reason": value_before(tracker, "refund_reason")}
        return {"refund_reason": reason}

    def validate_refund_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A yes, unless it corrects what was said (:func:`corrected_at_confirmation`): then the
        reason is asked again and nothing is filed."""
        if corrected_at_confirmation(tracker, slot_value):
            return {"refund_confirmed": None, "refund_reason": None}
        return {"refund_confirmed": slot_value}


# --- exchanges (another size or colour of an item) --------------------------------------


def utter_exchange_refused(dispatcher: CollectingDispatcher, exchange: service.ExchangeResult, language: str) -> bool:
    """Reply to an exchange the shop refuses (order not shipped, no such item, sold out, a
    wish too long); False when ``exchange`` has no such error. Order number errors: utter_order_error."""
    if exchange.error == "not_exchangeable":
        dispatcher.utter_message(
            response="utter_exchange_not_allowed",
            order_number=exchange.order_no,
            status=_status(exchange.order_status, language),
        )
    elif exchange.error == "item_not_in_order":
        dispatcher.utter_message(response="utter_exchange_item_not_found", order_number=exchange.order_no)
    elif exchange.error == "out_of_stock":
        dispatcher.utter_message(response="utter_exchange_out_of_stock", item=_name(exchange.item, language))
    elif exchange.error == "invalid_wanted":
        dispatcher.utter_message(response="utter_invalid_exchange_to", max_length=service.WANTED_MAX_CHARS)
    else:
        return False
    return True


def _exchange_item(order: service.OrderResult, tracker: Tracker) -> Optional[service.Item]:
    """The item of ``order`` in the slot ``exchange_item`` (a SKU), if any."""
    return next((item for item in order.items if item.sku == tracker.get_slot("exchange_item")), None)


class ActionSubmitExchange(ShopAction):
    """Submit the exchange of the ``exchange_form`` (slots ``order_number``, ``exchange_item``,
    ``exchange_to``), once, unless the customer said no at the confirmation (``exchange_confirmed`` False)."""

    def name(self) -> Text:
        return "action_submit_exchange"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        cleared = [SlotSet("exchange_item", None), SlotSet("exchange_to", None), SlotSet("exchange_confirmed", None)]
        if tracker.get_slot("exchange_confirmed") is False:
            dispatcher.utter_message(response="utter_exchange_cancelled")
            return cleared
        asked = requested_order_number(tracker)
        if not asked:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        item, wanted = tracker.get_slot("exchange_item"), tracker.get_slot("exchange_to")
        key = request_key("exchange", tracker.sender_id, service.normalise_order_no(asked) or str(asked), str(item))
        exchange = await run_in_database(lambda session: service.submit_exchange(session, asked, item, wanted, key))
        if utter_order_error(dispatcher, exchange.error, exchange.order_no):
            return [SlotSet("order_number", None), *cleared]
        if not utter_exchange_refused(dispatcher, exchange, language):
            logger.info(
                "exchange %s of %s in %s (conversation %s, duplicate=%s)",
                exchange.exchange_id, exchange.item.sku, exchange.order_no, _conversation_ref(tracker),
                exchange.duplicate,
            )
            dispatcher.utter_message(
                response="utter_exchange_duplicate" if exchange.duplicate else "utter_exchange_submitted",
                order_number=exchange.order_no,
                item=_name(exchange.item, language),
                exchange_id=_reference("EX", exchange.exchange_id),
            )
        return cleared


class ValidateExchangeForm(OrderFormValidation):
    """Checks the slots of ``exchange_form``: an order that can be exchanged, an item of it in
    stock (filled in when the order has one item, so the form does not ask), what instead."""

    def name(self) -> Text:
        return "validate_exchange_form"

    async def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An existing order that has shipped, as its canonical number; its item too when it has one."""
        order = await order_to_validate(dispatcher, self.name(), slot_value)
        if order is None:
            return {"order_number": None}
        checked = service.check_exchange(order, None)
        if utter_order_error(dispatcher, checked.error, checked.order_no) or utter_exchange_refused(
            dispatcher, checked, conversation_language(tracker)
        ):
            return {"order_number": None}
        # the only item; else the item already chosen, if it is one of this order; else the item
        # the request named ("我想把ES2603157742的羊毛衫换成M码"), shown at the confirmation
        item = (checked.item or _exchange_item(order, tracker)
                or service.item_in_request(order.items, request_text(tracker, "request_exchange")))
        return {"order_number": checked.order_no, "exchange_item": item.sku if item else None}

    async def validate_exchange_item(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An item of the order (by SKU, position or name) whose product is in stock, as its SKU.
        A wish said with it is kept ("跑步鞋换43码"); a size said instead of an item ("那就换L码")
        is for the order's one item that comes in sizes, and otherwise kept while the item is
        asked again (:func:`service.item_and_wish`)."""
        order_no = tracker.get_slot("order_number")
        if not order_no:  # the order was refused: it is asked again first
            return {"exchange_item": None}
        order = await order_to_validate(dispatcher, self.name(), order_no)
        if order is None:
            return {"exchange_item": None}
        said = slot_value if isinstance(slot_value, str) else ""
        item, wish = service.item_and_wish(order.items, said)
        checked = service.check_exchange(order, item.sku if item else said)
        kept = {"exchange_to": wish} if wish else {}
        if utter_order_error(dispatcher, checked.error, checked.order_no) or utter_exchange_refused(
            dispatcher, checked, conversation_language(tracker)
        ):
            return {"exchange_item": None, **kept}
        return {"exchange_item": checked.item.sku, **kept}

    async def extract_exchange_item(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """At the confirmation, a message that only names an item of the order ("跑步鞋", "充电宝那个",
        "第2件"; :func:`service.only_an_item_answer`) is the item, said again or changed:
        the confirmation is asked again with it. (It was no answer, so the form rejected it and
        the fallback answered "跑步鞋" with the knowledge base's passage on returning shoes.)"""
        order_no = tracker.get_slot("order_number")
        text = tracker.latest_message.get("text")
        if not besides_the_confirmation(tracker) or not order_no or not text:
            return {}
        order = await order_to_validate(dispatcher, self.name(), order_no)
        if order is None or order.error or not service.only_an_item_answer(order.items, text):
            return {}
        if leading_yes_or_no(clean_text(text)) is True:  # only then which item it names
            named = service.order_item(order.items, text)
            if named and named.sku == tracker.get_slot("exchange_item"):
                return {}  # "对，手环这么换我满意": a yes that names the item held (the repair policy's leading_yes)
        return {"exchange_item": text}

    async def extract_exchange_to(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """The wish the request itself gave ("exchange order ES2611210006 for a size L",
        "跑鞋小了，想换大一码"), at the form's start: the form does not ask for what the customer
        already said (:func:`service.wish_in_request`); its confirmation shows it, and a new
        wish there replaces it. At the confirmation, a message that is only a size or a colour
        ("白色" to "换成“白色的”？", "43码" to "大一码") is the wish, said again or anew: the
        confirmation is asked again with it (it was no answer, and got the fallback)."""
        requested = tracker.get_slot(REQUESTED_SLOT)
        if besides_the_confirmation(tracker):
            text = tracker.latest_message.get("text")
            after_yes = after_leading_yes(clean_text(text or ""))  # "好，红色" -> "红色"
            held = tracker.get_slot("exchange_to")
            if after_yes and isinstance(held, str) and restates(after_yes, held):
                return {}  # "好，就XL" to an exchange to XL码: a yes (the repair policy's leading_yes)
            wish = service.wish_in(text) or service.only_a_wish(after_yes or text)
            return {"exchange_to": wish} if wish else {}
        if requested or tracker.get_slot("exchange_to") or latest_intent(tracker) != "request_exchange":
            return {}
        wish = service.wish_in_request(tracker.latest_message.get("text"))
        return {"exchange_to": wish} if wish else {}

    async def validate_exchange_to(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """What the customer wants instead (a size, a colour): at most ``service.WANTED_MAX_CHARS``
        characters, that is one (:func:`not_an_answer`, nor only the item again: "跑步鞋", "#1" when
        the item was taken from the request); no complaint about an empty slot."""
        if slot_value is None or not_an_answer(tracker, slot_value):
            return {"exchange_to": None}
        if isinstance(slot_value, str) and tracker.get_slot("order_number"):
            order = await order_to_validate(dispatcher, self.name(), tracker.get_slot("order_number"))
            if order is not None and service.only_names_an_item(order.items, slot_value):
                return {"exchange_to": None}
        wanted = service.clean_wanted(slot_value if isinstance(slot_value, str) else None)
        if wanted is None:
            dispatcher.utter_message(response="utter_invalid_exchange_to", max_length=service.WANTED_MAX_CHARS)
        return {"exchange_to": wanted}

    async def validate_exchange_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A yes, unless the message names another item of the order, beside the words of the wish
        (that item, to confirm), or corrects what was said (:func:`corrected_at_confirmation`: the
        wish it states, to confirm; without one, the item, when the order has several, and the wish
        are asked again) or states another wish with its verb ("好的 换成黑色的": the confirmation
        is asked again, with it). A no that states another wish with its verb ("不要大一码了，换43")
        is that wish, to confirm, not a no to the exchange; so is a no that corrects itself and
        names another item of the order ("我弄混了，该换的是那本皮面笔记本，笔不用换", read as stop):
        that item."""
        text = tracker.latest_message.get("text")
        wish = service.wish_in(text)
        new_wish = bool(wish) and wish != tracker.get_slot("exchange_to")
        if slot_value is True and latest_intent(tracker) != "affirm":  # a yes taken from the request itself
            order = await order_to_validate(dispatcher, self.name(), tracker.get_slot("order_number"))
            item = corrected_item(order, text)
            corrected = corrected_at_confirmation(tracker, slot_value)
            # named beside the wish: "行，按墨绿色那件给我换就好" to a hoodie for "墨绿色的那件" names the order's
            # 墨绿色 bottle only by the wish's words (it said the wish again)
            beside_wish = corrected_item(order, service.words_beside(text, tracker.get_slot("exchange_to")))
            if item is not None and (corrected or item == beside_wish != tracker.get_slot("exchange_item")):
                return another_item(item, wish)  # "哦我弄混了，要换的是那件印花T恤", "需要换的是T恤": that item
            if corrected:
                if new_wish and not service.means_another_item(text):
                    return {"exchange_confirmed": None, "exchange_to": wish}  # "刚才说错了，换大一码": that wish
                several = order is None or len(order.items) > 1
                return {"exchange_confirmed": None, "exchange_to": None,
                        **({"exchange_item": None} if several else {})}
        if slot_value is False and service.corrects_itself(text):  # "我弄混了，该换的是那本皮面笔记本，笔不用换"
            order = await order_to_validate(dispatcher, self.name(), tracker.get_slot("order_number"))
            item = corrected_item(order, text)
            if item is not None and item != tracker.get_slot("exchange_item"):
                return another_item(item, wish)
        if isinstance(slot_value, bool) and new_wish:  # a yes or a no that states another wish
            return {"exchange_confirmed": None, "exchange_to": wish}
        return {"exchange_confirmed": slot_value}


class ActionAskExchangeItem(ShopAction):
    """The form's question for ``exchange_item``: which item of the order, listed and numbered."""

    def name(self) -> Text:
        return "action_ask_exchange_item"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        order = await run_in_database(lambda session: service.find_order(session, tracker.get_slot("order_number")))
        dispatcher.utter_message(
            response="utter_ask_exchange_item",
            order_number=order.order_no,
            items=_numbered_items(order.items, language),
        )
        return []


class ActionAskExchangeConfirmed(ShopAction):
    """The form's question for ``exchange_confirmed``: the order, the item by name and what instead."""

    def name(self) -> Text:
        return "action_ask_exchange_confirmed"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        order = await run_in_database(lambda session: service.find_order(session, tracker.get_slot("order_number")))
        item = _exchange_item(order, tracker)
        dispatcher.utter_message(
            response="utter_ask_exchange_confirmed",
            order_number=order.order_no,
            item=_name(item, language) if item else tracker.get_slot("exchange_item"),
            exchange_to=tracker.get_slot("exchange_to"),
        )
        return []


def utter_address_fixed(dispatcher: CollectingDispatcher, order_no: Optional[str], status: Optional[str], language: str) -> bool:
    """Say why the address of an order in ``status`` can no longer change; False when it can."""
    if status == "cancelled":
        dispatcher.utter_message(response="utter_order_cancelled", order_number=order_no)
    elif status not in service.ADDRESS_CHANGEABLE_STATUSES:
        dispatcher.utter_message(response="utter_address_already_shipped", order_number=order_no, status=_status(status, language))
    else:
        return False
    return True


class ValidateAddressForm(OrderFormValidation):
    """Checks the slots of ``address_form`` as they come: an order whose address can still change
    (so the customer hears it before typing an address), and an address of a sensible length.
    ``action_change_address`` checks again when it writes (the order may ship meanwhile)."""

    def name(self) -> Text:
        return "validate_address_form"

    async def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An existing order that has not shipped and is not cancelled, as its canonical number."""
        order = await existing_order(dispatcher, self.name(), slot_value)
        if order is None:
            return {"order_number": None}
        if utter_address_fixed(dispatcher, order.order_no, order.status, conversation_language(tracker)):
            return {"order_number": None}
        return {"order_number": order.order_no}

    def validate_new_address(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An address of ``service.ADDRESS_MIN_CHARS`` to ``ADDRESS_MAX_CHARS`` characters, cleaned."""
        address = service.clean_address(slot_value if isinstance(slot_value, str) else None)
        if address is None:
            dispatcher.utter_message(
                response="utter_invalid_address", min_length=service.ADDRESS_MIN_CHARS, max_length=service.ADDRESS_MAX_CHARS
            )
        return {"new_address": address}


class ActionChangeAddress(ShopAction):
    """Change the delivery address (slot ``new_address``) of an order that has not shipped."""

    def name(self) -> Text:
        return "action_change_address"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        asked = requested_order_number(tracker)
        if not asked:
            dispatcher.utter_message(response="utter_ask_order_number")
            return []
        address = tracker.get_slot("new_address")
        if not address:
            dispatcher.utter_message(response="utter_ask_new_address")
            return []
        key = request_key(
            "address",
            tracker.sender_id,
            service.normalise_order_no(asked) or str(asked),
            service.clean_address(address) or str(address),
        )
        change = await run_in_database(lambda session: service.change_address(session, asked, address, key))
        if utter_order_error(dispatcher, change.error, change.order_no):
            return [SlotSet("order_number", None)]
        if change.error == "invalid_address":
            dispatcher.utter_message(
                response="utter_invalid_address", min_length=service.ADDRESS_MIN_CHARS, max_length=service.ADDRESS_MAX_CHARS
            )
        elif change.error in ("already_shipped", "order_cancelled"):
            utter_address_fixed(dispatcher, change.order_no, change.order_status, language)
        elif change.error == "address_already_changed":
            dispatcher.utter_message(response="utter_address_already_changed", order_number=change.order_no)
        else:
            logger.info(
                "address of %s changed to %s (conversation %s, duplicate=%s)",
                change.order_no, service.mask_address(change.new_address), _conversation_ref(tracker), change.duplicate,
            )
            dispatcher.utter_message(
                response="utter_address_changed", order_number=change.order_no, new_address=change.new_address
            )
        return [SlotSet("new_address", None)]


def _customer_id(tracker: Tracker) -> Optional[int]:
    value = str(tracker.get_slot("customer_id") or "").strip()
    return int(value) if value.isdigit() else None


# --- recommendations (rasa_gpt_components.recommend; options in bot/recommend.yml) ---

RECOMMEND_CONFIG = Path(__file__).resolve().parent.parent / "recommend.yml"
_recommenders: Dict[str, Any] = {}  # database URL -> Recommender, or the error its build raised
_builds: Dict[str, threading.Thread] = {}
_recommender_lock = threading.Lock()


def _build_recommender(url: str) -> None:
    try:
        _set_up_once(url)
        config = read_yaml_file(RECOMMEND_CONFIG) or {}
        _recommenders[url] = Recommender.from_config({**config, "database_url": url})
    except Exception as error:  # noqa: BLE001 - kept for the caller that waits
        _recommenders[url] = error
    finally:
        with _recommender_lock:
            _builds.pop(url, None)


def shop_recommender(wait: bool = True) -> Optional[Recommender]:
    """The process's recommender over the shop's database. Built once, in a
    thread (the sentence encoder loads; the catalogue's vectors come from the
    cache, or are computed: about a minute on 2 cores the first time, which
    ``make`` does ahead). ``wait=False``: None until it is ready."""
    url = database_url()
    with _recommender_lock:
        built = _recommenders.get(url)
        if built is None and url not in _builds:
            _builds[url] = threading.Thread(target=_build_recommender, args=(url,), daemon=True,
                                            name="recommender-build")
            _builds[url].start()
        building = _builds.get(url)
    if built is None and wait and building is not None:
        building.join()
        built = _recommenders.get(url)
    if isinstance(built, Exception):
        with _recommender_lock:
            _recommenders.pop(url, None)  # the next call tries again
        raise built
    return built


def _recommend_text(tracker: Tracker, follows_up: bool) -> str:
    """The customer's message, with the category they stated earlier (slot ``preference``) when it
    names none (a follow-up has the earlier request itself)."""
    text = str(tracker.latest_message.get("text") or "")
    said = [str(v) for v in tracker.get_latest_entity_values("preference") if v]
    preference = tracker.get_slot("preference")
    if not said and preference and not follows_up:
        text = f"{text} {preference}".strip()
    return text


def _answers_recommendations(tracker: Tracker) -> bool:
    """Whether the latest message answers the bot's recommendations (or its question about them):
    action_recommend was the bot's last action before it."""
    events = list(tracker.events)
    user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=None)
    if user is None:
        return False
    before = (e.get("name") for e in reversed(events[:user]) if e.get("event") == "action")
    return next((name for name in before if name != "action_listen"), None) == "action_recommend"


def _previous_recommendation(tracker: Tracker) -> tuple:
    """(request, prices shown, ids shown) of the recommendation the latest message follows up,
    or (None, (), ())."""
    context = tracker.get_slot("recommend_context")
    if not isinstance(context, dict) or not _answers_recommendations(tracker):
        return None, (), ()
    try:
        return (request_from_dict(context.get("request") or {}), tuple(float(p) for p in context.get("shown") or ()),
                tuple(str(i) for i in context.get("shown_ids") or ()))
    except (TypeError, ValueError):
        logger.warning("action_recommend: slot recommend_context is not a recommendation; ignored")
        return None, (), ()


class ActionRecommend(ShopAction):
    """Up to three products for what the customer asks (their message), their
    orders (slot ``customer_id``) and what customers bought; asks who it is for
    and the budget once when the request names nothing (slot ``recommend_asked``)."""

    def name(self) -> Text:
        return "action_recommend"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[EventType]:
        customer_id = _customer_id(tracker)
        asked = bool(tracker.get_slot("recommend_asked"))
        previous, shown, shown_ids = _previous_recommendation(tracker)
        # "第一个多少钱" / "is the second one in stock?": about the items just shown (the last ids)
        question = asks_about_shown(tracker.latest_message.get("text") or "") if previous is not None else None
        if question is not None and shown:
            catalogue = (await asyncio.to_thread(shop_recommender)).catalogue
            items = [catalogue.items[catalogue.position[i]] for i in shown_ids[-len(shown):] if i in catalogue.position]
            about = question.pick(items)
            if about:
                dispatcher.utter_message(response="utter_shown_items",
                                         details="\n".join(word_details(item, language) for item in about))
            else:  # "the fourth one" of three
                dispatcher.utter_message(response="utter_which_shown_item", count=len(items))
            return []  # the recommendations stay the ones to follow up
        text = _recommend_text(tracker, follows_up=previous is not None)
        # "换一批" / "something else": the same request without what was shown (so far)
        others = previous is not None and asks_for_others(tracker.latest_message.get("text") or "")
        exclude = shown_ids if others else ()

        def work():  # type: ignore[no-untyped-def]
            return shop_recommender().recommend(text, None if customer_id is None else str(customer_id), language,
                                                may_ask=not asked, previous=previous, shown_prices=shown,
                                                exclude=exclude)

        found = await asyncio.to_thread(work)
        context = {"request": request_to_dict(found.request) if found.request else None,
                   "shown": [pick.item.price for pick in found.picks],
                   "shown_ids": [*exclude, *(pick.item.id for pick in found.picks)]}
        events: List[EventType] = [SlotSet("recommend_context", context if found.request else None)]
        if found.basis == "clarify":
            dispatcher.utter_message(response="utter_ask_recommendation_details")
            return events + [SlotSet("recommend_asked", True)]
        if not found.picks:
            dispatcher.utter_message(response="utter_no_recommendations")
        else:
            response = "utter_top_sellers" if found.basis == "popular" else "utter_recommendations"
            dispatcher.utter_message(response=response, products=_picks(found.picks, language))
        stated = found.request.wants.get("category") if found.request else None
        return events + ([SlotSet("preference", sorted(stated)[0])] if stated else [])


class ActionHandoff(Action):
    """Hand the conversation over to a human agent."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        logger.info("handoff requested (conversation %s)", _conversation_ref(tracker))
        dispatcher.utter_message(response="utter_handoff")  # its summary still sees the form open
        events: List[EventType] = [SlotSet("handoff", True)]
        if (tracker.active_loop or {}).get("name"):  # the agent takes over: the form must not go on asking
            events += [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]
        return events


def _loaded_by_the_action_server() -> bool:
    """Whether ``rasa run actions`` (or ``python -m rasa_sdk``) is loading this module."""
    return sys.argv[1:3] == ["run", "actions"] or sys.argv[0].endswith(os.path.join("rasa_sdk", "__main__.py"))


if _loaded_by_the_action_server():
    # build the recommender while the server starts, so that no customer waits for it
    shop_recommender(wait=False)


# the delivery times' retriever is ready before the first order lookup (see _delivery_times)
threading.Thread(target=_delivery_times, daemon=True, name="delivery-times").start()
