"""The shop bot's backend (bot/shop/: database, business rules) and custom
actions (bot/actions/).

A real SQLite database in the test's folder, real rasa_sdk trackers and
dispatchers; no Rasa server. Every reply is a response of bot/domain.yml with
exactly the variables its text uses.
"""

import asyncio
import logging
import re
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select, text

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))  # the action server runs from bot/: packages `actions` and `shop`

from actions import actions as bot_actions  # noqa: E402
from shop import catalogue, db, demo, service  # noqa: E402

RESPONSES = yaml.safe_load((BOT_DIR / "domain.yml").read_text(encoding="utf-8"))["responses"]
SHIPPED_SF = "ES2611200002"  # customer 1, X12 smartphone, SF Express
AWAITING_SHIPMENT = "ES2611240003"  # customer 1, running shoes
AWAITING_PAYMENT = "ES2611250004"  # customer 2
TWO_ITEMS_SHIPPED = "ES2611210006"  # customer 2, running shoes (CL-003) and a power bank (EL-003)
CANCELLED = "ES2611050005"
MESSAGE_KEYS = {"text", "buttons", "elements", "custom", "template", "response", "image", "attachment"}
LABELS = {"en": ("Shipped", "SF Express"), "zh": ("已发货", "顺丰速运")}


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    """A fresh SQLite database for the actions (SHOP_DATABASE_URL), created on first use;
    the recommender without its sentence encoder (tests/integration/test_recommendations.py has it)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv(db.DATABASE_URL_ENV, url)
    config = tmp_path / "recommend.yml"
    config.write_text("encoder: null\n", encoding="utf-8")
    monkeypatch.setattr(bot_actions, "RECOMMEND_CONFIG", config)
    yield url
    bot_actions._recommenders.pop(url, None)
    db.dispose_engines()


@pytest.fixture
def recommender_ready(db_url):
    """The action server's recommender built (order lookups do not wait for it)."""
    assert bot_actions.shop_recommender() is not None
    return db_url


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    entities: Tuple[Tuple[str, str], ...] = (),
    sender: str = "user-1",
    events: Optional[List[Dict[str, Any]]] = None,
    text: str = "",
) -> Tracker:
    latest = {"text": text, "intent": {"name": "x"}, "entities": [{"entity": e, "value": v} for e, v in entities]}
    return Tracker(sender, dict(slots or {}), latest, events or [], False, None, {}, "action_listen")


def run(action, tracker: Tracker, domain: Optional[Dict[str, Any]] = None):
    """Run an action: ([(response, variables)], events); checks the documented response contract."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain or {}))
    replies = []
    for message in dispatcher.messages:
        name, variables = message["response"], {k: v for k, v in message.items() if k not in MESSAGE_KEYS}
        assert message["text"] is None, "replies are responses, not literal text"
        assert set(variables) == response_variables(name), name
        replies.append((name, variables))
    return replies, events


def response_variables(name: str) -> Set[str]:
    """The {variables} the texts of a domain response use (every variation)."""
    return {v for variation in RESPONSES[name] for v in re.findall(r"{(\w+)}", variation["text"])}


def slot_events(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def count(model, url: str) -> int:
    with db.session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def full_width(ascii_text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in ascii_text)


# --- database and seed data ---------------------------------------------------------


def test_seeding_is_idempotent(db_url):
    assert db.init_db(db_url) is True
    tables = (db.Customer, db.Product, db.Order, db.OrderItem, db.Refund, db.Exchange, db.AddressChange)
    before = {m.__tablename__: count(m, db_url) for m in tables}
    assert db.init_db(db_url) is False
    assert {m.__tablename__: count(m, db_url) for m in tables} == before
    # the demo rows, then the generated catalogue and customers (tests/unit/test_catalogue.py)
    assert before["customers"] == len(demo.DEMO_CUSTOMERS) + catalogue.SYNTHETIC_CUSTOMERS
    assert before["products"] == len(demo.DEMO_PRODUCTS) + catalogue.GENERATED_PRODUCTS
    with db.session_scope(db_url) as session:
        stored = dict(session.execute(select(db.Order.order_no, db.Order.status)).all())
        languages = {c.id: c.language for c in session.execute(select(db.Customer).where(db.Customer.id <= 4)).scalars()}
        categories = {p.category for p in session.execute(select(db.Product)).scalars()}
    assert {no: stored[no] for no in demo.DEMO_ORDERS} == demo.DEMO_ORDERS
    assert languages == {cid: row[2] for cid, row in demo.DEMO_CUSTOMERS.items()}
    assert categories == set(demo.CATEGORIES)
    assert set(demo.DEMO_ORDERS.values()) == set(db.ORDER_STATUSES)


def test_database_url_defaults_to_the_bot_folder(monkeypatch):
    monkeypatch.delenv(db.DATABASE_URL_ENV, raising=False)
    assert db.database_url() == f"sqlite:///{BOT_DIR / 'shop.db'}"
    monkeypatch.setenv(db.DATABASE_URL_ENV, "postgresql://shop@localhost/shop")
    assert db.database_url() == "postgresql://shop@localhost/shop"


def test_seed_orders_follow_the_knowledge_base(db_url):
    """Order numbers are ES + 10 digits; ZTO by default, SF for electronics over 1,000 yuan or HK/Macau."""
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        for order in session.execute(select(db.Order)).scalars():
            assert service.normalise_order_no(order.order_no) == order.order_no
            assert order.items, order.order_no
            if order.status in ("shipped", "completed"):
                big_electronics = any(
                    i.product.category == "electronics" and i.product.price_yuan > 1000 for i in order.items
                )
                far = any(place in order.address for place in ("Hong Kong", "Macau", "香港", "澳门"))
                assert order.courier == ("SF" if big_electronics or far else "ZTO"), order.order_no
                assert order.tracking_no and order.shipped_at
            else:
                assert order.courier is None and order.tracking_no is None
        assert session.execute(select(db.Product).where(db.Product.sku == "CL-001")).scalar_one().price_yuan == Decimal(
            "79.00"
        )


@pytest.mark.parametrize(
    "typed",
    [SHIPPED_SF, SHIPPED_SF.lower(), " es-2611 2000 02 ", full_width(SHIPPED_SF), "2611200002",
     f"我的订单号是：{SHIPPED_SF}。", "order es 2611-2000-02 please"],
)
def test_normalise_order_no_accepts_variants(typed):
    assert service.normalise_order_no(typed) == SHIPPED_SF


@pytest.mark.parametrize(
    "typed", [None, "", "ES261120000", "ES26112000021", "SO2611200002", "13812345678", "call 138 1234 5678", "hello"]
)
def test_normalise_order_no_rejects_others(typed):
    assert service.normalise_order_no(typed) is None


@pytest.mark.parametrize(
    "typed, attempt",
    [("uh it's ES261012 something, hang on", "ES261012"), ("订单号是es 2611-200", "ES 2611-200"),
     ("13812345678", "13812345678"), ("ES26112000021", "ES26112000021"),
     (SHIPPED_SF, None), (f"it's {SHIPPED_SF.lower()}", None), ("yes 2 of them", None), ("the 12 o'clock one", None),
     ("hello", None), (None, None)],
)
def test_an_order_number_attempt_is_what_was_meant_as_one(typed, attempt):
    assert service.order_number_attempt(typed) == attempt


@pytest.mark.parametrize(
    "text, stored",
    [("江苏省南京市鼓楼区中山北路105号3栋601", True), ("Flat 12B, 8 Harbour Road, Wan Chai, Hong Kong", True),
     ("Harbour Road, Wan Chai, Hong Kong", True), ("北京市海淀区中关村大街", True),
     ("改地址要额外收钱吗？", False), ("is there a fee for changing it?", False),  # a question asked in the form
     ("哦不用改了，问了家里人，原地址能收", False), ("the same as before please", False)],  # no place, no number
)
def test_an_address_must_read_as_one(text, stored):
    """What a form asking for the new address must not store: a question, or words without a place."""
    assert (service.clean_address(text) is not None) == stored


@pytest.mark.parametrize(
    "text, address",
    [("改到北京市海淀区中关村大街27号 1单元302", "北京市海淀区中关村大街27号 1单元302"),
     ("地址改成：上海市徐汇区漕溪北路18号", "上海市徐汇区漕溪北路18号"),
     ("please change it to Flat 12B, 8 Harbour Road, Wan Chai", "Flat 12B, 8 Harbour Road, Wan Chai"),
     ("new address: 8 Harbour Road, Wan Chai", "8 Harbour Road, Wan Chai"),
     ("麻烦帮我把地址改成上海市徐汇区漕溪北路18号", "上海市徐汇区漕溪北路18号"),
     ("新地址是上海市徐汇区漕溪北路18号", "上海市徐汇区漕溪北路18号"),
     ("change my address to 8 Harbour Road, Wan Chai", "8 Harbour Road, Wan Chai"),
     ("江苏省南京市鼓楼区中山北路105号3栋601", "江苏省南京市鼓楼区中山北路105号3栋601")],
)
def test_an_address_is_stored_without_the_words_that_introduce_it(text, address):
    assert service.clean_address(text) == address


def test_customer_text_is_cleaned_and_bounded_by_the_shop():
    """The action server does without the plugin's clean_text: the shop cleans what it stores."""
    assert service.clean_reason(" wrong\x00size\n\u200b") == "wrong size"
    assert service.clean_address("上海市徐汇区\t漕溪北路 18 号" + "\x7f") == "上海市徐汇区 漕溪北路 18 号"
    assert service.clean_reason("x" * 100_000) is None and service.clean_address("x" * 100_000) is None
    assert service.normalise_order_no(SHIPPED_SF + " " * 100_000) == SHIPPED_SF


def test_masks_hide_phone_numbers_and_addresses():
    assert service.mask_phone("13812345678") == "138******78"
    masked = service.mask_address("上海市浦东新区世纪大道 100 号 8 楼 801 室")
    assert masked.startswith("上海市浦") and "世纪大道" not in masked


