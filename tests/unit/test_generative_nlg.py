"""GenerativeNLG with a real Rasa domain and tracker, a tiny local model and a knowledge base."""

import asyncio
import time

import pytest
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from rasa_gpt_components.generation.nlg import GenerativeNLG, conversation_history
from rasa_gpt_components.generation.prompts import DECLINE
from tests.conftest import build_tiny_gpt2
from tests.unit.test_knowledge import SHOP

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
slots:
  name: {type: text, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: "Hi {name}!"}]
  utter_generative_fallback: [{text: "Sorry, I didn't get that."}]
  utter_shipping_info: [{text: "Ask me about shipping.", metadata: {generative: true}}]
  utter_ship_time: [{text: "Orders ship within 48 hours.", metadata: {rephrase: true}}]
"""
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_gpt2(tmp_path_factory.mktemp("m"), n_layer=2, n_positions=8192)


@pytest.fixture()
def nlg(tmp_path, model):
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")

    def build(**options):
        options = {"knowledge": str(tmp_path), "model": str(model), "retrieval": {"layer": 2}, **options}
        config = EndpointConfig(type="rasa_gpt_components.GenerativeNLG", **options)
        return GenerativeNLG(endpoint_config=config, domain=DOMAIN)

    return build


def tracker(text: str) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "u",
        [ActionExecuted("action_listen"), UserUttered("hello", intent={"name": "greet", "confidence": 0.9}),
         BotUttered("Hi!"), ActionExecuted("action_listen"),
         UserUttered(text, intent={"name": "nlu_fallback", "confidence": 0.9})],
        slots=DOMAIN.slots,
    )


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_ordinary_responses_are_rendered_as_rasa_does(nlg):
    t = tracker("hi")
    ours = run(nlg().generate("utter_greet", t, "rest"))
    rasa = run(TemplatedNaturalLanguageGenerator(DOMAIN.responses).generate("utter_greet", t, "rest"))
    assert ours == rasa and "generative" not in (ours.get("metadata") or {})


def test_fallback_answers_with_metadata(nlg):
    reply = run(nlg(time_budget=2.0).generate("utter_generative_fallback", tracker("How much does shipping cost?"), "rest"))
    meta = reply["metadata"]["generative"]
    assert meta["passages"][0] == "shipping_cost" and meta["language"] == "en" and meta["ms"] < 2100
    # a random model's words fail the guardrails: the sure passage is sent instead
    assert reply["text"] == "Shipping is free on orders over 99 yuan; otherwise it costs 8 yuan."
    assert meta["generated"] is False and meta["reason"].startswith("extractive:")


def test_nothing_relevant_is_declined_in_the_users_language(nlg):
    reply = run(nlg().generate("utter_shipping_info", tracker("火星上有水吗"), "rest"))
    assert reply["text"] == DECLINE["zh"] and reply["metadata"]["generative"]["reason"] == "no_passage"


def test_the_budget_holds_when_turns_queue_up(nlg, tmp_path):
    # a model without an end-of-text token: every generation runs to the deadline
    endless = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    generator = nlg(time_budget=0.6, max_new_tokens=5000, extractive_threshold=1.01, max_concurrency=1, model=str(endless))
    t = tracker("How much does shipping cost?")

    async def three_at_once():
        started = time.monotonic()
        replies = await asyncio.gather(*[generator.generate("utter_generative_fallback", t, "rest") for _ in range(3)])
        return replies, time.monotonic() - started

    replies, elapsed = run(three_at_once())
    assert elapsed < 0.6 + 0.1, elapsed
    for reply in replies:
        assert reply["metadata"]["generative"]["ms"] < 700
        if not reply["metadata"]["generative"]["generated"]:
            assert reply["text"] == "Sorry, I didn't get that."  # the domain's own template
    # one generates until its deadline; the others wait for the slot, then have no time left
    assert {r["metadata"]["generative"]["reason"] for r in replies} <= {"busy", "deadline"}


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
    assert fast["metadata"]["generative"]["reason"] != "busy" and fast["metadata"]["generative"]["ms"] < 500


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


def test_responses_come_from_the_call_when_built_before_the_domain(tmp_path, model):
    # rasa run / rasa shell build the NLG with an empty domain, then pass domain_responses
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    config = EndpointConfig(type="x", knowledge=str(tmp_path), model=str(model), retrieval={"layer": 2})
    early = GenerativeNLG(endpoint_config=config, domain=None)
    reply = run(early.generate("utter_greet", tracker("hi"), "rest", domain_responses=DOMAIN.responses))
    assert reply is not None and reply["text"].startswith("Hi")


@pytest.mark.parametrize(
    "said, sent, reason",
    [
        ("Orders ship within 48 hours, my friend!", "Orders ship within 48 hours, my friend!", "rephrased"),
        ("Orders ship within 24 hours.", "Orders ship within 48 hours.", "unsupported"),  # a changed fact
        ("", "Orders ship within 48 hours.", "empty"),
    ],
)
def test_rephrase_responses_are_reworded_or_sent_as_they_are(nlg, said, sent, reason):
    from tests.unit.test_answer import Scripted

    generator = nlg()
    generator.answerer.backend = Scripted(said)
    reply = run(generator.generate("utter_ship_time", tracker("when do you ship?"), "rest"))
    assert reply["text"] == sent and reply["metadata"]["generative"]["reason"] == reason
    assert reply["metadata"]["rephrase"] is True  # the response's own metadata is kept
    assert generator.answerer.backend.prompts[0].user == "Message: Orders ship within 48 hours."


def test_rephrase_is_skipped_without_generation(nlg):
    from tests.unit.test_answer import Scripted

    generator = nlg(generation_languages=[])
    generator.answerer.backend = Scripted("Orders ship within 48 hours, my friend!")
    reply = run(generator.generate("utter_ship_time", tracker("when do you ship?"), "rest"))
    assert reply["text"] == "Orders ship within 48 hours." and "generative" not in reply["metadata"]
    assert not generator.answerer.backend.prompts


def test_responses_of_custom_actions_render_once_rasa_hands_over_the_domain(nlg, tmp_path, model):
    # Rasa builds the NLG with an empty domain, then sets `responses` on any
    # TemplatedNaturalLanguageGenerator when it loads the model (agent.load_model);
    # a custom action's response comes without domain_responses
    config = EndpointConfig(type="rasa_gpt_components.GenerativeNLG", knowledge=str(tmp_path), model=str(model),
                            retrieval={"layer": 2})
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    generator = GenerativeNLG(endpoint_config=config, domain=None)
    assert isinstance(generator, TemplatedNaturalLanguageGenerator)
    assert run(generator.generate("utter_greet", tracker("hi"), "rest")) is None
    generator.responses = DOMAIN.responses
    reply = run(generator.generate("utter_greet", tracker("hi"), "rest", name="Ada"))
    assert reply["text"] == "Hi Ada!"
