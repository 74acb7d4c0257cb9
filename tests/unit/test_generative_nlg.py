"""GenerativeNLG with a real Rasa domain and tracker, a tiny local model and a knowledge base."""

import asyncio

import pytest
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from rasa_gpt_components.generation.nlg import GenerativeNLG, conversation_history
from rasa_gpt_components.generation.prompts import DECLINE
from rasa_gpt_components.knowledge import answerability
from tests.conftest import build_tiny_gpt2
from tests.fixtures.backends import Scripted
from tests.fixtures.conversations import NLG_DOMAIN as DOMAIN
from tests.fixtures.conversations import nlg_tracker as tracker
from tests.fixtures.conversations import run
from tests.fixtures.knowledge import SHOP


def test_ordinary_responses_are_rendered_as_rasa_does(nlg):
    t = tracker("hi")
    ours = run(nlg().generate("utter_greet", t, "rest"))
    rasa = run(TemplatedNaturalLanguageGenerator(DOMAIN.responses).generate("utter_greet", t, "rest"))
    assert ours == rasa and "generative" not in (ours.get("metadata") or {})


def test_fallback_answers_with_metadata(nlg):
    reply = run(nlg(time_budget=2.0).generate("utter_generative_fallback", tracker("How much does shipping cost?"), "rest"))
    meta = reply["metadata"]["generative"]
    assert meta["passages"][0] == "shipping_cost" and meta["language"] == "en"
    # a random model's words fail the guardrails: the sure passage is sent instead
    assert reply["text"] == "Shipping is free on orders over 99 yuan; otherwise it costs 8 yuan."
    assert meta["generated"] is False and meta["outcome"] == "passage" and meta["reason"] != "passed"


def test_nothing_relevant_is_declined_in_the_users_language(nlg):
    reply = run(nlg().generate("utter_shipping_info", tracker("火星上有水吗"), "rest"))
    meta = reply["metadata"]["generative"]
    assert reply["text"] == DECLINE["zh"] and (meta["outcome"], meta["reason"]) == ("declined", "no_passage")


def test_the_budget_holds_when_turns_queue_up(nlg, tmp_path):
    # a model without an end-of-text token: every generation runs to the deadline
    endless = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    generator = nlg(time_budget=0.6, max_new_tokens=5000, extractive_threshold=1.01, max_concurrency=1, model=str(endless))
    t = tracker("How much does shipping cost?")

    async def three_at_once():
        return await asyncio.gather(*[generator.generate("utter_generative_fallback", t, "rest") for _ in range(3)])

    replies = run(three_at_once())
    metas = [reply["metadata"]["generative"] for reply in replies]
    for reply, meta in zip(replies, metas):
        assert meta["outcome"] == "template" and reply["text"] == "Sorry, I didn't get that."  # the domain's own
    # one generates until its deadline; the others wait for the slot, then have little or no time left
    assert {meta["reason"] for meta in metas} <= {"busy", "deadline"}
    assert any(meta["tokens"] > 0 for meta in metas), metas


def test_answers_without_generation_do_not_queue_behind_one_that_generates(nlg, tmp_path):
    endless = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    generator = nlg(time_budget=1.0, max_new_tokens=5000, max_concurrency=1, model=str(endless),
                    generation_languages=["en"])

    async def generating_and_chinese():
        slow = asyncio.ensure_future(generator.generate("utter_generative_fallback", tracker("How much is shipping?"), "rest"))
        await asyncio.sleep(0.1)  # the English answer holds the only generation slot
        fast = await generator.generate("utter_generative_fallback", tracker("运费多少钱？"), "rest")
        return fast, slow.done(), await slow

    fast, slow_done_before, _ = run(generating_and_chinese())
    assert not slow_done_before  # the Chinese answer did not wait for it
    meta = fast["metadata"]["generative"]
    assert meta["outcome"] in ("passage", "declined") and meta["reason"] != "busy" and meta["tokens"] == 0