# --- order status ---------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh"])
def test_order_status_found(recommender_ready, language):
    tracker = make_tracker({"language": language}, entities=(("order_number", SHIPPED_SF.lower()),))
    replies, events = run(bot_actions.ActionOrderStatus(), tracker)
    status, courier = LABELS[language]
    item = "X12 智能手机（128 GB） × 1" if language == "zh" else "X12 smartphone (128 GB) × 1"
    assert replies[:2] == [
        ("utter_order_status", {"order_number": SHIPPED_SF, "status": status, "items": item}),
        ("utter_order_tracking", {"order_number": SHIPPED_SF, "courier": courier, "tracking_number": "SF1402611200002"}),
    ]
    # the delivery time of the order's region (customer 1 lives in Shanghai), from the knowledge base
    assert replies[2] == ("utter_delivery_estimate", {"delivery_time": bot_actions.delivery_time("上海市", language)})
    assert ("上海" if language == "zh" else "Shanghai") in replies[2][1]["delivery_time"]
    assert [name for name, _ in replies[3:]] == ["utter_also_bought"]  # test_an_order_lookup_suggests_...
    assert slot_events(events) == {"order_number": SHIPPED_SF, "customer_id": str(demo._DEMO_ORDER_ROWS[SHIPPED_SF][0])}


def test_order_status_before_shipment_has_no_tracking(db_url):
    replies, _ = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": AWAITING_SHIPMENT}))
    assert replies[0] == (
        "utter_order_status", {"order_number": AWAITING_SHIPMENT, "status": "Awaiting shipment", "items": "Running shoes × 1"}
    )
    # never a tracking number
    assert [name for name, _ in replies[1:]] in (["utter_delivery_estimate"], ["utter_delivery_estimate", "utter_also_bought"])


def test_when_will_it_arrive_after_a_lookup_is_answered_about_that_order(recommender_ready):
    """"When will it arrive?" is ``order_status`` (bot/data/nlu): the action runs again on the slot,
    and the second time leaves out what the order's buyers also bought."""
    action = bot_actions.ActionOrderStatus()
    first, events = run(action, make_tracker({"order_number": SHIPPED_SF}))
    looked_up = [{"event": "action", "name": "action_order_status"}, *events]
    again, _ = run(action, make_tracker({"order_number": SHIPPED_SF}, events=looked_up, text="when will it arrive?"))
    assert [name for name, _ in first] == ["utter_order_status", "utter_order_tracking", "utter_delivery_estimate",
                                           "utter_also_bought"]
    assert again == first[:3]
    other, _ = run(action, make_tracker({"order_number": AWAITING_SHIPMENT}, events=looked_up))
    assert "utter_also_bought" in [name for name, _ in other]  # another order: its buyers' picks again


@pytest.mark.parametrize(
    "address, language, expected",
    [("北京市朝阳区建国路 88 号", "en", "Beijing"), ("Room 1502, 200 Nanjing West Road, Shanghai", "zh", "上海"),
     ("Flat 12B, 8 Harbour Road, Wan Chai, Hong Kong", "en", "Hong Kong"),  # "8" is a house number, not "8 yuan"
     ("四川省成都市武侯区", "zh", "成都"), ("350 5th Avenue, New York", "en", None), ("", "en", None)],
)
def test_the_delivery_time_of_an_address_is_its_region_s_knowledge_base_entry(address, language, expected):
    found = bot_actions.delivery_time(address, language)
    assert found == expected if expected is None else expected in found


def test_orders_that_arrived_or_were_cancelled_get_no_delivery_time(db_url):
    for order_no in (CANCELLED, "ES2610120001"):  # cancelled, completed
        replies, _ = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": order_no}))
        assert replies[0][0] == "utter_order_status" and "utter_delivery_estimate" not in [n for n, _ in replies]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize(
    "typed, expected",
    [("ES0000000001", ("utter_order_not_found", {"order_number": "ES0000000001"})),
     ("12345", ("utter_invalid_order_number", {}))],
)
def test_order_status_not_found_or_invalid(db_url, language, typed, expected):
    replies, events = run(bot_actions.ActionOrderStatus(), make_tracker({"language": language, "order_number": typed}))
    assert replies == [expected]
    assert slot_events(events) == {"order_number": None}


def test_order_status_asks_for_a_missing_number(db_url):
    assert run(bot_actions.ActionOrderStatus(), make_tracker())[0] == [("utter_ask_order_number", {})]


def test_a_lookup_says_how_the_order_s_refund_and_exchange_stand(recommender_ready):
    """"ES2611200002的退款到账了吗" had started a new refund (a new customer's try): the lookup
    shows the order's latest refund and exchange, or that there is none of the kind asked about,
    and suggests nothing to buy then."""
    action = bot_actions.ActionOrderStatus()
    asked = make_tracker({"language": "zh", "order_number": TWO_ITEMS_SHIPPED}, text=f"{TWO_ITEMS_SHIPPED}的退款到账了吗")
    replies, _ = run(action, asked)
    assert replies[-1] == ("utter_order_no_refund", {"order_number": TWO_ITEMS_SHIPPED})
    assert "utter_also_bought" not in [name for name, _ in replies]
    with db.session_scope(recommender_ready) as session:
        refund = service.submit_refund(session, TWO_ITEMS_SHIPPED, "鞋子开胶", "key-1")
        exchange = service.submit_exchange(session, TWO_ITEMS_SHIPPED, "CL-003", "43码", "key-2")
    assert refund.error is None and exchange.error is None
    today = datetime.utcnow().date().isoformat()
    replies, _ = run(action, asked)
    after_sales = [reply for reply in replies if reply[0] in ("utter_order_refund", "utter_order_exchange")]
    assert after_sales == [
        ("utter_order_refund", {"order_number": TWO_ITEMS_SHIPPED, "refund_id": "RF000001", "requested_on": today,
                                "status": "已提交，待审核"}),
        ("utter_order_exchange", {"order_number": TWO_ITEMS_SHIPPED, "exchange_id": "EX000001", "requested_on": today,
                                  "item": "跑步鞋", "status": "已提交，待审核"})]
    assert "utter_order_no_refund" not in [name for name, _ in replies]
    # an exchange asked about in English, none there: said so; a plain lookup suggests as before
    replies, _ = run(action, make_tracker({"order_number": SHIPPED_SF}, text="any news on my exchange?"))
    assert replies[-1] == ("utter_order_no_exchange", {"order_number": SHIPPED_SF})
    replies, _ = run(action, make_tracker({"order_number": SHIPPED_SF}, text="where is it?"))
    assert [name for name, _ in replies][-1] == "utter_also_bought"


@pytest.mark.parametrize("said, asked", [
    ("ES2611200002的退款到账了吗", ("refund",)), ("where is my refund?", ("refund",)), ("换货进度怎么样了", ("exchange",)),
    ("has my exchange been approved", ("exchange",)), ("到哪了", ()), ("", ()), (None, ()),
])
def test_the_requests_a_message_asks_about(said, asked):
    assert service.after_sales_asked(said) == asked


# --- refunds -----------------------------------------------------------------------


def refund_tracker(order_no: str, sender: str = "user-1", reason: str = "The screen is cracked") -> Tracker:
    return make_tracker({"order_number": order_no, "refund_reason": reason}, sender=sender)


def test_refund_is_written_once(db_url):
    action = bot_actions.ActionSubmitRefund()
    first, events = run(action, refund_tracker(SHIPPED_SF.lower()))
    again, _ = run(action, refund_tracker(SHIPPED_SF))
    other_conversation, _ = run(action, refund_tracker(SHIPPED_SF, sender="user-2"))
    assert first == [("utter_refund_submitted", {"order_number": SHIPPED_SF, "refund_id": "RF000001"})]
    assert again == other_conversation == [("utter_refund_duplicate", {"order_number": SHIPPED_SF, "refund_id": "RF000001"})]
    assert slot_events(events) == {"refund_reason": None, "refund_confirmed": None}
    assert count(db.Refund, db_url) == 1


def test_refund_not_confirmed_writes_nothing(db_url):
    db.init_db(db_url)
    tracker = make_tracker({"language": "zh", "order_number": SHIPPED_SF, "refund_reason": "屏幕碎了", "refund_confirmed": False})
    replies, events = run(bot_actions.ActionSubmitRefund(), tracker)
    assert replies == [("utter_refund_cancelled", {})]
    assert slot_events(events) == {"refund_reason": None, "refund_confirmed": None}
    assert count(db.Refund, db_url) == 0


def test_concurrent_refund_with_the_same_key_writes_nothing(db_url):
    """The race of two identical requests: the unique request key keeps the second out."""
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        made = service.submit_refund(session, SHIPPED_SF, "broken", "key-1")
    with db.session_scope(db_url) as session:
        late = db.Refund(order_no=SHIPPED_SF, reason="broken", request_key="key-1")
        winner = lambda: session.execute(select(db.Refund).where(db.Refund.request_key == "key-1")).scalar_one()
        row, inserted = service._insert_once(session, late, winner)
    assert (row.id, inserted) == (made.refund_id, False)
    assert count(db.Refund, db_url) == 1


@pytest.mark.parametrize(
    "order_no, language, status",
    [(AWAITING_PAYMENT, "en", "Awaiting payment"), (AWAITING_PAYMENT, "zh", "待付款"), (CANCELLED, "en", "Cancelled")],
)
def test_refund_refused_for_orders_that_have_not_shipped(db_url, order_no, language, status):
    tracker = make_tracker({"language": language, "order_number": order_no, "refund_reason": "changed my mind"})
    replies, _ = run(bot_actions.ActionSubmitRefund(), tracker)
    assert replies == [("utter_refund_not_allowed", {"order_number": order_no, "status": status})]
    assert count(db.Refund, db_url) == 0


REFUND_FORM_DOMAIN = {
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "from_text"}]},
              "refund_reason": {"type": "text", "mappings": [{"type": "from_text"}]},
              "refund_confirmed": {"type": "bool", "mappings": [{"type": "from_intent", "intent": "affirm", "value": True}]}},
    "forms": {"refund_form": {"required_slots": ["order_number", "refund_reason", "refund_confirmed"]}},
}


def validate(action, domain: Dict[str, Any], slots: Optional[Dict[str, Any]] = None, **candidates: Any):
    """Run a form's validation ``action`` on the ``candidates`` of this turn, the other ``slots`` already filled."""
    events = [{"event": "user", "text": "..."}] + [
        {"event": "slot", "name": name, "value": value} for name, value in candidates.items()
    ]
    return run(action, make_tracker({**(slots or {}), **candidates}, events=events), domain)


def validate_refund_form(**candidates: Any):
    return validate(bot_actions.ValidateRefundForm(), REFUND_FORM_DOMAIN, **candidates)


def test_refund_form_accepts_a_shipped_order_and_a_reason(db_url):
    replies, events = validate_refund_form(order_number=" es 2611200002 ", refund_reason="  wrong   size ")
    assert replies == []
    assert slot_events(events) == {"order_number": SHIPPED_SF, "refund_reason": "wrong size"}


