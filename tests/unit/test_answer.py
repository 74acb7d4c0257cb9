"""The answer pipeline's decisions, with a real (tiny, random) local model and
with a scripted backend that says exactly what a test needs."""

import pytest

from rasa_gpt_components.generation.answer import AnswerSettings, KnowledgeAnswerer, Outcome, Why
from rasa_gpt_components.generation.backends import LocalBackend
from rasa_gpt_components.generation.prompts import DECLINE, TEMPLATE
from rasa_gpt_components.knowledge import KnowledgeBase
from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
from tests.conftest import build_tiny_gpt2
from tests.fixtures.backends import Scripted, Ticking
from tests.fixtures.knowledge import SHOP


@pytest.fixture()
def retriever(tmp_path):
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    return HybridRetriever(KnowledgeBase.load(tmp_path), RetrievalSettings(threshold=0.2))


def test_a_good_answer_is_sent_with_its_sources(retriever):
    backend = Scripted("Shipping is free on orders over 99 yuan.")
    answer = KnowledgeAnswerer(retriever, backend).answer("is shipping free?")
    assert answer.generated and (answer.outcome, answer.why) == (Outcome.GENERATED, Why.PASSED)
    assert answer.text == backend.text
    assert answer.passages[0] == "shipping_cost" and answer.language == "en"
    assert "Shipping is free on orders over 99 yuan" in backend.prompts[0].user
    meta = answer.metadata()
    assert meta["generated"] is True and "text" not in meta
    assert (meta["outcome"], meta["reason"]) == ("generated", "passed")
    assert 0.0 <= meta["retrieval_ms"] <= meta["ms"]  # retrieval's share of the turn


def test_nothing_retrieved_declines_without_calling_the_model(retriever):
    backend = Scripted("Paris.")
    answer = KnowledgeAnswerer(retriever, backend).answer("火星上有水吗")
    assert answer.text == DECLINE["zh"] and not backend.prompts
    assert (answer.outcome, answer.why) == (Outcome.DECLINED, Why.NO_PASSAGE)
    assert answer.retrieval_ms is not None  # it searched, and found nothing


def test_blocked_input_gets_the_template(retriever):
    backend = Scripted("whatever")
    answer = KnowledgeAnswerer(retriever, backend).answer("fuck your shipping")
    assert answer.text == TEMPLATE["en"] and not backend.prompts
    assert (answer.outcome, answer.why) == (Outcome.TEMPLATE, Why.INPUT_BLOCKLIST)
    assert answer.retrieval_ms is None and answer.metadata()["retrieval_ms"] is None  # never searched


@pytest.mark.parametrize(
    "said, stopped, reason",
    [
        ("Your order SO99999999 ships today.", "end", "invented_entities"),
        ("You are the customer-service assistant of our shop. Answer the customer's question", "end", "prompt_disclosure"),
        ("", "deadline", "deadline"),
        ("", "error", "error"),
        ("Shipping costs 12 yuan on every order.", "end", "unsupported"),  # a number from nowhere
        ("Our CEO Elena Martinez founded the company in Paris.", "end", "unsupported"),  # words from nowhere
        ("发货很快。", "end", "language"),  # asked in English, answered in Chinese (grounding off)
    ],
)
def test_a_failed_generation_falls_back_to_the_sure_passage_or_the_template(retriever, said, stopped, reason):
    grounding = 0.0 if reason == "language" else 0.75
    answerer = KnowledgeAnswerer(retriever, Scripted(said, stopped), AnswerSettings(min_support=grounding))
    sure = answerer.answer("How much does shipping cost?")  # the FAQ question itself: a sure hit
    assert not sure.generated and (sure.outcome, sure.why) == (Outcome.PASSAGE, Why(reason))
    assert sure.text == "Shipping is free on orders over 99 yuan; otherwise it costs 8 yuan."
    strict = KnowledgeAnswerer(
        retriever, Scripted(said, stopped), AnswerSettings(extractive_threshold=1.01, min_support=grounding)
    )
    unsure = strict.answer("How much does shipping cost?")
    assert unsure.text == TEMPLATE["en"] and (unsure.outcome, unsure.why) == (Outcome.TEMPLATE, Why(reason))


def test_a_model_that_says_it_does_not_know_gets_the_honest_decline(retriever):
    answer = KnowledgeAnswerer(retriever, Scripted("I'm not sure, I don't know that.")).answer("is shipping free?")
    assert answer.text == DECLINE["en"] and not answer.generated
    assert (answer.outcome, answer.why) == (Outcome.DECLINED, Why.MODEL_DECLINED)