def test_history_excludes_the_current_message():
    assert conversation_history(tracker("now"), 2) == [("user", "hello"), ("bot", "Hi!")]
    assert conversation_history(tracker("now"), 0) == []


def test_bad_settings_are_clear_errors(nlg, tmp_path):
    with pytest.raises(RasaException, match="unknown options \\['knowlege'\\]"):
        GenerativeNLG(EndpointConfig(type="x", knowlege="kb"), DOMAIN)
    with pytest.raises(RasaException, match="does not exist"):
        GenerativeNLG(EndpointConfig(type="x", knowledge=str(tmp_path / "none")), DOMAIN)
    with pytest.raises(RasaException, match="needs base_url"):
        nlg(backend="openai")
    # options the NLG once read in one place and refused in another are refused here, once
    with pytest.raises(RasaException, match="unknown options \\['compute', 'dtype'\\]"):
        GenerativeNLG(EndpointConfig(type="x", dtype="float32", compute="auto"), DOMAIN)
    with pytest.raises(RasaException, match="unknown retrieval options \\['layr'\\]"):
        nlg(retrieval={"layr": 2})
    with pytest.raises(RasaException, match="bm25_weight must be between 0 and 1"):
        nlg(retrieval={"bm25_weight": 2})
    with pytest.raises(RasaException, match="generation_languages"):
        nlg(generation_languages="en")


def test_settings_are_built_once_with_the_defaults_declared_once(nlg):
    from rasa_gpt_components.generation.answer import AnswerSettings
    from rasa_gpt_components.generation.guardrails import DEFAULT_BLOCKLIST

    generator = nlg(bot_name="Example Shop", blocklist=["competitor"], retrieval={"layer": 2, "top_k": 2})
    settings = generator.settings
    assert generator.answerer.settings is settings.answer  # passed down, not rebuilt
    assert generator.answerer.retriever.settings is settings.retrieval
    assert settings.answer.bot_name == "Example Shop" and settings.retrieval.top_k == 2
    assert settings.answer.max_chars == AnswerSettings().max_chars  # not given: the pipeline's own default
    assert settings.answer.blocklist == tuple(DEFAULT_BLOCKLIST) + ("competitor",)
    # auto: a model the registry does not know (the tiny one) generates in every language
    assert settings.answer.generation_languages == ("zh", "en")


def test_responses_come_from_the_call_when_built_before_the_domain(tmp_path, nlg_model):
    # rasa run / rasa shell build the NLG with an empty domain, then pass domain_responses
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    config = EndpointConfig(type="x", knowledge=str(tmp_path), model=str(nlg_model), retrieval={"layer": 2})
    early = GenerativeNLG(endpoint_config=config, domain=None)
    reply = run(early.generate("utter_greet", tracker("hi"), "rest", domain_responses=DOMAIN.responses))
    assert reply is not None and reply["text"].startswith("Hi")


@pytest.mark.parametrize(
    "said, sent, reason",
    [
        ("Orders ship within 48 hours, my friend!", "Orders ship within 48 hours, my friend!", "rephrased:passed"),
        ("Orders ship within 24 hours.", "Orders ship within 48 hours.", "template:unsupported"),  # a changed fact
        ("", "Orders ship within 48 hours.", "template:empty"),
    ],
)
def test_rephrase_responses_are_reworded_or_sent_as_they_are(nlg, said, sent, reason):
    generator = nlg()
    generator.answerer.backend = Scripted(said)
    reply = run(generator.generate("utter_ship_time", tracker("when do you ship?"), "rest"))
    meta = reply["metadata"]["generative"]
    assert reply["text"] == sent and f'{meta["outcome"]}:{meta["reason"]}' == reason
    assert reply["metadata"]["rephrase"] is True  # the response's own metadata is kept
    assert generator.answerer.backend.prompts[0].user == "Message: Orders ship within 48 hours."