@pytest.mark.parametrize(
    "candidates, reply",
    [({"order_number": AWAITING_PAYMENT},
      ("utter_refund_not_allowed", {"order_number": AWAITING_PAYMENT, "status": "Awaiting payment"})),
     ({"order_number": "ES9999999999"}, ("utter_order_not_found", {"order_number": "ES9999999999"})),
     ({"order_number": "abc"}, ("utter_invalid_order_number", {})),
     ({"refund_reason": "   "}, ("utter_invalid_refund_reason", {"max_length": service.REASON_MAX_CHARS})),
     ({"refund_reason": "x" * 201}, ("utter_invalid_refund_reason", {"max_length": service.REASON_MAX_CHARS}))],
)
def test_refund_form_rejects(db_url, candidates, reply):
    replies, events = validate_refund_form(**candidates)
    assert replies == [reply]
    assert slot_events(events) == {name: None for name in candidates}


@pytest.mark.parametrize("said, intent", [("ES2611200002", "inform"), ("我的订单号是 ES2611200002", "inform"),
                                          ("thanks!", "thank"), ("hi there", "greet"), ("yes", "affirm")])
@pytest.mark.parametrize("slot", ["refund_reason", "exchange_to"])
def test_an_order_number_or_thanks_is_no_reason_and_asked_again_silently(db_url, said, intent, slot):
    """After a lookup the form has the order and asks the reason: the customer who gives the
    number again, or says thanks, has not given one (both were stored as the reason)."""
    form = bot_actions.ValidateRefundForm if slot == "refund_reason" else bot_actions.ValidateExchangeForm
    domain = REFUND_FORM_DOMAIN if slot == "refund_reason" else EXCHANGE_FORM_DOMAIN
    events = [{"event": "user", "text": said}, {"event": "slot", "name": slot, "value": said}]
    tracker = make_tracker({slot: said}, events=events, text=said)
    tracker.latest_message["intent"] = {"name": intent, "confidence": 0.9}
    replies, events = run(form(), tracker, domain)
    assert replies == [] and slot_events(events) == {slot: None}


@pytest.mark.parametrize("said, reason", [
    ("原因是尺码小了", "尺码小了"), ("不对，原因是过敏了", "过敏了"), ("退款理由：不想要了", "不想要了"),
    ("no, wait, the reason is wrong: the left earcup is broken", "the left earcup is broken"),
    ("the reason is they broke", "they broke"), ("sorry, the strap broke", "the strap broke"),
    ("no sound from the left earbud", "no sound from the left earbud"), ("不是很合适", "不是很合适"),
    ("不知道什么原因坏了", "不知道什么原因坏了"), ("for no reason it stopped working", "for no reason it stopped working")])
def test_a_reason_is_stored_without_the_words_that_introduce_it(said, reason):
    assert service.clean_reason(said) == reason


@pytest.mark.parametrize("said, reason", [
    ("耳机降噪没什么效果，想退", "耳机降噪没什么效果"), ("我要退货，订单号ES2611210006，屏幕碎了", "屏幕碎了"),
    ("我要退款 不想要了", "不想要了"), ("我的订单是ES2611200002，想退货，质量太差了", "质量太差了"),
    ("I want to return order ES2611210006, the blender arrived cracked", "the blender arrived cracked"),
    ("pls refund es2611190007, they're not for me", "they're not for me"),
    ("sorry - I want to return the power bank I got last week, it doesn't hold charge", "it doesn't hold charge"),
    ("I want a refund because it's broken", "it's broken"), ("order ES2611200002: wrong colour. refund please", "wrong colour"),
    # only the request, an order number, thanks or a question: no reason given
    ("hi, i want to return my headphones, order ES2611190007", None), ("ES2611200002这单要退，钱原路退回就行", None),
    ("Refund request - order ES2611210006, thanks", None), ("ES2611200002 这单要退款，麻烦处理下", None),
    ("算了，还是退货吧", None), ("我想退货，运费谁出？", None), ("我想退货，怎么操作", None),
    ("I want to return it. is that possible?", None), ("退款", None), ("", None),
    ("帮忙退个款呗", None), ("帮我退一单", None), ("let me start over, refund for the same order", None),
    ("衣服洗了就退色，要退款", "衣服洗了就退色"),
    # a question beside the request, with its question word inside (a new customer's try: it was the reason)
    ("我要退款，还有我另一单ES2611210006到哪了", None), ("我要退款，另外那单什么时候到", None),
    ("refund ES2611200002, and where is my other order", None),
    ("质量怎么这么差，退款", "质量怎么这么差"), ("不知道为什么就坏了，要退", "不知道为什么就坏了"),
    # what the order holds, named before its number, is no reason (holdout set 30: "the science kit from")
    ("the science kit from ES2601112293, I'd like it refunded", None), ("瑜伽垫那单ES2508274223，想退", None),
    ("the lamp in ES2601112293, refund please", None)])
def test_the_reason_a_refund_request_gives_with_itself(said, reason):
    assert service.reason_in_request(said) == reason


@pytest.mark.parametrize("requested, intent, before, expected", [
    (None, "request_refund", None, {"refund_reason": "屏幕碎了"}),  # the form's start
    ("order_number", "request_refund", None, {}),  # later turns: the form's own questions
    (None, "inform", None, {}), (None, "request_refund", "有划痕", {})])
def test_the_refund_form_takes_the_reason_given_with_the_request(requested, intent, before, expected):
    """"I want to return order ES2611210006, the blender arrived cracked" was asked why (a new
    customer's try): the reason given with the request is taken, and confirmed with the rest."""
    said = "我要退货，订单号ES2611200002，屏幕碎了"
    tracker = make_tracker({"requested_slot": requested, "refund_reason": before}, text=said)
    tracker.latest_message["intent"] = {"name": intent, "confidence": 0.99}
    got = asyncio.run(bot_actions.ValidateRefundForm().extract_refund_reason(CollectingDispatcher(), tracker, {}))
    assert got == expected


@pytest.mark.parametrize("said, corrects", [
    ("不对 我说错了 是T恤要换 换成M码", True), ("不是这件", True), ("no wait, the reason is wrong", True),
    ("sorry I meant the other one", True), ("是的，提交吧", False), ("没错，换吧", False), ("yes, submit the exchange", False),
    # holdout set 26: a mix-up of the customer's own corrects; the shop's mix-up is a reason
    ("哦我弄混了，要换的是那件T恤", True), ("sorry, I got them mixed up", True), ("你们发货弄混了", False),
    ("you mixed up my order", False),
    # holdout set 28: "got it backwards" corrects
    ("搞反了，需要换的其实是T恤", True), ("sorry, it's the other way round", True),
    # holdout set 31: what was meant, confirmed, corrects nothing
    ("dark green, yes, that's the one I meant", False), ("yes, that's what I meant", False),
    # holdout set 34: what is held, confirmed as meant; "not" turns it round
    ("good, that's the band and colour I meant", False), ("that's not the colour I meant", True),
    ("it's ES2611210007 I meant", True)])
def test_a_correction_is_told_from_a_yes(said, corrects):
    assert service.corrects_itself(said) is corrects


def confirmation_tracker(slots: Dict[str, Any], said: str, intent: str, **candidates: Any) -> Tracker:
    """The turn of a form's confirmation: ``slots`` set before ``said``, this turn's ``candidates`` after it."""
    events = ([{"event": "slot", "name": name, "value": value} for name, value in slots.items()]
              + [{"event": "action", "name": "action_listen"}, {"event": "user", "text": said}]
              + [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()])
    tracker = make_tracker({**slots, **candidates}, events=events, text=said)
    tracker.latest_message["intent"] = {"name": intent, "confidence": 1.0}
    return tracker


REFUND_CONFIRMATION = {"language": "zh", "order_number": SHIPPED_SF, "refund_reason": "不喜欢",
                       "requested_slot": "refund_confirmed"}


@pytest.mark.parametrize("said, intent, expected", [
    ("是的", "affirm", {"refund_confirmed": True}),
    ("yes, submit the refund", "request_refund", {"refund_confirmed": True}),
    # read as the request (mapped to yes), yet it corrects: asked the reason again, nothing filed
    ("不对 我说错了 我要退款是因为过敏", "request_refund", {"refund_confirmed": None, "refund_reason": None})])
def test_a_correction_at_the_refund_confirmation_is_no_yes(db_url, said, intent, expected):
    tracker = confirmation_tracker(REFUND_CONFIRMATION, said, intent, refund_confirmed=True)
    replies, events = run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == expected


@pytest.mark.parametrize("said, intent, reason", [
    ("不对，原因是过敏了", "inform", "过敏了"),  # the new reason, to confirm
    ("ES2611200002", "inform", "不喜欢"),  # only the order number again: the reason given before stays
    ("   ", "inform", "不喜欢"),
    ("yes, but the reason is it leaks", "inform", "it leaks"),
    ("对，不过原因改成起红疹", "inform", "起红疹")])  # no plain yes: the new reason
def test_a_new_reason_at_the_refund_confirmation_replaces_the_old_one(db_url, said, intent, reason):
    tracker = confirmation_tracker(REFUND_CONFIRMATION, said, intent, refund_reason=said)
    _, events = run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN)
    assert slot_events(events) == {"refund_reason": reason}


@pytest.mark.parametrize("said, intent, candidates, reason", [
    # holdout set 33: read as nlu_fallback, which the domain's mapping does not take: the fallback answered
    # and the old reason was filed
    ("我写错了，原因是月饼皮已经发硬裂开了，冰袋化了倒无所谓", "nlu_fallback", {}, "月饼皮已经发硬裂开了,冰袋化了倒无所谓"),
    # read as a no (the repair policy's leading no): the new reason, to confirm, not nothing filed
    ("不对，原因是过敏了", "deny", {"refund_confirmed": False}, "过敏了"),
    ("sorry, wrong reason: the strap snapped", "complaint", {"refund_reason": "sorry, wrong reason: the strap snapped"},
     "the strap snapped")])
def test_a_corrected_reason_at_the_refund_confirmation_is_the_new_reason_however_read(db_url, said, intent,
                                                                                     candidates, reason):
    tracker = confirmation_tracker(REFUND_CONFIRMATION, said, intent, **candidates)
    replies, events = run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == {"refund_reason": reason, **(
        {"refund_confirmed": None} if "refund_confirmed" in candidates else {})}


