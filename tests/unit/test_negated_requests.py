"""NegatedRequests: "不用转人工" is no request for a human. The text helper that finds
a negated word, and the component that gives such a message its next reading."""

from typing import List, Tuple

import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from rasa_gpt_components.nlu.negated_requests import NEGATED_INTENT, NegatedRequests
from rasa_gpt_components.text import clauses, negates

PERSON = ["人工", "真人", "客服", "human", "agent", "person", "representative", "operator", "transfer"]


@pytest.mark.parametrize(
    "text, negated",
    [
        ("不用转人工", True),
        ("先不用转人工", True),
        ("不需要人工客服", True),
        ("别给我转人工", True),
        ("不用找客服了 我自己看看", True),
        ("不用人工了，谢谢", True),
        ("no need for a human", True),
        ("no thanks, no human needed", True),
        ("I don't need a human, where is my parcel ES2611210006", True),
        ("no, I don't want to talk to an agent", True),
        ("don't transfer me", True),
        ("NO HUMAN PLEASE", True),
        # the negation in another clause, or the clause asks after all
        ("不用了，转人工吧", False),
        ("不用了 转人工", False),
        ("不用了 我要转人工", False),
        ("我不要机器人，转人工", False),
        ("不要机器人要人工", False),
        ("我不想跟机器人聊 转人工", False),
        ("I don't want to talk to a bot I want a human", False),
        ("not a bot, a human please", False),
        ("no I want a human", False),
        ("I'm not sure, can I talk to an agent?", False),
        # no negation of the word at all
        ("转人工", False),
        ("为什么不能转人工", False),
        ("I want a human", False),
        ("I do not want an agenda", False),
        ("", False),
        # found by a review: "别" as "other", the bot's own name, questions, complaints that no one came
        ("有别的客服吗", False), ("别人都能转人工", False), ("不要机器人客服，我要人工客服", False),
        ("no AI agent, real human", False), ("don't transfer me to a bot again, I need a person", False),
        ("why don't you transfer me to a human", False), ("no human???", False),
        ("Don't you have a person who can help", False), ("你们为什么不用人工客服", False),
        ("I was not transferred to an agent, please connect me", False), ("No agent has contacted me yet", False),
        ("不用了转人工", False), ("不用客气转人工", False),
        ("I don\u2019t need a human", True),  # a curly apostrophe
    ],
)
def test_negates_finds_a_negated_request_in_its_own_clause(text, negated):
    assert negates(text, PERSON) is negated


def test_clauses_are_the_pieces_negates_reads():
    assert clauses("改好了就行。能帮我接一下人工吗，想顺便换42码") == ["改好了就行", "能帮我接一下人工吗", "想顺便换42码"]
    assert clauses("real person please, the phone was a gift but I need the money back") == [
        "real person please", "the phone was a gift", "I need the money back"]
    assert clauses("不用了 转人工") == ["不用了", "转人工"]
    assert clauses("转人工") == ["转人工"] and clauses("") == [] and clauses(" ,， ") == []


def message(text: str, ranking: List[Tuple[str, float]]) -> Message:
    readings = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    return Message({TEXT: text, INTENT: dict(readings[0]), INTENT_RANKING_KEY: readings})


def read(text: str, ranking: List[Tuple[str, float]], **config) -> Message:
    settings = {**NegatedRequests.get_default_config(), "requests": {"human_handoff": PERSON}, **config}
    return NegatedRequests(settings).process([message(text, ranking)])[0]


def test_a_negated_request_gets_the_next_reading_renormalised():
    parsed = read("I don't need a human, where is my parcel ES2611210006",
                  [("human_handoff", 0.73), ("order_status", 0.25), ("change_address", 0.02)])
    assert parsed.get(INTENT) == {"name": "order_status", "confidence": pytest.approx(0.25 / 0.27)}
    assert [r["name"] for r in parsed.get(INTENT_RANKING_KEY)] == ["order_status", "change_address"]
    assert parsed.get(NEGATED_INTENT) == {"name": "human_handoff", "confidence": 0.73}