def test_rephrase_is_skipped_without_generation(nlg):
    generator = nlg(generation_languages=[])
    generator.answerer.backend = Scripted("Orders ship within 48 hours, my friend!")
    reply = run(generator.generate("utter_ship_time", tracker("when do you ship?"), "rest"))
    assert reply["text"] == "Orders ship within 48 hours." and "generative" not in reply["metadata"]
    assert not generator.answerer.backend.prompts


def test_responses_of_custom_actions_render_once_rasa_hands_over_the_domain(nlg, tmp_path, nlg_model):
    # Rasa builds the NLG with an empty domain, then sets `responses` on any
    # TemplatedNaturalLanguageGenerator when it loads the model (agent.load_model);
    # a custom action's response comes without domain_responses
    config = EndpointConfig(type="rasa_gpt_components.GenerativeNLG", knowledge=str(tmp_path), model=str(nlg_model),
                            retrieval={"layer": 2})
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    generator = GenerativeNLG(endpoint_config=config, domain=None)
    assert isinstance(generator, TemplatedNaturalLanguageGenerator)
    assert run(generator.generate("utter_greet", tracker("hi"), "rest")) is None
    generator.responses = DOMAIN.responses
    reply = run(generator.generate("utter_greet", tracker("hi"), "rest", name="Ada"))
    assert reply["text"] == "Hi Ada!"


@pytest.mark.parametrize("said", ["ES261121006", "👍", "？？？"])
def test_a_message_without_words_is_answered_in_the_conversations_language(nlg, said):
    """An order number, an emoji or question marks say nothing of the language: a Chinese
    conversation gets its "I don't know" in Chinese (it got the English one)."""
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.slots import TextSlot
    from rasa.shared.core.trackers import DialogueStateTracker

    def in_language(language):
        return DialogueStateTracker.from_events(
            "u", [SlotSet("language", language), ActionExecuted("action_listen"),
                  UserUttered(said, intent={"name": "nlu_fallback", "confidence": 0.9})],
            slots=[*DOMAIN.slots, TextSlot("language", mappings=[{"type": "custom"}])])

    generator = nlg()
    assert run(generator.generate("utter_generative_fallback", in_language("zh"), "rest"))["text"] == DECLINE["zh"]
    assert run(generator.generate("utter_generative_fallback", in_language("en"), "rest"))["text"] == DECLINE["en"]
    assert run(generator.generate("utter_generative_fallback", tracker(said), "rest"))["text"] == DECLINE["en"]  # no slot


def test_whether_the_base_answers_is_what_the_answer_pipeline_does(nlg):
    """``answerable``: retrieval alone says what a generative response then does (a sure
    passage is answered, nothing relevant declined), for the policies that ask it."""
    generator = nlg(generation_languages=[])
    for text, answered in (("How much does shipping cost?", True), ("火星上有水吗", False),
                           ("how many bones does an adult have?", False)):
        reply = run(generator.generate("utter_generative_fallback", tracker(text), "rest"))
        assert generator.answerable(tracker(text)) is answered
        assert (reply["metadata"]["generative"]["outcome"] == "passage") is answered, text


def test_policies_ask_the_nlg_that_serves_the_same_bot(nlg):
    generator = nlg(generation_languages=[])
    # Rasa hands the model's responses to the NLG when it loads the model (agent.load_model)
    generator.responses = bot = {**DOMAIN.responses, "utter_only_this_bot": [{"text": "x"}]}
    try:
        assert answerability.answerable(tracker("How much does shipping cost?"), dict(bot)) is True
        assert answerability.answerable(tracker("火星上有水吗"), dict(bot)) is False
        other_bot = {**bot, "utter_other": [{"text": "another bot"}]}
        assert answerability.answerable(tracker("How much does shipping cost?"), other_bot) is None
    finally:
        answerability.unregister(generator)
    assert answerability.answerable(tracker("How much does shipping cost?"), bot) is None