@pytest.mark.parametrize("said, intent", [("不对，原因写错了", "deny"), ("我写错了，原因是什么来着？", "nlu_fallback"),
                                          ("no hang on, I put the wrong reason", "deny")])
def test_a_correction_that_gives_no_reason_changes_no_reason(db_url, said, intent):
    tracker = confirmation_tracker(REFUND_CONFIRMATION, said, intent)
    _, events = run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN)
    assert "refund_reason" not in slot_events(events)


@pytest.mark.parametrize("said", ["correct, the 50 ml bottle", "是的，就是那瓶50ml的"])
def test_a_yes_that_says_more_at_the_refund_confirmation_is_a_yes(db_url, said):
    """Holdout set 27: read as inform, it replaced the reason, and the confirmation was asked again."""
    tracker = confirmation_tracker(REFUND_CONFIRMATION, said, "inform", refund_reason=said)
    _, events = run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN)
    assert slot_events(events) == {"refund_reason": "不喜欢", "refund_confirmed": True}


@pytest.mark.parametrize("order_no, said, intent, expected", [
    (TWO_ITEMS_SHIPPED, "yes", "affirm", {"exchange_confirmed": True}),
    (TWO_ITEMS_SHIPPED, "yes, change it to Midnight black", "request_exchange", {"exchange_confirmed": True}),
    # the n37-53 conversation: the wrong item was filed
    (TWO_ITEMS_SHIPPED, "不对 我说错了 是另一件要换 换成M码", "request_exchange",
     {"exchange_confirmed": None, "exchange_to": None, "exchange_item": None}),
    (SHIPPED_SF, "no wait, wrong size, I meant 44", "request_exchange",  # one item: it stays
     {"exchange_confirmed": None, "exchange_to": None}),
    # holdout set 30: a correction that states the wish with its verb is that wish, to confirm (it was asked again)
    (TWO_ITEMS_SHIPPED, "刚才说错了，换大一码", "request_exchange", {"exchange_confirmed": None, "exchange_to": "大一码"}),
    (TWO_ITEMS_SHIPPED, "sorry, my mistake, change it to white", "request_exchange",
     {"exchange_confirmed": None, "exchange_to": "white"}),
    (TWO_ITEMS_SHIPPED, "好的 换成白色的", "request_exchange", {"exchange_confirmed": None, "exchange_to": "白色的"}),
    # a new size without 换成, read as the request (a conversation set): no yes to the old wish
    (TWO_ITEMS_SHIPPED, "那换大半码，41.5", "request_exchange", {"exchange_confirmed": None, "exchange_to": "大半码"}),
    # a letter size right after 换 (holdout set 1, once the item was taken): it had filed the old wish
    (TWO_ITEMS_SHIPPED, "换XL的", "request_exchange", {"exchange_confirmed": None, "exchange_to": "XL的"}),
    (TWO_ITEMS_SHIPPED, "swap them for a size 44 instead", "request_exchange",
     {"exchange_confirmed": None, "exchange_to": "a size 44"}),
    # holdout set 26: a correction that names the other item takes it, the wish stays (it was submitted)
    (TWO_ITEMS_SHIPPED, "哦我弄混了，要换的是那个充电宝", "request_exchange",
     {"exchange_confirmed": None, "exchange_item": "EL-003"}),
    (TWO_ITEMS_SHIPPED, "sorry I got them mixed up, it's the power bank, change it to white", "request_exchange",
     {"exchange_confirmed": None, "exchange_item": "EL-003", "exchange_to": "white"}),
    # holdout set 28: the other item named, read as the request, filed the item held
    (TWO_ITEMS_SHIPPED, "需要换的其实是充电宝", "request_exchange", {"exchange_confirmed": None, "exchange_item": "EL-003"}),
    (TWO_ITEMS_SHIPPED, "yes, exchange the running shoes", "request_exchange", {"exchange_confirmed": True})])
def test_a_correction_at_the_exchange_confirmation_is_no_yes(db_url, order_no, said, intent, expected):
    slots = {"language": "en", "order_number": order_no, "exchange_item": "CL-003", "exchange_to": "Midnight black",
             "requested_slot": "exchange_confirmed"}
    tracker = confirmation_tracker(slots, said, intent, exchange_confirmed=intent != "deny")
    replies, events = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == expected


@pytest.mark.parametrize("said, expected", [
    ("我弄混了，该换的是那个充电宝，跑步鞋不用换", {"exchange_confirmed": None, "exchange_item": "EL-003"}),
    ("跑步鞋不用换了", {"exchange_confirmed": False}),  # no correction: the no
    ("我弄混了，跑步鞋不用换", {"exchange_confirmed": False})])  # names no other item
def test_a_no_that_corrects_the_item_at_the_exchange_confirmation_is_that_item(db_url, said, expected):
    """Holdout set 33: "我弄混了，该换的是那本皮面笔记本，笔不用换" at the confirmation, read as stop,
    cancelled the exchange instead of taking the notebook."""
    slots = {"language": "zh", "order_number": TWO_ITEMS_SHIPPED, "exchange_item": "CL-003", "exchange_to": "大一码",
             "requested_slot": "exchange_confirmed"}
    tracker = confirmation_tracker(slots, said, "stop", exchange_confirmed=False)
    replies, events = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == expected


@pytest.mark.parametrize("said, expected", [
    ("行，按墨绿色那件给我换就好", {"exchange_confirmed": True}),  # the wish said again
    ("不对，是那个墨绿色的运动水壶要换", {"exchange_confirmed": None, "exchange_item": "SP-119"}),  # corrected
    ("要换的其实是运动水壶", {"exchange_confirmed": None, "exchange_item": "SP-119"})])  # named by its name
def test_a_confirmation_that_says_the_wish_again_keeps_the_item(db_url, said, expected):
    """Holdout set 32: the hoodie (米色) of ES2605090287 to be exchanged for "墨绿色的那件"; "行，按墨绿色那件给我换
    就好" at the confirmation named the order's other item, a 墨绿色 bottle, by the wish's colour, and the
    exchange was asked again for the bottle."""
    slots = {"language": "zh", "order_number": "ES2605090287", "exchange_item": "CL-131", "exchange_to": "墨绿色的那件",
             "requested_slot": "exchange_confirmed"}
    tracker = confirmation_tracker(slots, said, "request_exchange", exchange_confirmed=True)
    replies, events = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == expected


@pytest.mark.parametrize("said, intent, expected", [
    ("不要大一码了，换43", "deny", {"exchange_confirmed": None, "exchange_to": "43"}),
    ("no, make it a 44", "deny", {"exchange_confirmed": None, "exchange_to": "a 44"}),
    ("不换了", "deny", {"exchange_confirmed": False}), ("no wait, I meant navy, not grey", "deny", {"exchange_confirmed": False}),
    ("不要，换成Midnight black", "deny", {"exchange_confirmed": False})])  # the wish it has: a plain no
def test_a_no_with_another_wish_at_the_exchange_confirmation_is_that_wish(db_url, said, intent, expected):
    """An exploratory run (stop 46): "不要大一码了，换43" at the confirmation cancelled the exchange."""
    slots = {"language": "en", "order_number": TWO_ITEMS_SHIPPED, "exchange_item": "CL-003",
             "exchange_to": "Midnight black", "requested_slot": "exchange_confirmed"}
    tracker = confirmation_tracker(slots, said, intent, exchange_confirmed=False)
    replies, events = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and slot_events(events) == expected


@pytest.mark.parametrize("said", ["ES2611200002 屏幕有亮点", "it broke after 123456 km", "屏幕有亮点"])
def test_a_reason_that_names_the_order_is_still_a_reason(said):
    assert not service.only_an_order_number(said)


@pytest.mark.parametrize("form", [bot_actions.ValidateRefundForm, bot_actions.ValidateExchangeForm,
                                  bot_actions.ValidateAddressForm])
def test_an_incomplete_order_number_is_refused_and_asked_again(db_url, form):
    """Nothing the NLU extracts, yet the customer meant an order number: the form hears why it is
    none and empties the slot (a validated slot: the form asks again instead of rejecting)."""
    said = "uh it's ES261012 something, hang on"
    tracker = make_tracker({"requested_slot": "order_number"}, events=[{"event": "user", "text": said}], text=said)
    domain = {bot_actions.ValidateRefundForm: REFUND_FORM_DOMAIN, bot_actions.ValidateExchangeForm: EXCHANGE_FORM_DOMAIN,
              bot_actions.ValidateAddressForm: ADDRESS_FORM_DOMAIN}[form]
    replies, events = run(form(), tracker, domain)
    assert replies == [("utter_invalid_order_number", {})]
    assert slot_events(events) == {"order_number": None}


@pytest.mark.parametrize("slots, said", [({"requested_slot": "refund_reason"}, "it broke after 123456 km"),
                                         ({"requested_slot": "order_number"}, "I don't have it here")])
def test_no_order_number_attempt_leaves_the_form_to_reject(db_url, slots, said):
    tracker = make_tracker(slots, events=[{"event": "user", "text": said}], text=said)
    assert run(bot_actions.ValidateRefundForm(), tracker, REFUND_FORM_DOMAIN) == ([], [])


# --- exchanges ------------------------------------------------------------------------


def exchange_tracker(order_no: str, item: Optional[str] = "EL-002", sender: str = "user-1", **slots: Any) -> Tracker:
    return make_tracker(
        {"order_number": order_no, "exchange_item": item, "exchange_to": "Midnight black", **slots}, sender=sender
    )


def set_stock(url: str, sku: str, stock: int) -> None:
    with db.session_scope(url) as session:
        session.execute(select(db.Product).where(db.Product.sku == sku)).scalar_one().stock = stock


EXCHANGE_SLOTS_CLEARED = {"exchange_item": None, "exchange_to": None, "exchange_confirmed": None}


