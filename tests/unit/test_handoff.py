"""The hand-off: the summary from a real Rasa tracker, its formats, the signature,
and delivery over real HTTP to a stand-in desk on 127.0.0.1 (up, failing, down)."""

import json

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.handoff.conversation import offering_responses, read_conversation
from rasa_gpt_components.handoff.desk import HandoffDesk
from rasa_gpt_components.handoff.settings import HandoffSettings
from rasa_gpt_components.handoff.summary import SummarySettings, build_summary, render
from rasa_gpt_components.handoff.webhook import WebhookSettings, deliver, payload, sign, verify_signature
from rasa_gpt_components.metrics import HANDOFF_DELIVERIES
from tests.fixtures.conversations import run
from tests.fixtures.desk import SECRET, Desk, closed_port_url

ORDER = "ES2611210006"


def said(text, intent, entities=(), sentiment=None):
    parse = {"intent": {"name": intent, "confidence": 0.9},
             "entities": [{"entity": kind, "value": value} for kind, value in entities]}
    if sentiment:
        parse["sentiment"] = {"label": sentiment, "confidence": 0.9}
    return [ActionExecuted("action_listen"), UserUttered(text, intent=parse["intent"], parse_data=parse)]


def conversation_events():
    """Looked up an order, stopped a refund form, asked what the bot could not answer, asked for a human."""
    return [
        ActionExecuted("action_session_start"), SessionStarted(), SlotSet("language", "en"),
        *said("hi", "greet"), ActionExecuted("utter_greet"), BotUttered("Hi, how can I help?"),
        *said(f"where is my order {ORDER}?", "order_status", [("order_number", ORDER)], "neutral"),
        ActionExecuted("action_order_status"), BotUttered(f"Order {ORDER} has shipped."),
        *said("the running shoes came without the laces!!", "request_refund", [("product", "running shoes")], "negative"),
        ActionExecuted("refund_form"), ActiveLoop("refund_form"), SlotSet("requested_slot", "refund_reason"),
        BotUttered("Why would you like a refund?"),
        *said("stop", "stop"), ActionExecuted("action_deactivate_loop"), ActiveLoop(None),
        SlotSet("requested_slot", None), ActionExecuted("utter_form_stopped"), BotUttered("OK, stopped."),
        *said("can I bring a power bank on a plane", "nlu_fallback", [("product", "power bank")], "neutral"),
        ActionExecuted("utter_generative_fallback"),
        BotUttered("I don't know.", metadata={"metadata": {"generative": {"outcome": "declined"}},
                                              "utter_action": "utter_generative_fallback"}),  # as Rasa stores it
        SlotSet("frustration", 0.64),
        *said("agent please, tell them the laces are missing", "human_handoff", [("language", "en")], "negative"),
        ActionExecuted("action_handoff"),
    ]


def test_the_summary_holds_what_the_agent_must_know_and_nothing_else():
    events = [e.as_dict() for e in conversation_events()]
    settings = SummarySettings(agent_language="zh", action_labels={"action_order_status": "查询了订单"})
    summary = build_summary(read_conversation(events), settings, "c-1", 0.64)
    assert summary["language"] == "en" and summary["reason"] == "asked"
    assert summary["last_message"] == "agent please, tell them the laces are missing"
    assert summary["mentioned"] == {"order_number": [ORDER], "product": ["running shoes", "power bank"]}
    assert summary["done"] == [{"action": "action_order_status", "label": "查询了订单"}]
    assert summary["open"] == {"form": None, "requested_slot": None, "stopped_forms": ["refund_form"],
                               "unanswered": ["can I bring a power bank on a plane"]}
    assert summary["sentiment"] == {"trend": ["neutral", "negative", "neutral", "negative"], "frustration": 0.64}
    assert [m["text"] for m in summary["transcript"]] == [
        "Why would you like a refund?", "stop", "OK, stopped.", "can I bring a power bank on a plane",
        "I don't know.", "agent please, tell them the laces are missing"]
    text = render(summary, "zh")
    assert "订单号：“ES2611210006”" in text and "查询了订单" in text and "中途停止的表单 refund_form" in text
    assert "负面" in text and "（烦躁度 0.64）" in text
    assert "Mentioned · order numbers" in render(summary, "en")