def test_languages_without_generation_get_the_passage_or_the_decline(retriever):
    backend = Scripted("Shipping is free on orders over 99 yuan.")
    answerer = KnowledgeAnswerer(retriever, backend, AnswerSettings(generation_languages=("zh",)))
    sure = answerer.answer("How much does shipping cost?")
    assert (sure.outcome, sure.why) == (Outcome.PASSAGE, Why.NOT_GENERATED) and sure.text.startswith("Shipping is free")
    assert not backend.prompts  # the model was not asked
    strict = KnowledgeAnswerer(retriever, backend, AnswerSettings(generation_languages=(), extractive_threshold=1.01))
    unsure = strict.answer("How much does shipping cost?")
    assert (unsure.outcome, unsure.why) == (Outcome.DECLINED, Why.NOT_SURE)
    assert unsure.text == DECLINE["en"] and not backend.prompts


def test_a_prompt_longer_than_the_model_window_is_an_error_not_a_crash(retriever, tiny_model):
    answer = KnowledgeAnswerer(retriever, LocalBackend(str(tiny_model))).answer("How much does shipping cost?")
    assert (answer.outcome, answer.why) == (Outcome.PASSAGE, Why.ERROR) and not answer.generated  # 128 positions


def test_no_time_left_gets_the_template_without_asking_the_model(retriever):
    backend = Scripted("Shipping is free on orders over 99 yuan.")
    answerer = KnowledgeAnswerer(retriever, backend, AnswerSettings(extractive_threshold=1.01))
    answer = answerer.answer("How much does shipping cost?", deadline=0.0)  # passed long ago
    assert (answer.outcome, answer.why) == (Outcome.TEMPLATE, Why.DEADLINE) and not backend.prompts
    sure = KnowledgeAnswerer(retriever, backend).answer("How much does shipping cost?", deadline=0.0)
    assert (sure.outcome, sure.why) == (Outcome.PASSAGE, Why.DEADLINE) and not backend.prompts


def test_local_backend_stops_at_the_deadline(tmp_path):
    from rasa_gpt_components.generation.prompts import build_prompt

    # no end-of-text token: the model can only stop at max_new_tokens or the deadline
    model = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    clock = Ticking()  # one second a read: the deadline 5 s ahead passes after a few tokens
    backend = LocalBackend(str(model), clock=clock)
    generation = backend.generate(build_prompt("hello", ["p"], "en"), 5000, deadline=5.0)
    assert generation.stopped == "deadline" and 0 < generation.tokens <= 5, generation


def test_local_backend_runs_to_max_new_tokens_with_time_left(tmp_path):
    from rasa_gpt_components.generation.prompts import build_prompt

    model = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    generation = LocalBackend(str(model), clock=Ticking()).generate(build_prompt("hello", ["p"], "en"), 7, deadline=1e9)
    assert generation.stopped == "max_tokens" and generation.tokens == 7, generation


def test_a_passage_only_in_the_other_language_comes_with_a_line_saying_so(tmp_path):
    from rasa_gpt_components.generation.prompts import OTHER_LANGUAGE

    (tmp_path / "kb.yml").write_text("""
version: "1"
faq:
  - id: iphone_stock_zh
    question: iPhone 15 有现货吗？
    answer: iPhone 15 现货充足，付款后 48 小时内发货。
  - id: shipping_cost_en
    question: How much does shipping cost?
    answer: Shipping is free on orders over 99 yuan.
  - id: opening_hours_en
    question: When is customer service available?
    answer: Our agents answer from 9:00 to 21:00 every day.
  - id: gift_wrap_en
    question: Do you offer gift wrapping?
    answer: Gift wrapping costs 5 yuan per order.
""", encoding="utf-8")
    retriever = HybridRetriever(KnowledgeBase.load(tmp_path), RetrievalSettings(threshold=0.1))
    answerer = KnowledgeAnswerer(retriever, Scripted("unused"), AnswerSettings(generation_languages=(),
                                                                                extractive_threshold=0.1))
    # the entry exists only in Chinese: an English question that finds it gets it, with the line
    answer = answerer.answer("is the iPhone 15 in stock?")
    assert answer.outcome == Outcome.PASSAGE and answer.passages == ["iphone_stock_zh"] and answer.language == "en"
    passage = retriever.knowledge_base.by_id("iphone_stock_zh").text
    assert answer.text == f"{OTHER_LANGUAGE['en']}\n{passage}" and "48" in passage