def test_exchange_is_written_once(db_url, caplog):
    action = bot_actions.ActionSubmitExchange()
    with caplog.at_level(logging.INFO):
        first, events = run(action, exchange_tracker(SHIPPED_SF.lower(), exchange_confirmed=True))
    again, _ = run(action, exchange_tracker(SHIPPED_SF))
    other_conversation, _ = run(action, exchange_tracker(SHIPPED_SF, sender="user-2"))
    reply = {"order_number": SHIPPED_SF, "item": "X12 smartphone (128 GB)", "exchange_id": "EX000001"}
    assert first == [("utter_exchange_submitted", reply)]
    assert again == other_conversation == [("utter_exchange_duplicate", reply)]
    assert slot_events(events) == EXCHANGE_SLOTS_CLEARED
    with db.session_scope(db_url) as session:
        rows = session.execute(select(db.Exchange)).scalars().all()
        assert [(r.order_no, r.sku, r.wanted, r.status) for r in rows] == [(SHIPPED_SF, "EL-002", "Midnight black", "requested")]
    assert "EL-002" in caplog.text and "Midnight" not in caplog.text  # the customer's words stay out of the logs

    # after the product sold out, or the exchange was closed, the request made stands: nothing new is written
    set_stock(db_url, "EL-002", 0)
    assert run(action, exchange_tracker(SHIPPED_SF))[0] == [("utter_exchange_duplicate", reply)]
    with db.session_scope(db_url) as session:
        session.execute(select(db.Exchange)).scalar_one().status = "sent"
    assert run(action, exchange_tracker(SHIPPED_SF))[0] == [("utter_exchange_duplicate", reply)]
    assert count(db.Exchange, db_url) == 1


def test_exchange_declined_writes_nothing(db_url):
    db.init_db(db_url)
    tracker = exchange_tracker(SHIPPED_SF, exchange_confirmed=False, language="zh")
    replies, events = run(bot_actions.ActionSubmitExchange(), tracker)
    assert replies == [("utter_exchange_cancelled", {})]
    assert slot_events(events) == EXCHANGE_SLOTS_CLEARED
    assert count(db.Exchange, db_url) == 0


@pytest.mark.parametrize("language, item", [("en", "X12 smartphone (128 GB)"), ("zh", "X12 智能手机（128 GB）")])
def test_exchange_out_of_stock_writes_nothing(db_url, language, item):
    db.init_db(db_url)
    set_stock(db_url, "EL-002", 0)
    replies, events = run(bot_actions.ActionSubmitExchange(), exchange_tracker(SHIPPED_SF, language=language))
    assert replies == [("utter_exchange_out_of_stock", {"item": item})]
    assert slot_events(events) == EXCHANGE_SLOTS_CLEARED
    assert count(db.Exchange, db_url) == 0


@pytest.mark.parametrize(
    "order_no, item, language, status",
    [(AWAITING_PAYMENT, "CL-002", "en", "Awaiting payment"), (AWAITING_SHIPMENT, "CL-003", "zh", "待发货"),
     (CANCELLED, "BT-003", "en", "Cancelled")],
)
def test_exchange_refused_for_orders_that_have_not_shipped(db_url, order_no, item, language, status):
    replies, _ = run(bot_actions.ActionSubmitExchange(), exchange_tracker(order_no, item, language=language))
    assert replies == [("utter_exchange_not_allowed", {"order_number": order_no, "status": status})]
    assert count(db.Exchange, db_url) == 0


@pytest.mark.parametrize("item", ["HM-001", None])
def test_exchange_of_an_item_not_in_the_order_is_refused(db_url, item):
    replies, _ = run(bot_actions.ActionSubmitExchange(), exchange_tracker(TWO_ITEMS_SHIPPED, item))
    assert replies == [("utter_exchange_item_not_found", {"order_number": TWO_ITEMS_SHIPPED})]
    assert count(db.Exchange, db_url) == 0


def test_exchange_of_an_unknown_order_asks_for_the_number_again(db_url):
    replies, events = run(bot_actions.ActionSubmitExchange(), exchange_tracker("ES0000000001"))
    assert replies == [("utter_order_not_found", {"order_number": "ES0000000001"})]
    assert slot_events(events) == {"order_number": None, **EXCHANGE_SLOTS_CLEARED}


def test_concurrent_exchange_with_the_same_key_writes_nothing(db_url):
    """The race of two identical requests: the unique request key keeps the second out."""
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        made = service.submit_exchange(session, SHIPPED_SF, "EL-002", "black", "key-1")
    with db.session_scope(db_url) as session:
        late = db.Exchange(order_no=SHIPPED_SF, sku="EL-002", wanted="black", request_key="key-1")
        winner = lambda: session.execute(select(db.Exchange).where(db.Exchange.request_key == "key-1")).scalar_one()
        row, inserted = service._insert_once(session, late, winner)
    assert (row.id, inserted) == (made.exchange_id, False)
    assert count(db.Exchange, db_url) == 1


def test_an_exchange_of_another_item_of_the_order_is_its_own(db_url):
    db.init_db(db_url)
    with db.session_scope(db_url) as session:
        shoes = service.submit_exchange(session, TWO_ITEMS_SHIPPED, "CL-003", "43", "key-1")
        power_bank = service.submit_exchange(session, TWO_ITEMS_SHIPPED, "EL-003", "white", "key-2")
        too_long = service.submit_exchange(session, SHIPPED_SF, "EL-002", "x" * 101, "key-3")
    assert not shoes.duplicate and not power_bank.duplicate and shoes.exchange_id != power_bank.exchange_id
    assert too_long.error == "invalid_wanted"
    assert count(db.Exchange, db_url) == 2


SHOES, POWER_BANK = (service.Item("CL-003", "Running shoes", "跑步鞋", 1, 100, "clothing"),
                     service.Item("EL-003", "10,000 mAh power bank", "10000 毫安充电宝", 1, 100, "electronics"))


@pytest.mark.parametrize(
    "said, expected",
    [("cl-003", SHOES), ("2", POWER_BANK), ("第1件", SHOES), ("#2", POWER_BANK), ("the shoe", SHOES),
     ("I mean the power bank", POWER_BANK), ("那双鞋", SHOES), ("充电宝", POWER_BANK), ("3", None),
     ("the blue one", None), ("", None), (None, None)],
)
def test_the_item_the_customer_means(said, expected):
    assert service.order_item((SHOES, POWER_BANK), said) == expected
    assert service.order_item((SHOES,), None) == SHOES  # the only item needs no naming


@pytest.mark.parametrize("said, item, wish", [
    ("那就换L码", SHOES, "L码"), ("43码", SHOES, "43码"), ("size 9 please", SHOES, "size 9"),
    ("I want a larger size", SHOES, None),  # the item, and the form asks which size
    ("跑步鞋换43码", SHOES, "43码"), ("the shoes", SHOES, None), ("第2件", POWER_BANK, None),
    ("换个黑色的", None, "黑色的"),  # a colour fits either item: kept while the item is asked again
    ("the blue one", None, None), ("白色", None, None),  # holdout 3: a bare colour names the item, no wish
    ("128GB", None, None),  # names an item by its storage, like a colour
    ("第3件", None, None), ("#3", None, None), ("", None, None),
])
def test_an_answer_to_which_item_may_say_the_wish_and_a_size_fits_only_clothing(said, item, wish):
    assert service.item_and_wish((SHOES, POWER_BANK), said) == (item, wish)


def test_a_size_names_no_item_when_the_order_has_two_that_come_in_sizes():
    shirt = service.Item("CL-001", "Cotton T-shirt", "纯棉 T 恤", 1, 100, "clothing")
    assert service.item_and_wish((SHOES, shirt), "L码") == (None, "L码")
    assert service.item_for_wish((SHOES, POWER_BANK), "黑色") is None  # a colour is no size


NAVY_SWEATER = service.Item("CL-107", "Wool sweater, navy", "羊毛衫 藏青色", 1, 100)


@pytest.mark.parametrize("said, names_it", [("驼色", False), ("换成驼色", False), ("杏色的", False),
                                             ("羊毛衫", True), ("那件羊毛衫", True), ("the sweater", True)])
def test_a_colour_is_a_wish_not_the_item_whose_name_ends_in_another_colour(said, names_it):
    assert service.only_names_an_item((NAVY_SWEATER,), said) is names_it
    assert service.only_names_an_item((NAVY_SWEATER, SHOES), said) is names_it


EXCHANGE_FORM_DOMAIN = {
    "slots": {**{name: {"type": "text", "mappings": [{"type": "from_text"}]}
                 for name in ("order_number", "exchange_item", "exchange_to")},
              "exchange_confirmed": {"type": "bool", "mappings": [{"type": "from_intent", "intent": "affirm", "value": True}]}},
    "forms": {"exchange_form": {"required_slots": ["order_number", "exchange_item", "exchange_to", "exchange_confirmed"]}},
}


def validate_exchange_form(slots: Optional[Dict[str, Any]] = None, **candidates: Any):
    return validate(bot_actions.ValidateExchangeForm(), EXCHANGE_FORM_DOMAIN, slots, **candidates)


def test_an_order_of_one_item_skips_the_item_question(db_url):
    replies, events = validate_exchange_form(order_number=" es 2611200002 ")
    assert replies == []
    assert slot_events(events) == {"order_number": SHIPPED_SF, "exchange_item": "EL-002"}


def test_an_order_of_several_items_asks_which(db_url):
    replies, events = validate_exchange_form(order_number=TWO_ITEMS_SHIPPED)
    assert replies == [] and slot_events(events) == {"order_number": TWO_ITEMS_SHIPPED, "exchange_item": None}
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED}, exchange_item="the running shoes")
    assert replies == [] and slot_events(events) == {"exchange_item": "CL-003"}
    # the question lists the items, numbered; the confirmation names the item
    asked, _ = run(bot_actions.ActionAskExchangeItem(), make_tracker({"order_number": TWO_ITEMS_SHIPPED, "language": "zh"}))
    assert asked == [("utter_ask_exchange_item",
                      {"order_number": TWO_ITEMS_SHIPPED, "items": "1. 跑步鞋 × 1\n2. 10000 毫安充电宝 × 1"})]
    confirm, _ = run(bot_actions.ActionAskExchangeConfirmed(), exchange_tracker(TWO_ITEMS_SHIPPED, "CL-003"))
    assert confirm == [("utter_ask_exchange_confirmed",
                        {"order_number": TWO_ITEMS_SHIPPED, "item": "Running shoes", "exchange_to": "Midnight black"})]


def test_a_size_said_instead_of_the_item_is_the_wish_of_the_one_item_with_sizes(db_url):
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED}, exchange_item="那就换L码")
    assert replies == [] and slot_events(events) == {"exchange_item": "CL-003", "exchange_to": "L码"}
    # a colour said with its verb fits either item: the item is asked again, the colour kept for the
    # confirmation; a bare colour ("the blue one") names the item by its colour and is not kept
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED}, exchange_item="换成白色的")
    assert [name for name, _ in replies] == ["utter_exchange_item_not_found"]
    assert slot_events(events) == {"exchange_item": None, "exchange_to": "白色的"}
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED}, exchange_item="the blue one")
    assert [name for name, _ in replies] == ["utter_exchange_item_not_found"]
    assert slot_events(events) == {"exchange_item": None}


