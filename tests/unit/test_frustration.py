"""Frustration: each signal, the decay, the off switches, and the policy's offer
of a human on real Rasa trackers."""

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.handoff.conversation import read_conversation
from rasa_gpt_components.handoff.frustration import FrustrationSettings, frustration, repeats, shouting, signals
from tests.fixtures.conversations import policy_tracker as tracker

FALLBACK = "utter_generative_fallback"
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, order_status, human_handoff, complaint]
slots:
  frustration: {type: float, influence_conversation: false, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: hi}]
  utter_generative_fallback: [{text: "Sorry, I didn't get that."}]
  utter_handoff: [{text: "Connecting you with an agent."}]
  utter_offer_human: [{text: "Shall I get a colleague?"}]
"""
)


def said(text, intent="order_status", negative=None, answered_by=None):
    """The events of one customer message (and the bot's first action for it)."""
    parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": []}
    if negative is not None:
        parse["sentiment"] = {"label": "negative" if negative >= 0.5 else "neutral",
                              "scores": {"negative": negative, "neutral": 1 - negative}}
    events = [ActionExecuted("action_listen"), UserUttered(text, parse_data=parse, intent=parse["intent"])]
    return events + ([ActionExecuted(answered_by)] if answered_by else [])


def turns(*groups):
    return read_conversation([e.as_dict() for group in groups for e in group]).turns


def test_each_signal_is_seen_and_weighted():
    s = FrustrationSettings()
    found = signals(turns(said("where is my order ES2611210006", answered_by=FALLBACK),
                          said("Where is my order ES2611210006??? WHY", negative=0.9, answered_by=FALLBACK)),
                    FALLBACK, s)
    assert found[0] == {}
    assert found[1] == {"negative_sentiment": pytest.approx(0.4 * 0.9), "repeated_fallback": 0.3,
                        "repeated_question": 0.3, "shouting": 0.25}


def knowledge_reply(outcome):
    """utter_knowledge_answer's reply as Rasa stores it, with the NLG's outcome."""
    return [ActionExecuted("utter_knowledge_answer"),
            BotUttered("...", metadata={"metadata": {"generative": {"outcome": outcome}},
                                        "utter_action": "utter_knowledge_answer"})]


def test_a_declined_knowledge_answer_counts_as_a_fallback():
    s = FrustrationSettings()
    unknown = [*said("can I take a power bank on a plane", "faq"), *knowledge_reply("declined")]
    answered = [*said("how long does a refund take", "faq"), *knowledge_reply("passage")]
    fallback = said("what is the weather in Hangzhou", answered_by=FALLBACK)
    assert signals(turns(fallback, unknown), FALLBACK, s)[1] == {"repeated_fallback": 0.3}
    assert signals(turns(unknown, fallback), FALLBACK, s)[1] == {"repeated_fallback": 0.3}
    assert signals(turns(fallback, answered), FALLBACK, s)[1] == {}


def test_shouting_and_repeats():
    assert shouting("怎么还没到！！！") and shouting("WHERE IS MY PARCEL") and shouting("why???")
    assert not shouting("Where is my parcel?") and not shouting("ES2611210006") and not shouting("OK")
    # capitals shouted inside a calmer message; acronyms, codes and a capital word alone are not
    assert shouting("tracking hasn't updated in 4 days. FOUR DAYS") and shouting("you keep telling me. I KNOW IT'S SHIPPED")
    assert not shouting("sent with SF Express, tracking SF1402611200002") and not shouting("is the LED TV in stock")
    assert not shouting("I want the XL in NAVY please")
    assert repeats("我的快递到哪了", ["你好", "我的快递到哪里了"], 0.6)
    assert not repeats("我想退货", ["我的快递到哪里了"], 0.6)
    assert not repeats("yes", ["yes"], 0.6)  # too short to count


def test_the_score_fades_and_each_signal_can_be_switched_off():
    angry = said("this is useless!!", negative=0.95)
    calm = said("ok, and what about returns", negative=0.1)
    s = FrustrationSettings()
    one = frustration(turns(angry), FALLBACK, s)
    assert one == pytest.approx(0.4 * 0.95 + 0.25)
    assert frustration(turns(angry, calm), FALLBACK, s) == pytest.approx(0.6 * one)
    assert frustration(turns(angry, angry), FALLBACK, s) == 1.0  # capped (and repeated)
    quiet = FrustrationSettings(negative_sentiment=0, shouting=0, repeated_question=0)
    assert frustration(turns(angry, angry), FALLBACK, quiet) == 0.0


def test_settings_name_what_is_wrong():
    with pytest.raises(ValueError, match="unknown frustration options \\['levle'\\]"):
        FrustrationSettings.from_config({"levle": 0.5})
    with pytest.raises(ValueError, match="shouting must not be negative"):
        FrustrationSettings.from_config({"shouting": -1})
    assert FrustrationSettings.from_config({"level": None, "ignore_intents": ["a"]}).ignore_intents == ("a",)


def decide(policy, *groups):
    prediction = policy.predict_action_probabilities(tracker(*groups), DOMAIN)
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index], prediction