def test_a_question_the_knowledge_answer_declined_is_still_open():
    def asked(text, outcome):
        return [*said(text, "faq"), ActionExecuted("utter_knowledge_answer"),
                BotUttered("...", metadata={"metadata": {"generative": {"outcome": outcome}}})]

    events = [*asked("who owns this shop?", "declined"), *asked("how long does a refund take?", "passage"),
              *said("a person please", "human_handoff"), ActionExecuted("action_handoff")]
    summary = build_summary(read_conversation([e.as_dict() for e in events]), SummarySettings())
    assert summary["open"]["unanswered"] == ["who owns this shop?"]
    accepted = [*asked("who owns this shop?", "declined"), *said("yes please", "affirm"), ActionExecuted("action_handoff")]
    personal = [*said(f"agent please, order {ORDER}, my phone is 13800001111, mail amy@example.com", "human_handoff"),
                ActionExecuted("action_handoff")]
    quoted = build_summary(read_conversation([e.as_dict() for e in personal]), SummarySettings())
    assert quoted["last_message"] == f"agent please, order {ORDER}, my phone is 138******11, mail a***@example.com"
    assert "13800001111" not in json.dumps(quoted) and "amy@" not in json.dumps(quoted)
    assert build_summary(read_conversation([e.as_dict() for e in accepted]), SummarySettings())["reason"] == "offer_accepted"


def test_a_session_start_begins_a_new_summary_and_an_offer_accepted_is_told():
    old = said(f"order {ORDER}", "order_status", [("order_number", ORDER)])
    new = [*said("this is useless", "complaint"), ActionExecuted("utter_offer_human"), BotUttered("A human?"),
           *said("yes", "affirm")]
    events = [e.as_dict() for e in [*old, ActionExecuted("action_session_start"), SessionStarted(), *new]]
    summary = build_summary(read_conversation(events), SummarySettings())
    assert summary["mentioned"] == {} and summary["reason"] == "offer_accepted"


def test_a_person_accepted_after_any_reply_that_offers_one_is_told():
    """The reply to a complaint offers a person too (the policy's ``offer_actions``): "转吧" to it
    was reported as the bot giving up."""
    events = [*said("下单十天了还没发货", "complaint"), ActionExecuted("utter_complaint"), BotUttered("需要转人工吗？"),
              *said("转吧", "nlu_fallback"), ActionExecuted("action_handoff")]
    conversation = read_conversation([e.as_dict() for e in events])
    assert build_summary(conversation, SummarySettings(offer_actions=("utter_complaint",)))["reason"] == "offer_accepted"
    assert build_summary(conversation, SummarySettings())["reason"] == "bot"
    settings = HandoffSettings.from_config({"offer_actions": ["utter_complaint"]}, "utter_generative_fallback")
    assert settings.summary.offer_actions == ("utter_complaint",)


def test_a_reply_the_domain_marks_as_offering_a_person_is_an_offer():
    """Declared once, in the domain (``metadata: {offers_handoff: true}``), for the policy and the
    summary: the NLG hands the desk the responses that offer a person."""
    domain = Domain.from_yaml("""
version: "3.1"
responses:
  utter_complaint:
    - {condition: [{type: slot, name: language, value: en}], text: "A person?", metadata: {offers_handoff: true}}
    - {text: "转人工吗？", metadata: {offers_handoff: true}}
  utter_greet: [{text: hi, metadata: {rephrase: true}}]
""")
    assert offering_responses(domain.responses) == ("utter_complaint",)
    events = [*said("下单十天了还没发货", "complaint"), ActionExecuted("utter_complaint"), BotUttered("需要转人工吗？"),
              *said("转吧", "nlu_fallback"), ActionExecuted("action_handoff")]
    desk = HandoffDesk(HandoffSettings.from_config({}, "utter_generative_fallback"))
    as_dicts = [e.as_dict() for e in events]
    assert desk.hand_off(as_dicts, "c1", offering_responses(domain.responses))["summary"]["reason"] == "offer_accepted"
    assert desk.hand_off(as_dicts, "c1")["summary"]["reason"] == "bot"


def test_formats_escape_the_customers_words_and_stay_within_limits():
    summary = build_summary(read_conversation([e.as_dict() for e in conversation_events()]), SummarySettings())
    summary["last_message"] = "<!channel> [click](http://evil.example) " + "x" * 190
    summary["transcript"] = [{"from": "customer", "text": "很长的消息" * 40}] * 40
    wecom = payload(summary, "id1", "zh", "wecom")["markdown"]["content"]
    assert "[click]" not in wecom and "＜!channel＞" in wecom and len(wecom.encode("utf-8")) <= 4096
    slack = payload(summary, "id1", "en", "slack")
    assert "<!channel>" not in slack["blocks"][0]["text"]["text"] and "&lt;!channel&gt;" in slack["blocks"][0]["text"]["text"]
    assert len(slack["blocks"][0]["text"]["text"]) <= 3000
    plain = payload(summary, "id1", "zh", "json")
    assert plain["type"] == "handoff" and plain["id"] == "id1" and plain["summary"] is summary