@pytest.mark.parametrize("said, wanted", [
    ("换成黑色", "黑色"), ("我想换成42码", "42码"), ("换大一码", "大一码"), ("change it to black", "black"),
    ("swap them for a size 44", "a size 44"), ("size 43 please", "size 43 please"), ("换", "换"),
    ("黑色的换成白色", "黑色的换成白色"), ("Exchange for the blue one", "the blue one"), ("换成黑色的吧", "黑色的"),
    ("吧", "吧")])
def test_the_wish_is_stored_without_the_verb_that_asks_for_it(said, wanted):
    assert service.clean_wanted(said) == wanted


@pytest.mark.parametrize("said, wish", [
    ("ES2611210006的跑鞋小了，想换大一码", "大一码"), ("exchange order ES2611210006 for a size L", "a size L"),
    ("the pink mug in ES2505214087, can I trade it for grey?", "grey"),  # holdout set 30: "trade" was no wish's verb
    ("could I swap it for the black one instead?", "the black one"), ("swap it for size m please", "size m"),
    ("I'd like to exchange the shoes I got for my son's birthday for a 43", "a 43"),
    ("我想把ES2603157742的羊毛衫换成M码", "M码"), ("能换成42码吗？", "42码"), ("T恤小了 换L码", "L码"),
    ("我想换一双43的", "43的"), ("换货 ES2611210006 换成黑色的吧", "黑色的"),
    # a letter size or a colour right after 换 ("换XL的" at a confirmation had filed the old wish)
    ("换XL的", "XL的"), ("那就换M的吧", "M的"), ("换黑色的", "黑色的"), ("T恤换个XL", "XL"),
    ("I need to swap these to black, order ES2611210006", "black"),
    # the request alone, an order number, a question word or no size or colour: no wish given
    ("我要换货", None), ("我要换货，订单号ES2611210006", None), ("I want to exchange my shoes", None),
    ("exchange it", None), ("换成 订单ES2611210006", None), ("change it to what?", None),
    ("我想换成别的", None), ("", None), ("换ok吗", None), ("换货OK吗", None), ("换个人工客服", None),
    # the kind of wish without the wish: the form asks which (the conversation sets' requests)
    ("I'd like to exchange ES2611190007 for another colour", None), ("I want to swap something for a different size", None),
    ("can I swap it for a larger size?", None), ("exchange for ES2610120001 please", None),
    ("let's redo the exchange for that same order", None), ("i need to exchange the hoodie i bought for my son", None)])
def test_the_wish_an_exchange_request_gives_with_itself(said, wish):
    assert service.wish_in_request(said) == wish


@pytest.mark.parametrize("requested, intent, before, expected", [
    (None, "request_exchange", None, {"exchange_to": "a size L"}),  # the form's start
    ("order_number", "request_exchange", None, {}),  # later turns: the form's own questions
    (None, "inform", None, {}), (None, "request_exchange", "black", {})])
def test_the_exchange_form_takes_the_wish_given_with_the_request(requested, intent, before, expected):
    """"exchange order ES2611210006 for a size L" was asked which size (stop 40, left open): the
    wish given with the request is taken, and confirmed with the rest."""
    tracker = make_tracker({"requested_slot": requested, "exchange_to": before},
                           text="exchange order ES2611200002 for a size L")
    tracker.latest_message["intent"] = {"name": intent, "confidence": 0.99}
    got = asyncio.run(bot_actions.ValidateExchangeForm().extract_exchange_to(CollectingDispatcher(), tracker, {}))
    assert got == expected


@pytest.mark.parametrize("said, wish", [
    ("跑步鞋", None), ("the shoes", None), ("#1", None), ("第2件", None), ("1", None),
    ("the shoes, size 44", "the shoes, size 44"), ("43码", "43码"), ("42", "42"), ("black", "black")])
def test_only_the_item_again_is_no_wish(db_url, said, wish):
    """With the item taken from the request, customers who expected its question answered the
    wish's with it ("跑步鞋", then "换大一码 42的" at the confirmation filed "跑步鞋" as the wish)."""
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED, "exchange_item": "CL-003"},
                                             exchange_to=said)
    assert replies == [] and slot_events(events) == {"exchange_to": wish}


@pytest.mark.parametrize("said, intent, expected", [
    ("白色", "inform", {"exchange_to": "白色"}), ("43码", "inform", {"exchange_to": "43码"}),
    ("black please", "nlu_fallback", {"exchange_to": "black"}), ("size 44", "inform", {"exchange_to": "size 44"}),
    ("对", "affirm", {}), ("白色吗？", "faq", {}), ("ES2611210006", "inform", {}),
    ("不用了，我还是留着黑色的吧", "deny", {}), ("the postage, who pays it", "faq", {}),
    ("那换大半码，41.5", "inform", {"exchange_to": "大半码"}), ("好的 换成白色的", "request_exchange", {}),
    # an exploratory run (stop 46): the verb or a filler was kept, "黑的" was no colour, a question was a wish
    ("要43", "inform", {"exchange_to": "43"}), ("黑的", "inform", {"exchange_to": "黑的"}),
    ("换个黑的", "inform", {"exchange_to": "黑的"}), ("make it a 44", "inform", {"exchange_to": "a 44"}),
    ("actually make it size 45", "inform", {"exchange_to": "size 45"}),
    ("yes but in black", "inform", {"exchange_to": "black"}), ("can you do 44 instead?", "faq", {}),
    # holdout set 26: a yes that says the wish again is a yes ("好，就XL" to XL码), not a wish "好,就XL"
    ("好，就白色的", "inform", {}), ("好，红色", "inform", {"exchange_to": "红色"})])
def test_a_size_or_colour_alone_at_the_exchange_confirmation_is_the_wish(said, intent, expected):
    """"白色" to "换成“白色的”，确认提交吗？" and "43码" to "大一码" (the conversation sets, once the
    wish came from the request) got the fallback: the wish, to be confirmed again."""
    tracker = make_tracker({"requested_slot": "exchange_confirmed", "exchange_to": "白色的"}, text=said)
    tracker.latest_message["intent"] = {"name": intent, "confidence": 0.99}
    got = asyncio.run(bot_actions.ValidateExchangeForm().extract_exchange_to(CollectingDispatcher(), tracker, {}))
    assert got == expected


EXCHANGE_CONFIRMATION = {"language": "zh", "order_number": TWO_ITEMS_SHIPPED, "exchange_item": "CL-003",
                         "exchange_to": "大一码", "requested_slot": "exchange_confirmed"}


@pytest.mark.parametrize("said, intent, expected", [
    ("跑步鞋", "inform", {"exchange_item": "CL-003"}), ("T恤那个", "nlu_fallback", {}),
    ("充电宝那个", "inform", {"exchange_item": "EL-003"}), ("第2件", "inform", {"exchange_item": "EL-003"}), ("the shoes", "inform", {"exchange_item": "CL-003"}),
    ("跑步鞋，43码", "inform", {}), ("对", "affirm", {}), ("跑步鞋能退吗？", "faq", {}),
    ("can the shoes go back", "inform", {}),
    # holdout set 34: a yes that names the item held is the yes (the repair policy's), not the item again;
    # a yes that names the other item is that item
    ("对，跑步鞋这么换我满意", "nlu_fallback", {}), ("对，充电宝这么换", "nlu_fallback", {"exchange_item": "EL-003"})])
def test_an_item_alone_at_the_exchange_confirmation_is_the_item(db_url, said, intent, expected):
    """"跑步鞋" to "将订单 … 中的“跑步鞋”换成“大一码”，确认提交吗？" (the conversation sets, once the
    item came from the request) was rejected and got the knowledge base's passage on returning
    shoes: the item, said again or changed, to be confirmed again. Not a wish, a yes or a question;
    not an item the order does not have (its T-shirt is another order's)."""
    tracker = confirmation_tracker(EXCHANGE_CONFIRMATION, said, intent)
    replies, events = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and {k: v for k, v in slot_events(events).items() if k == "exchange_item"} == expected


@pytest.mark.parametrize("request_said, item", [
    ("I need to swap the shoes for a 43", "CL-003"), ("我想把ES2611210006的充电宝换成黑色的", "EL-003"),
    ("我要换第2件", "EL-003"), ("exchange order ES2611210006 for a size 43", None), ("我要换货", None)])
def test_an_order_of_several_items_takes_the_item_the_request_named(db_url, request_said, item):
    """"我想把ES2603157742的羊毛衫换成M码" was asked which item of the three: the item the request
    named is taken when the order is known (the confirmation shows it), else the form asks."""
    events = [{"event": "user", "text": request_said, "parse_data": {"intent": {"name": "request_exchange"}}},
              {"event": "user", "text": TWO_ITEMS_SHIPPED, "parse_data": {"intent": {"name": "inform"}}},
              {"event": "slot", "name": "order_number", "value": TWO_ITEMS_SHIPPED}]
    tracker = make_tracker({"order_number": TWO_ITEMS_SHIPPED}, events=events, text=TWO_ITEMS_SHIPPED)
    replies, got = run(bot_actions.ValidateExchangeForm(), tracker, EXCHANGE_FORM_DOMAIN)
    assert replies == [] and slot_events(got) == {"order_number": TWO_ITEMS_SHIPPED, "exchange_item": item}


@pytest.mark.parametrize(
    "slots, candidates, reply",
    [({}, {"order_number": AWAITING_SHIPMENT},
      ("utter_exchange_not_allowed", {"order_number": AWAITING_SHIPMENT, "status": "Awaiting shipment"})),
     ({}, {"order_number": "ES9999999999"}, ("utter_order_not_found", {"order_number": "ES9999999999"})),
     ({"order_number": TWO_ITEMS_SHIPPED}, {"exchange_item": "the lamp"},
      ("utter_exchange_item_not_found", {"order_number": TWO_ITEMS_SHIPPED})),
     ({}, {"exchange_to": "   "}, ("utter_invalid_exchange_to", {"max_length": service.WANTED_MAX_CHARS})),
     ({}, {"exchange_to": "x" * 101}, ("utter_invalid_exchange_to", {"max_length": service.WANTED_MAX_CHARS}))],
)
def test_exchange_form_rejects(db_url, slots, candidates, reply):
    replies, events = validate_exchange_form(slots, **candidates)
    assert replies == [reply]
    assert slot_events(events) == {name: None for name in candidates}


