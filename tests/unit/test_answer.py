"""The answer pipeline's decisions, with a real (tiny, random) local model and
with a scripted backend that says exactly what a test needs."""

import time

import pytest

from rasa_gpt_components.generation.answer import AnswerSettings, KnowledgeAnswerer
from rasa_gpt_components.generation.backends import Generation, LocalBackend
from rasa_gpt_components.generation.prompts import DECLINE, TEMPLATE
from rasa_gpt_components.knowledge import KnowledgeBase
from rasa_gpt_components.knowledge.retrieval import HybridRetriever
from tests.unit.test_knowledge import SHOP


class Scripted:
    """A backend that returns a fixed text (the model's side is not under test here)."""

    def __init__(self, text: str, stopped: str = "end") -> None:
        self.text, self.stopped, self.prompts = text, stopped, []

    def generate(self, prompt, max_new_tokens, deadline):
        self.prompts.append(prompt)
        return Generation(self.text, 10, 0.01, self.stopped)


@pytest.fixture()
def retriever(tmp_path):
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")
    return HybridRetriever(KnowledgeBase.load(tmp_path), threshold=0.2)


def test_a_good_answer_is_sent_with_its_sources(retriever):
    backend = Scripted("Shipping is free on orders over 99 yuan.")
    answer = KnowledgeAnswerer(retriever, backend).answer("is shipping free?")
    assert answer.generated and answer.reason == "generated" and answer.text == backend.text
    assert answer.passages[0] == "shipping_cost" and answer.language == "en"
    assert "Shipping is free on orders over 99 yuan" in backend.prompts[0].user
    meta = answer.metadata()
    assert meta["generated"] is True and "text" not in meta and meta["ms"] >= 0


def test_nothing_retrieved_declines_without_calling_the_model(retriever):
    backend = Scripted("Paris.")
    answer = KnowledgeAnswerer(retriever, backend).answer("火星上有水吗")
    assert answer.text == DECLINE["zh"] and answer.reason == "no_passage" and not backend.prompts


def test_blocked_input_gets_the_template(retriever):
    backend = Scripted("whatever")
    answer = KnowledgeAnswerer(retriever, backend).answer("fuck your shipping")
    assert answer.text == TEMPLATE["en"] and answer.reason == "input_blocklist" and not backend.prompts


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
    assert not sure.generated and sure.reason == f"extractive:{reason}"
    assert sure.text == "Shipping is free on orders over 99 yuan; otherwise it costs 8 yuan."
    strict = KnowledgeAnswerer(
        retriever, Scripted(said, stopped), AnswerSettings(extractive_threshold=1.01, min_support=grounding)
    )
    unsure = strict.answer("How much does shipping cost?")
    assert unsure.text == TEMPLATE["en"] and unsure.reason == reason


def test_a_model_that_says_it_does_not_know_gets_the_honest_decline(retriever):
    answer = KnowledgeAnswerer(retriever, Scripted("I'm not sure, I don't know that.")).answer("is shipping free?")
    assert answer.text == DECLINE["en"] and answer.reason == "model_declined" and not answer.generated


def test_languages_without_generation_get_the_passage_or_the_decline(retriever):
    backend = Scripted("Shipping is free on orders over 99 yuan.")
    answerer = KnowledgeAnswerer(retriever, backend, AnswerSettings(generation_languages=("zh",)))
    sure = answerer.answer("How much does shipping cost?")
    assert sure.reason == "extractive:not_generated" and sure.text.startswith("Shipping is free")
    assert not backend.prompts  # the model was not asked
    strict = KnowledgeAnswerer(retriever, backend, AnswerSettings(generation_languages=(), extractive_threshold=1.01))
    unsure = strict.answer("How much does shipping cost?")
    assert unsure.reason == "not_sure" and unsure.text == DECLINE["en"] and not backend.prompts


def test_a_prompt_longer_than_the_model_window_is_an_error_not_a_crash(retriever, tiny_model):
    answer = KnowledgeAnswerer(retriever, LocalBackend(str(tiny_model), compute="float32")).answer(
        "How much does shipping cost?"
    )
    assert answer.reason == "extractive:error" and not answer.generated  # 128 positions


def test_real_local_model_meets_the_deadline(retriever, tmp_path):
    from tests.conftest import build_tiny_gpt2

    model = build_tiny_gpt2(tmp_path / "long", n_layer=2, n_positions=8192)
    backend = LocalBackend(str(model), compute="float32")
    answerer = KnowledgeAnswerer(retriever, backend, AnswerSettings(max_new_tokens=5000, extractive_threshold=1.01))
    started = time.monotonic()
    answer = answerer.answer("How much does shipping cost?", deadline=started + 0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.1, elapsed
    # a random model says nothing a customer should read: every path ends in the template
    assert answer.text == TEMPLATE["en"] and not answer.generated, answer


def test_local_backend_stops_at_the_deadline(tmp_path):
    from rasa_gpt_components.generation.prompts import build_prompt
    from tests.conftest import build_tiny_gpt2

    # no end-of-text token: the model can only stop at max_new_tokens or the deadline
    model = build_tiny_gpt2(tmp_path / "endless", eos_token=None, unk_token="<unk>", pad_token="<pad>", n_positions=8192)
    backend = LocalBackend(str(model), compute="float32")
    started = time.monotonic()
    generation = backend.generate(build_prompt("hello", ["p"], "en"), 5000, started + 0.3)
    assert generation.stopped == "deadline" and generation.tokens > 0
    assert time.monotonic() - started < 0.3 + 0.1