def test_a_negated_request_with_no_likely_other_reading_is_a_no():
    parsed = read("别给我转人工", [("human_handoff", 0.998), ("stop", 0.001), ("deny", 0.001)])
    assert parsed.get(INTENT) == {"name": "deny", "confidence": 0.998}
    assert [r["name"] for r in parsed.get(INTENT_RANKING_KEY)] == ["deny", "stop"]
    # a reading the classifier gave 6 % is no reading: not made 60 % by renormalising
    parsed = read("不要转人工，我就问个问题", [("human_handoff", 0.90), ("faq", 0.06), ("stop", 0.04)])
    assert parsed.get(INTENT) == {"name": "deny", "confidence": 0.90}


def test_a_negated_request_lower_in_the_ranking_is_dropped_from_it():
    parsed = read("不用转人工", [("complaint", 0.48), ("human_handoff", 0.45), ("deny", 0.07)])
    assert parsed.get(INTENT) == {"name": "complaint", "confidence": 0.48}
    assert [r["name"] for r in parsed.get(INTENT_RANKING_KEY)] == ["complaint", "deny"]


def test_without_a_fallback_intent_the_best_other_reading_is_taken_whatever_its_confidence():
    parsed = read("别给我转人工", [("human_handoff", 0.98), ("stop", 0.015), ("deny", 0.005)], otherwise=None)
    assert parsed.get(INTENT)["name"] == "stop"
    assert parsed.get(INTENT)["confidence"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "text, ranking",
    [
        ("不用了，转人工吧", [("human_handoff", 0.6), ("deny", 0.4)]),  # not negated
        ("不用转人工", [("deny", 0.82), ("human_handoff", 0.18)]),  # not read as the request
        ("no need to refund it", [("request_refund", 0.9), ("deny", 0.1)]),  # a request not configured
    ],
)
def test_other_messages_are_left_as_read(text, ranking):
    parsed = read(text, ranking)
    assert parsed.get(INTENT) == {"name": ranking[0][0], "confidence": ranking[0][1]}
    assert parsed.get(NEGATED_INTENT) is None


@pytest.mark.parametrize(
    "config",
    [{"requests": {"human_handoff": "human"}}, {"requests": {"human_handoff": []}}, {"requests": ["human_handoff"]},
     {"requests": {"human_handoff": ["human"]}, "min_confidence": 2}],
)
def test_a_wrong_configuration_is_a_clear_error(config):
    with pytest.raises(InvalidConfigException, match="NegatedRequests"):
        NegatedRequests({**NegatedRequests.get_default_config(), **config})


def from_a_clause(text: str, clause: str, confidence: float, own: List[Tuple[str, float]]) -> Message:
    """A message whose intent GPTIntentClassifier took from one clause (``priority_intents``)."""
    from rasa_gpt_components.nlu.gpt_intent_classifier import CLAUSE_READING

    readings = [{"name": name, "confidence": c} for name, c in own]
    first = {"name": "human_handoff", "confidence": confidence}
    parsed = message(text, [("human_handoff", confidence)] + [(n, c * (1 - confidence)) for n, c in own])
    parsed.set(CLAUSE_READING, {**first, "clause": clause, "message_ranking": readings})
    assert parsed.get(INTENT) == first
    return parsed


def test_a_request_read_from_a_clause_that_negates_it_gives_the_message_its_own_reading():
    settings = {**NegatedRequests.get_default_config(), "requests": {"human_handoff": PERSON}}
    parsed = NegatedRequests(settings).process(
        [from_a_clause("我的包裹到哪了？不用转人工", "不用转人工", 0.99, [("order_status", 0.91), ("faq", 0.09)])])[0]
    assert parsed.get(INTENT) == {"name": "order_status", "confidence": 0.91}
    assert [r["name"] for r in parsed.get(INTENT_RANKING_KEY)] == ["order_status", "faq"]
    # a clause that asks for a person is kept
    parsed = NegatedRequests(settings).process(
        [from_a_clause("不用了，转人工，鞋子想换大一码", "转人工", 0.98, [("request_exchange", 0.8), ("deny", 0.2)])])[0]
    assert parsed.get(INTENT) == {"name": "human_handoff", "confidence": 0.98}