def test_exchange_form_refuses_an_item_out_of_stock(db_url):
    db.init_db(db_url)
    set_stock(db_url, "EL-002", 0)
    set_stock(db_url, "CL-003", 0)
    replies, events = validate_exchange_form(order_number=SHIPPED_SF)  # its only item
    assert replies == [("utter_exchange_out_of_stock", {"item": "X12 smartphone (128 GB)"})]
    assert slot_events(events) == {"order_number": None}
    replies, events = validate_exchange_form({"order_number": TWO_ITEMS_SHIPPED}, exchange_item="1")
    assert replies == [("utter_exchange_out_of_stock", {"item": "Running shoes"})]
    assert slot_events(events) == {"exchange_item": None}

NEW_ADDRESS = "上海市徐汇区漕溪北路 18 号 6 楼"


def address_tracker(order_no: str, address: str, sender: str = "user-1") -> Tracker:
    return make_tracker({"order_number": order_no, "new_address": address, "language": "zh"}, sender=sender)


def order_address(url: str, order_no: str) -> str:
    with db.session_scope(url) as session:
        return session.execute(select(db.Order.address).where(db.Order.order_no == order_no)).scalar_one()


def test_address_change_before_shipping(db_url, caplog):
    action = bot_actions.ActionChangeAddress()
    with caplog.at_level(logging.INFO):
        replies, events = run(action, address_tracker(AWAITING_SHIPMENT, f"  {NEW_ADDRESS} "))
        repeated, _ = run(action, address_tracker(AWAITING_SHIPMENT, NEW_ADDRESS))
    changed = ("utter_address_changed", {"order_number": AWAITING_SHIPMENT, "new_address": NEW_ADDRESS})
    assert replies == repeated == [changed]
    assert slot_events(events) == {"new_address": None}
    assert order_address(db_url, AWAITING_SHIPMENT) == NEW_ADDRESS
    assert count(db.AddressChange, db_url) == 1
    assert AWAITING_SHIPMENT in caplog.text and "漕溪北路" not in caplog.text  # addresses are masked in logs

    # the address can be changed once (bot/knowledge/shipping.yml)
    second, _ = run(action, address_tracker(AWAITING_SHIPMENT, "北京市海淀区中关村大街 1 号"))
    assert second == [("utter_address_already_changed", {"order_number": AWAITING_SHIPMENT})]
    assert order_address(db_url, AWAITING_SHIPMENT) == NEW_ADDRESS


def test_address_change_after_shipping_is_refused(db_url):
    replies, _ = run(bot_actions.ActionChangeAddress(), address_tracker(SHIPPED_SF, NEW_ADDRESS))
    assert replies == [("utter_address_already_shipped", {"order_number": SHIPPED_SF, "status": "已发货"})]
    assert order_address(db_url, SHIPPED_SF) != NEW_ADDRESS
    assert count(db.AddressChange, db_url) == 0


@pytest.mark.parametrize(
    "order_no, address, reply",
    [(AWAITING_PAYMENT, "短地址", ("utter_invalid_address", {"min_length": 6, "max_length": 200})),
     (AWAITING_PAYMENT, "x" * 201, ("utter_invalid_address", {"min_length": 6, "max_length": 200})),
     (CANCELLED, NEW_ADDRESS, ("utter_order_cancelled", {"order_number": CANCELLED}))],
)
def test_address_change_rejects(db_url, order_no, address, reply):
    replies, _ = run(bot_actions.ActionChangeAddress(), address_tracker(order_no, address))
    assert replies == [reply]
    assert count(db.AddressChange, db_url) == 0


ADDRESS_FORM_DOMAIN = {
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "from_text"}]},
              "new_address": {"type": "text", "mappings": [{"type": "from_text"}]}},
    "forms": {"address_form": {"required_slots": ["order_number", "new_address"]}},
}


def validate_address_form(**candidates: Any):
    return validate(bot_actions.ValidateAddressForm(), ADDRESS_FORM_DOMAIN, **candidates)


def test_address_form_accepts_an_order_before_shipping_and_an_address(db_url):
    replies, events = validate_address_form(order_number=" es 2611240003 ", new_address=f"  {NEW_ADDRESS} ")
    assert replies == []
    assert slot_events(events) == {"order_number": AWAITING_SHIPMENT, "new_address": NEW_ADDRESS}
    assert count(db.AddressChange, db_url) == 0  # validation writes nothing: action_change_address does


@pytest.mark.parametrize(
    "candidates, reply",
    [({"order_number": SHIPPED_SF}, ("utter_address_already_shipped", {"order_number": SHIPPED_SF, "status": "Shipped"})),
     ({"order_number": CANCELLED}, ("utter_order_cancelled", {"order_number": CANCELLED})),
     ({"order_number": "ES9999999999"}, ("utter_order_not_found", {"order_number": "ES9999999999"})),
     ({"order_number": "abc"}, ("utter_invalid_order_number", {})),
     ({"new_address": "短地址"}, ("utter_invalid_address", {"min_length": 6, "max_length": 200}))],
)
def test_address_form_refuses_before_the_address_is_asked(db_url, candidates, reply):
    """A shipped or cancelled order is refused when its number is given, not after the address."""
    replies, events = validate_address_form(**candidates)
    assert replies == [reply]
    assert slot_events(events) == {name: None for name in candidates}


# --- recommendations ------------------------------------------------------------------


def bought(url: str, customer_id: int, durable: bool) -> set:
    with db.session_scope(url) as session:
        rows = session.execute(
            select(db.Product.sku).join(db.OrderItem).join(db.Order).where(
                db.Order.customer_id == customer_id, db.Order.status != "cancelled", db.Product.durable == durable
            )
        )
        return set(rows.scalars())


def products_of(reply_variables: Dict[str, str]) -> List[str]:
    return reply_variables["products"].splitlines()


def without_context(events) -> Dict[str, Any]:
    """The slots an action_recommend set, besides the request it keeps for a follow-up."""
    slots = slot_events(events)
    assert "recommend_context" in slots
    return {k: v for k, v in slots.items() if k != "recommend_context"}


def prices_of(reply_variables: Dict[str, str]) -> List[int]:
    return [int(re.search(r"¥([\d,]+)", line).group(1).replace(",", "")) for line in products_of(reply_variables)]


def after_recommendations(slots: Dict[str, Any], text: str) -> Tracker:
    """The tracker of a message that answers the bot's recommendations (action_recommend ran last)."""
    events = [{"event": "user", "text": "…"}, {"event": "action", "name": "action_recommend"},
              {"event": "action", "name": "action_listen"}, {"event": "user", "text": text}]
    return make_tracker(slots, events=events, text=text)


@pytest.mark.parametrize("first, cheaper", [("送妈妈的生日礼物，预算500以内", "有没有更便宜一点的"),
                                            ("a birthday gift for my mom, under 500", "anything cheaper?")])
def test_anything_cheaper_keeps_the_recipient_and_asks_less_than_shown(db_url, first, cheaper):
    replies, events = run(bot_actions.ActionRecommend(), make_tracker({}, text=first))
    shown = prices_of(replies[0][1])
    context = slot_events(events)["recommend_context"]
    assert max(shown) <= 500 and context["shown"] == shown and context["request"]["price"]["high"] == 500
    later, later_events = run(bot_actions.ActionRecommend(), after_recommendations({"recommend_context": context},
                                                                                   cheaper))
    assert [name for name, _ in later] in (["utter_recommendations"], ["utter_no_recommendations"])
    request = slot_events(later_events)["recommend_context"]["request"]
    assert request["wants"]["recipients"] == context["request"]["wants"]["recipients"]
    assert request["price"]["high"] < min(shown)
    if later[0][0] == "utter_recommendations":
        assert all(price < min(shown) for price in prices_of(later[0][1]))
    # the same words long after the recommendations (another action ran since) are a request of their own
    unrelated = make_tracker({"recommend_context": context}, text=cheaper, events=[
        {"event": "action", "name": "action_recommend"}, {"event": "user", "text": "x"},
        {"event": "action", "name": "action_order_status"}, {"event": "user", "text": cheaper}])
    _, fresh_events = run(bot_actions.ActionRecommend(), unrelated)
    fresh = slot_events(fresh_events)["recommend_context"]["request"]
    assert fresh is None or not fresh["wants"].get("recipients")


@pytest.mark.parametrize("first, others", [("推荐个送爸爸的礼物 500以内", "换一批"),
                                           ("a gift for my dad under 500", "something else?")])
def test_another_batch_shows_other_items_for_the_same_request(db_url, first, others):
    """The new-customer run of stop 37: "换一批" after recommendations started the exchange form
    (NLU data), and the action had no way to leave out what it had shown."""
    replies, events = run(bot_actions.ActionRecommend(), make_tracker({}, text=first))
    context = slot_events(events)["recommend_context"]
    first_shown = products_of(replies[0][1])
    assert len(context["shown_ids"]) == len(first_shown) == 3
    later, later_events = run(bot_actions.ActionRecommend(), after_recommendations({"recommend_context": context}, others))
    assert [name for name, _ in later] == ["utter_recommendations"]
    assert not set(products_of(later[0][1])) & set(first_shown)  # none shown again
    assert all(price <= 500 for price in prices_of(later[0][1]))  # the same budget and recipient
    later_context = slot_events(later_events)["recommend_context"]
    assert later_context["request"]["wants"]["recipients"] == context["request"]["wants"]["recipients"]
    assert later_context["shown_ids"][:3] == context["shown_ids"] and len(later_context["shown_ids"]) == 6


@pytest.mark.parametrize("first, question, language", [("推荐一款适合跑步的耳机", "第二个多少钱？", "zh"),
                                                      ("running headphones please", "how much is the second one?", "en")])
def test_a_question_about_an_item_shown_is_answered_from_its_record(db_url, first, question, language):
    """The new-customer run of stop 48: "这个多少钱？" / "第一个多少钱" right after recommendations got
    "no information", and the new-customer coupon passage."""
    replies, events = run(bot_actions.ActionRecommend(), make_tracker({"language": language}, text=first))
    context = slot_events(events)["recommend_context"]
    second = products_of(replies[0][1])[1]
    later, later_events = run(bot_actions.ActionRecommend(),
                              after_recommendations({"recommend_context": context, "language": language}, question))
    assert [name for name, _ in later] == ["utter_shown_items"] and later_events == []  # the context kept
    details = later[0][1]["details"]
    name = second[2:].split("（" if language == "zh" else " (")[0]
    price = re.search(r"¥[\d,]+", second).group(0)
    assert details.startswith(name) and price in details and ("有货" in details or "in stock" in details)
    # all of them for "this", and a question about a fourth of three
    everything, _ = run(bot_actions.ActionRecommend(), after_recommendations({"recommend_context": context}, "多少钱"))
    assert len(everything[0][1]["details"].splitlines()) == 3
    fourth, _ = run(bot_actions.ActionRecommend(), after_recommendations({"recommend_context": context}, "第四个呢"))
    assert fourth == [("utter_which_shown_item", {"count": 3})]