def test_a_frustrated_customer_is_offered_a_human_once(policy):
    p = policy()
    action, prediction = decide(p, said("WHERE IS MY ORDER!!", negative=0.95))
    assert action != "utter_offer_human"  # 0.63 < 0.7
    assert prediction.events == [SlotSet("frustration", 0.63)]
    first = said("WHERE IS MY ORDER!!", negative=0.95, answered_by="utter_greet")
    assert decide(p, first)[1].events == []  # mid-turn: no score
    second = said("still nothing, this is a joke", negative=0.9)
    action, prediction = decide(p, first, second)
    assert action == "utter_offer_human" and prediction.max_confidence == 1.0
    assert prediction.action_metadata["reason_code"] == "frustration"
    offered = [*first, *second, ActionExecuted("utter_offer_human"), BotUttered("Shall I get a colleague?")]
    assert decide(p, *offered)[0] == "action_listen"
    assert decide(p, *offered, *said("useless bot!!", negative=0.9))[0] != "utter_offer_human"  # once


def test_no_offer_in_a_form_when_asked_already_or_when_switched_off(policy):
    angry = [*said("WHERE IS MY ORDER!!", negative=0.95, answered_by="utter_greet"),
             *said("still nothing, this is a joke", negative=0.9)]
    in_form = [ActiveLoop("refund_form"), *angry]
    assert decide(policy(), *in_form)[0] != "utter_offer_human"
    asked = [*angry[:-1], UserUttered("human now!!", intent={"name": "human_handoff", "confidence": 0.9},
                                       parse_data={"sentiment": {"label": "negative", "scores": {"negative": 0.9}}})]
    assert decide(policy(), *asked)[0] != "utter_offer_human"
    assert decide(policy(frustration={"level": None}), *angry)[0] != "utter_offer_human"
    new_session = [ActionExecuted("utter_offer_human"), ActionExecuted("action_session_start"), SessionStarted(), *angry]
    assert decide(policy(), *new_session)[0] == "utter_offer_human"


def test_a_domain_without_the_offer_gets_no_offer_and_a_bad_option_is_an_error(policy, caplog):
    plain = Domain.from_yaml('version: "3.1"\nintents: [greet]\nresponses:\n'
                             '  utter_generative_fallback: [{text: s}]\n  utter_handoff: [{text: h}]\n')
    p = policy()
    p.train([], plain)
    assert "frustration.offer_action" in caplog.text
    angry = [*said("WHERE IS MY ORDER!!", "greet", negative=0.95, answered_by="utter_generative_fallback"),
             *said("still nothing, this is a joke", "greet", negative=0.9)]
    prediction = p.predict_action_probabilities(tracker(*angry), plain)
    assert plain.action_names_or_texts[prediction.max_confidence_index] != "utter_offer_human"
    assert prediction.events == []  # no slot in that domain
    with pytest.raises(RasaException, match="unknown frustration options"):
        policy(frustration={"levels": 1})