def test_signatures_verify_and_catch_tampering_and_replays():
    body = b'{"a": 1}'
    signature = sign("s", "1000", body)
    assert verify_signature("s", "1000", body, signature, now=lambda: 1100)
    assert not verify_signature("s", "1000", b'{"a": 2}', signature, now=lambda: 1100)
    assert not verify_signature("other", "1000", body, signature, now=lambda: 1100)
    assert not verify_signature("s", "1000", body, signature, now=lambda: 2000)  # too old
    assert not verify_signature("s", "soon", body, signature)


def delivered(outcome):
    return HANDOFF_DELIVERIES.labels("json", outcome)._value.get()


@pytest.fixture()
def desk(monkeypatch):
    monkeypatch.setenv("RASA_GPT_HANDOFF_SECRET", SECRET)
    server = Desk()
    yield server
    server.close()


def test_delivery_is_signed_retried_and_once(desk):
    settings = WebhookSettings(url=desk.url + "/desk", retries=2, backoff=0.01)
    before = delivered("delivered")
    desk.fail_next = 1  # the desk is busy once: the retry gets through
    assert run(deliver(settings, {"type": "handoff", "id": "h1"}, "h1"))
    assert [body["id"] for body in desk.received] == ["h1"] and desk.rejected == 0
    assert desk.headers[0]["X-Handoff-Id"] == "h1"
    assert delivered("delivered") == before + 1


def test_an_unsigned_request_is_refused_by_the_desk_and_not_retried(desk, monkeypatch):
    monkeypatch.setenv("RASA_GPT_HANDOFF_SECRET", "")
    settings = WebhookSettings(url=desk.url, retries=3, backoff=0.01)
    assert not run(deliver(settings, {"id": "h2"}, "h2"))
    assert desk.rejected == 1 and desk.received == []  # 401: retrying would not help


def test_a_desk_that_is_down_is_counted_and_logged(monkeypatch, caplog):
    monkeypatch.setenv("RASA_GPT_HANDOFF_SECRET", SECRET)
    before = delivered("failed")
    settings = WebhookSettings(url=closed_port_url(), retries=1, backoff=0.01, timeout=1)
    assert not run(deliver(settings, {"id": "h3"}, "h3"))
    assert delivered("failed") == before + 1
    assert "outcome=failed" in caplog.text and "h3" in caplog.text


def test_a_wecom_robot_that_refuses_the_message_is_a_failure(monkeypatch):
    monkeypatch.setenv("RASA_GPT_HANDOFF_SECRET", SECRET)
    robot = Desk(answer={"errcode": 93000, "errmsg": "invalid webhook url"})
    try:
        settings = WebhookSettings(url=robot.url, format="wecom", retries=0)
        assert not run(deliver(settings, {"msgtype": "markdown", "markdown": {"content": "x"}}, "h4"))
    finally:
        robot.close()


def handoff_tracker():
    from tests.fixtures.conversations import NLG_DOMAIN

    return DialogueStateTracker.from_events("customer-7", conversation_events(), slots=NLG_DOMAIN.slots)


def test_the_nlg_hands_off_stores_the_summary_and_delivers_it(nlg, desk):
    generator = nlg(handoff={"agent_language": "en", "webhook": {"url": desk.url, "backoff": 0.01}})

    async def hand_off():
        reply = await generator.generate("utter_handoff", handoff_tracker(), "rest")
        await generator.desk.drain()
        return reply

    reply = run(hand_off())
    assert reply["text"] == "Connecting you with an agent."
    record = reply["metadata"]["handoff"]
    assert record["summary"]["mentioned"]["order_number"] == [ORDER]
    assert record["summary"]["conversation_id"] == "customer-7"
    assert [body["id"] for body in desk.received] == [record["id"]]
    assert desk.received[0]["summary"] == json.loads(json.dumps(record["summary"]))
    assert ORDER in desk.received[0]["text"]


def test_the_customer_gets_the_handoff_message_when_the_desk_is_down(nlg):
    generator = nlg(handoff={"webhook": {"url": closed_port_url(), "retries": 0}})
    reply = run(generator.generate("utter_handoff", handoff_tracker(), "rest"))
    assert reply["text"] == "Connecting you with an agent." and "handoff" in reply["metadata"]


def test_handoff_options_are_checked(nlg):
    with pytest.raises(RasaException, match="unknown handoff options \\['agent_lang'\\]"):
        nlg(handoff={"agent_lang": "en"})
    with pytest.raises(RasaException, match="webhook format must be one of json, wecom, slack"):
        nlg(handoff={"webhook": {"url": "http://127.0.0.1:1/", "format": "teams"}})
    with pytest.raises(RasaException, match="agent_language must be one of zh, en"):
        nlg(handoff={"agent_language": "fr"})