def test_a_broken_recommendation_context_is_ignored(db_url, caplog):
    tracker = after_recommendations({"recommend_context": {"request": {"text": 5}, "shown": ["x"]}}, "a gift under 300")
    replies, _ = run(bot_actions.ActionRecommend(), tracker)
    assert [name for name, _ in replies] == ["utter_recommendations"] and "is not a recommendation" in caplog.text


def test_the_gift_for_father_within_the_budget(db_url):
    tracker = make_tracker({"language": "zh"}, text="有什么适合送给爸爸的礼物推荐吗？预算500左右")
    replies, events = run(bot_actions.ActionRecommend(), tracker)
    assert [name for name, _ in replies] == ["utter_recommendations"] and without_context(events) == {}
    lines = products_of(replies[0][1])
    assert len(lines) == 3
    for line in lines:  # "- 名称（适合父母，¥459，接近您的预算）"
        price = int(re.search(r"¥([\d,]+)", line).group(1).replace(",", ""))
        assert 300 <= price <= 600 and "接近您的预算" in line and ("适合" in line), line


def test_a_vague_request_gets_one_question_then_suggestions(db_url):
    replies, events = run(bot_actions.ActionRecommend(), make_tracker({"language": "zh"}, text="推荐点东西"))
    assert replies == [("utter_ask_recommendation_details", {})] and without_context(events) == {"recommend_asked": True}
    replies, events = run(bot_actions.ActionRecommend(),
                          make_tracker({"language": "zh", "recommend_asked": True}, text="推荐点东西"))
    assert [name for name, _ in replies] == ["utter_top_sellers"] and len(products_of(replies[0][1])) == 3


def test_a_known_customer_gets_no_durable_item_they_own(db_url):
    customer = 1001
    replies, _ = run(bot_actions.ActionRecommend(), make_tracker({"customer_id": str(customer)}, text="any ideas?"))
    assert [name for name, _ in replies] == ["utter_recommendations"]
    with db.session_scope(db_url) as session:
        names = {p.name_en: p.sku for p in session.execute(select(db.Product)).scalars()}
    offered = {names[line[2:].rsplit(" (", 1)[0]] for line in products_of(replies[0][1])}
    assert offered and not offered & bought(db_url, customer, durable=True)


def test_a_stated_category_is_remembered(db_url):
    tracker = make_tracker({"language": "en"}, entities=(("preference", "beauty"),), text="I like beauty products")
    replies, events = run(bot_actions.ActionRecommend(), tracker)
    assert without_context(events) == {"preference": "beauty"}
    later, _ = run(bot_actions.ActionRecommend(), make_tracker({"preference": "beauty"}, text="what would you suggest?"))
    with db.session_scope(db_url) as session:
        beauty = {p.name_en for p in session.execute(select(db.Product).where(db.Product.category == "beauty")).scalars()}
    assert all(line[2:].rsplit(" (", 1)[0] in beauty for line in products_of(later[0][1]))


def test_nothing_within_the_budget(db_url):
    replies, events = run(bot_actions.ActionRecommend(), make_tracker({}, text="a gift for my dad under 5 yuan"))
    assert replies == [("utter_no_recommendations", {})] and without_context(events) == {}


def test_an_order_lookup_suggests_what_its_buyers_also_bought(recommender_ready):
    replies, _ = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": SHIPPED_SF}))
    assert [name for name, _ in replies] == ["utter_order_status", "utter_order_tracking", "utter_delivery_estimate",
                                             "utter_also_bought"]
    lines = products_of(replies[3][1])
    # bought in the same orders as the X12 phone: its companions (shop.catalogue.COMPANIONS), not another phone
    assert 1 <= len(lines) <= 2 and all("often bought with the X12 smartphone" in line for line in lines)
    assert not any("phone (" in line.split(" (")[0] for line in lines)


@pytest.mark.parametrize("sentiment, frustration", [("negative", None), (None, 0.6), ("negative", 0.0)])
def test_no_sales_pitch_to_an_unhappy_customer(recommender_ready, sentiment, frustration):
    tracker = make_tracker({"order_number": SHIPPED_SF, "frustration": frustration}, text="where is my order?!")
    if sentiment:
        tracker.latest_message["sentiment"] = {"label": sentiment, "confidence": 0.9}
    replies, _ = run(bot_actions.ActionOrderStatus(), tracker)
    assert [name for name, _ in replies] == ["utter_order_status", "utter_order_tracking", "utter_delivery_estimate"]
    calm = make_tracker({"order_number": SHIPPED_SF, "frustration": 0.2}, text="where is my order?")
    calm.latest_message["sentiment"] = {"label": "neutral", "confidence": 0.9}
    assert "utter_also_bought" in [name for name, _ in run(bot_actions.ActionOrderStatus(), calm)[0]]


def test_an_order_lookup_does_not_wait_for_the_recommender(db_url, monkeypatch):
    started = []
    monkeypatch.setattr(bot_actions, "_build_recommender", lambda url: started.append(url))  # never ready
    replies, _ = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": SHIPPED_SF}))
    assert [name for name, _ in replies] == ["utter_order_status", "utter_order_tracking", "utter_delivery_estimate"]
    assert started == [db_url]


def test_a_recommender_that_cannot_be_built_leaves_the_order_answer_and_is_tried_again(db_url, monkeypatch):
    monkeypatch.setattr(bot_actions, "RECOMMEND_CONFIG", Path(db_url[10:]).parent / "missing.yml")
    replies, _ = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": SHIPPED_SF}))
    assert [name for name, _ in replies][:2] == ["utter_order_status", "utter_order_tracking"]
    with pytest.raises(ValueError, match="missing.yml could not be read"):  # the file named
        bot_actions.shop_recommender()


# --- errors and handoff ----------------------------------------------------------------


def test_database_that_cannot_be_opened_gives_database_error(tmp_path, monkeypatch):
    monkeypatch.setenv(db.DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'missing' / 'shop.db'}")
    replies, events = run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": SHIPPED_SF}))
    assert (replies, events) == ([("utter_database_error", {})], [])
    replies, events = validate_refund_form(order_number=SHIPPED_SF)
    assert replies == [("utter_database_error", {})] and slot_events(events) == {"order_number": None}
    db.dispose_engines()


def test_dropped_table_gives_database_error(db_url):
    assert run(bot_actions.ActionOrderStatus(), make_tracker({"order_number": SHIPPED_SF}))[0][0][0] == "utter_order_status"
    with db.get_engine(db_url).begin() as connection:
        connection.execute(text("DROP TABLE refunds"))
    replies, events = run(bot_actions.ActionSubmitRefund(), refund_tracker(SHIPPED_SF))
    assert (replies, events) == ([("utter_database_error", {})], [])


def test_handoff(db_url):
    replies, events = run(bot_actions.ActionHandoff(), make_tracker({"order_number": SHIPPED_SF}))
    assert replies == [("utter_handoff", {})]
    assert slot_events(events) == {"handoff": True}


def test_a_handoff_in_a_form_closes_it(db_url):
    """The agent takes over: the form must not go on asking for its confirmation."""
    tracker = make_tracker({"order_number": SHIPPED_SF, "requested_slot": "refund_confirmed"})
    tracker.active_loop = {"name": "refund_form"}
    replies, events = run(bot_actions.ActionHandoff(), tracker)
    assert replies == [("utter_handoff", {})]
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")} for e in events]
    assert slot_events(events) == {"handoff": True, "requested_slot": None}


def test_the_action_server_needs_rasa_sdk_the_shop_and_the_recommender_only():
    """The actions, as rasa_sdk imports them from bot/, load the plugin's recommender and its
    knowledge base with BM25 (delivery times), and nothing of Rasa, torch or transformers."""
    heavy = ("rasa", "torch", "tensorflow", "transformers")
    code = ("import sys, threading, actions.actions; "
            "[t.join() for t in threading.enumerate() if t.name == 'delivery-times']; "  # it reads YAML
            f"print(sorted(set(m.split('.')[0] for m in sys.modules) & set({heavy!r})), "
            "sorted({m.split('.')[1] for m in sys.modules if m.startswith('rasa_gpt_components.')}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=BOT_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[] ['knowledge', 'lazy', 'models', 'recommend', 'text', 'yaml_files']"


def test_the_action_server_registers_every_custom_action_of_the_domain():
    """As ``rasa run actions`` does: rasa_sdk instantiates every concrete Action subclass of the
    package (a shared base class must stay abstract) and must find each action the domain names."""
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    domain = yaml.safe_load((BOT_DIR / "domain.yml").read_text(encoding="utf-8"))
    assert set(domain["actions"]) <= set(executor.actions)


def test_every_response_the_actions_send_is_in_the_domain_in_both_languages():
    source = Path(bot_actions.__file__).read_text(encoding="utf-8")
    sent = set(re.findall(r'"(utter_\w+)"', source))
    assert len(sent) >= 20 and not sent - set(RESPONSES)
    for name in sent:
        conditions = [variation.get("condition") for variation in RESPONSES[name]]
        assert conditions == [[{"type": "slot", "name": "language", "value": "en"}], None], name
        english, chinese = (set(re.findall(r"{(\w+)}", variation["text"])) for variation in RESPONSES[name])
        assert english == chinese == response_variables(name), name


@pytest.mark.parametrize("argv, served", [
    (["/venv/bin/rasa", "run", "actions", "--port", "5055"], True),
    (["/venv/lib/python3.11/site-packages/rasa_sdk/__main__.py", "--actions", "actions"], True),
    (["/venv/bin/pytest", "-q"], False),
    (["/venv/bin/rasa", "run", "--enable-api"], False),
])
def test_the_recommender_is_built_at_start_only_by_the_action_server(monkeypatch, argv, served):
    monkeypatch.setattr(sys, "argv", argv)
    assert bot_actions._loaded_by_the_action_server() is served
