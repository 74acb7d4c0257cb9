"""FollowUpPolicy on Rasa trackers: a message that builds on the bot's last action
("换一批" after recommendations, "when will it arrive?" after a lookup) runs that
action again, whatever the NLU read it as; anything else is left to the other policies."""

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.policies.follow_up import FollowUpPolicy
from rasa_gpt_components.recommend.request import ShownQuestion, asks_about_shown, refines
from rasa_gpt_components.text import elliptical_question

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [recommend_product, request_exchange, faq, order_status, human_handoff, greet, out_of_scope]
actions: [action_recommend, action_order_status]
forms:
  exchange_form:
    required_slots: []
responses:
  utter_greet: [{text: "Hi!"}]
  utter_knowledge_answer: [{text: "Let me find that out."}]
"""
)
FOLLOW_UPS = {"action_recommend": {"reader": "recommendation"},
              "action_order_status": {"patterns": ["多久.{0,6}到", r"\bwhen will it arrive\b"]},
              "utter_knowledge_answer": {"reader": "elliptical_question"}}


@pytest.fixture
def policy(tmp_path):
    def build(**config):
        settings = {**FollowUpPolicy.get_default_config(), "follow_ups": FOLLOW_UPS, **config}
        return FollowUpPolicy.create(settings, LocalModelStorage(tmp_path), Resource("follow_up"),
                                     ExecutionContext(GraphSchema({}), "test"))
    return build


def after(action, text, intent, earlier=()):
    """The bot ran ``action`` for a first message, then the customer says ``text``."""
    return [*earlier, ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered("recommend me something", intent={"name": "recommend_product", "confidence": 0.9}),
            ActionExecuted(action), ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered(text, intent={"name": intent, "confidence": 0.8})]


def predict(policy, events):
    tracker = DialogueStateTracker.from_events("u", events, slots=DOMAIN.slots)
    prediction = policy.predict_action_probabilities(tracker, DOMAIN)
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    return DOMAIN.action_names_or_texts[best] if prediction.probabilities[best] > 0 else None


@pytest.mark.parametrize("action, text, intent", [
    ("action_recommend", "换一批", "request_exchange"),
    ("action_recommend", "还有更便宜点的吗", "faq"),
    ("action_recommend", "under 1000 yuan", "faq"),
    ("action_recommend", "这个多少钱？", "faq"),  # a question about the items shown
    ("action_recommend", "is the second one in stock?", "order_status"),
    ("action_order_status", "大概还要多久才能到手？", "faq"),
    ("action_order_status", "ok, when will it arrive?", "faq"),
    # the same question of somewhere else, whatever the NLU read it as (holdout sets 12 and 13)
    ("utter_knowledge_answer", "那武汉呢？", "greet"),
    ("utter_knowledge_answer", "那西安呢", "out_of_scope"),
    ("utter_knowledge_answer", "and to Macau?", "faq"),
])
def test_a_follow_up_runs_the_last_action_again_then_listens(policy, action, text, intent):
    events = after(action, text, intent)
    assert predict(policy(), events) == action
    ran = events + [ActionExecuted(action, policy="FollowUpPolicy", confidence=1.0)]
    assert predict(policy(), ran) == ACTION_LISTEN_NAME


@pytest.mark.parametrize("events", [
    after("action_recommend", "我想换货", "request_exchange"),  # a request of its own
    after("action_recommend", "我还有其他问题", "faq"),  # another matter, not other items
    after("action_order_status", "换一批", "request_exchange"),  # the reader of another action
    after("action_recommend", "换一批", "human_handoff"),  # an intent that is never a follow-up
    after("utter_greet", "换一批", "request_exchange"),
    # a follow-up only of the turn just before
    after("utter_greet", "换一批", "request_exchange", earlier=after("action_recommend", "thanks", "greet")),
    # inside a form, the form and the repair policy decide
    after("action_recommend", "换一批", "request_exchange", earlier=[ActiveLoop("exchange_form")]),
    after("utter_knowledge_answer", "那我的订单呢", "order_status"),  # not a question of somewhere else
    after("utter_greet", "那西安呢", "out_of_scope"),  # no question before it
])
def test_other_messages_are_left_to_the_other_policies(policy, events):
    assert predict(policy(not_intents=["human_handoff"]), events) is None
    ran = events + [ActionExecuted("action_recommend")]  # after another policy's action: no opinion
    assert predict(policy(not_intents=["human_handoff"]), ran) is None


@pytest.mark.parametrize("follow_ups, message", [
    ({"action_recommend": {"reader": "nonsense"}}, "reader"),
    ({"action_recommend": {"patterns": ["("]}}, "regular expression"),
    ({"action_recommend": ["换一批"]}, "reader"),
])
def test_a_wrong_configuration_is_a_clear_error(policy, follow_ups, message):
    with pytest.raises(RasaException, match=message):
        policy(follow_ups=follow_ups)


def test_training_checks_the_actions_are_in_the_domain(policy):
    with pytest.raises(RasaException, match="action_lookup"):
        policy(follow_ups={"action_lookup": {"reader": "recommendation"}}).train([], DOMAIN)
    policy().train([], DOMAIN)  # every action known


@pytest.mark.parametrize("text, refining", [
    ("换一批", True), ("还有别的吗", True), ("有便宜点的吗？", True), ("any cheaper ones?", True),
    ("something pricier", True), ("预算300左右", True), ("under 1000 yuan", True),
    ("我还有其他问题", False), ("one other question", False), ("我想换货", False), ("谢谢", False),
    ("where is ES2611210006", False),
    # found by a review: no more items, and other matters of the shop
    ("没有其他的了", False), ("别的不用了，谢谢", False), ("I don't need anything else", False),
    ("I want to exchange another item", False), ("the other order hasn't arrived", False),
    ("Is there another way to pay?", False), ("有别的付款方式吗", False), ("为什么这么便宜，是正品吗", False),
    ("超过99包邮吗", False), ("is there a premium membership", False),
])
def test_refines_reads_a_request_to_change_the_recommendations(text, refining):
    assert refines(text) is refining


@pytest.mark.parametrize("text, position", [
    ("这个多少钱？", None), ("多少钱", None), ("how much are these?", None), ("is it any good?", None),
    ("第一个多少钱", 0), ("第二款怎么样", 1), ("那第二个呢", 1), ("最后一个有货吗", -1), ("请问第三款具体多少钱", 2),
    ("how much is the second one?", 1), ("is the first one still in stock?", 0), ("and the third one?", 2),
    ("tell me more about the last one", -1), ("#2", 1),
])
def test_a_question_about_the_items_shown_says_which(text, position):
    assert asks_about_shown(text) == ShownQuestion(position)


@pytest.mark.parametrize("text", [
    # other matters of the shop, things of their own, changes to the recommendations, no question
    "运费多少钱", "how much is shipping?", "礼品卡多少钱", "How much is the gift card?", "耳机多少钱",
    "这个能退吗", "第一个能送到北京吗", "the 2nd one, is it available in black?", "the first time I ordered",
    "有便宜点的吗", "换一批", "谢谢", "ok thanks",
])
def test_other_messages_ask_nothing_about_the_items_shown(text):
    assert asks_about_shown(text) is None


def test_a_question_picks_the_items_it_asks_about():
    shown = ("a", "b", "c")
    assert ShownQuestion(None).pick(shown) == shown and ShownQuestion(1).pick(shown) == ("b",)
    assert ShownQuestion(-1).pick(shown) == ("c",) and ShownQuestion(4).pick(shown) == ()


@pytest.mark.parametrize("text, elliptical", [
    ("那西安呢", True), ("那武汉呢？", True), ("广东呢", True), ("那要是寄到成都呢", True), ("那天气呢", True),
    ("and to Chengdu?", True), ("what about Hong Kong, same deal?", True), ("and the power bank?", True),
    ("how about Shenzhen?", True), ("what about small appliances like a kettle?", True),
    # the customer's own things, an order number, a request, something pointed back at, a question of its own
    ("那我的订单呢", False), ("what about my refund?", False), ("and ES2611240003?", False),
    ("那退货呢", False), ("那换货呢", False), ("what about a refund?", False), ("那人工呢", False),
    ("那这个呢", False), ("那个呢", False), ("and that one?", False), ("那怎么办呢", False),
    ("and how long does that take roughly?", False), ("and is there a student discount?", False),
    ("那乌鲁木齐呢？要不要加运费？", False), ("那就T恤吧", False), ("and?", False), ("呢", False),
])
def test_elliptical_question_reads_the_same_question_of_something_else(text, elliptical):
    assert elliptical_question(text) is elliptical
