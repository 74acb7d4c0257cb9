"""Retrieval learned from the knowledge base (knowledge/topics.py), for real: the
topic classifier on the packaged encoders tells near-duplicate entries apart, finds
an entry written only in the other language, survives saving, and `rasa-gpt
knowledge fit --topics` writes what GenerativeNLG then retrieves with."""

import json

import numpy as np
import pytest

from rasa_gpt_components.knowledge.base import KnowledgeBase
from rasa_gpt_components.knowledge.fit import RetrievalFit
from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
from rasa_gpt_components.knowledge.topics import TopicModel

pytestmark = pytest.mark.integration

NEAR_DUPLICATES = """
version: "1"
faq:
  - id: ship_hk_zh
    language: zh
    question: 能寄到香港吗？
    paraphrases: [香港可以送吗]
    answer: 可以。寄往香港的订单由顺丰发出，3-5 个工作日送达，运费 30 元。
  - id: ship_hk_en
    language: en
    question: Do you ship to Hong Kong?
    paraphrases: [Can you deliver to Hong Kong]
    answer: Yes. Orders to Hong Kong go by SF Express, arrive in 3-5 working days and cost 30 yuan to ship.
  - id: ship_macau_zh
    language: zh
    question: 能寄到澳门吗？
    paraphrases: [澳门可以送吗]
    answer: 可以。寄往澳门的订单 5-7 个工作日送达，运费 40 元。
  - id: ship_macau_en
    language: en
    question: Do you ship to Macau?
    paraphrases: [Can you deliver to Macau]
    answer: Yes. Orders to Macau arrive in 5-7 working days and cost 40 yuan to ship.
  - id: refund_card_zh
    language: zh
    question: 信用卡付款的退款多久到账？
    answer: 信用卡支付的订单，退款在审核通过后 7-15 个工作日退回原卡。
  - id: refund_wallet_zh
    language: zh
    question: 余额支付的退款多久到账？
    answer: 用账户余额支付的订单，退款审核通过后立即退回余额。
  - id: opening_hours_en
    language: en
    question: When is customer service available?
    paraphrases: [What are your support hours]
    answer: Our agents answer from 9:00 to 21:00 every day.
"""


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kb")
    (folder / "shop.yml").write_text(NEAR_DUPLICATES, encoding="utf-8")
    return KnowledgeBase.load(folder)


@pytest.fixture(scope="module")
def topics(knowledge):
    return TopicModel.train(knowledge)


def _best(topics, question):
    probability = topics.probabilities(question)
    return max(probability, key=probability.get)


@pytest.mark.parametrize("question, topic", [
    ("how many days does a parcel to Macau take and what does it cost?", "ship_macau"),
    ("我在香港，快递几天能到？", "ship_hk"),
    ("我用信用卡买的，退的钱几天能回到卡上", "refund_card"),
    ("付款用的是余额，退款会马上回来吗", "refund_wallet"),
    ("客服几点上班", "opening_hours"),  # written only in English
])
def test_the_topic_model_tells_near_duplicates_apart_in_both_languages(topics, question, topic):
    assert _best(topics, question) == topic


def test_a_saved_topic_model_gives_the_same_probabilities(topics, tmp_path):
    topics.save(tmp_path / "topics.npz")
    loaded = TopicModel.load(tmp_path / "topics.npz")
    loaded.check()
    question = "澳门的运费多少"
    a, b = topics.probabilities(question), loaded.probabilities(question)
    assert a.keys() == b.keys() and np.allclose(list(a.values()), list(b.values()))
    assert abs(sum(a.values()) - 1.0) < 1e-6


def test_a_topic_model_for_other_encoders_or_a_broken_file_is_a_clear_error(topics, tmp_path):
    stale = TopicModel(topics.head, topics.features, "another-encoder")
    with pytest.raises(ValueError, match="encoders changed"):
        stale.check()
    (tmp_path / "broken.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="knowledge fit --topics"):
        TopicModel.load(tmp_path / "broken.npz")


def test_the_retriever_ranks_by_the_topic_model_and_answers_in_the_customers_language(knowledge, topics):
    fit = RetrievalFit(None, 1.0, {}, "", topic_weight=1.0, topic_model="topics.npz")
    retriever = HybridRetriever(knowledge, RetrievalSettings(bm25_weight=1.0, threshold=0.0), None, fit, topics)
    hits = retriever.search("澳门的快递要几天", top_k=2, language="zh")
    assert [h.passage.id for h in hits][:1] == ["ship_macau_zh"]
    assert hits[0].score == pytest.approx(topics.probabilities("澳门的快递要几天")["ship_macau"])
    english = retriever.search("how long to Macau?", top_k=1, language="en")
    assert english[0].passage.id == "ship_macau_en"


def test_knowledge_fit_with_topics_writes_what_the_nlg_retrieves_with(knowledge, tmp_path):
    from rasa.shared.exceptions import RasaException

    from rasa_gpt_components.cli import main
    from tests.fixtures.knowledge import fallback_reply, fit_inputs, fitted_nlg

    kb, dev = fit_inputs(tmp_path, NEAR_DUPLICATES, [
        ("en", "answerable", "what does delivery to Macau cost", "ship_macau_en"),
        ("en", "answerable", "Hong Kong delivery time?", "ship_hk_en"),
        ("en", "unanswerable", "do you sell second-hand cars", None),
        ("zh", "answerable", "信用卡的钱多久退回来", "refund_card_zh"),
        ("zh", "unanswerable", "你们招聘程序员吗", None),
    ])
    assert main(["knowledge", "fit", "--kb", str(kb), "--dev", str(dev),
                 "--encoder", "multilingual-e5-small-int8", "--topics", "--out", str(tmp_path / "fit.json")]) == 0
    written = json.loads((tmp_path / "fit.json").read_text(encoding="utf-8"))
    assert written["topic_model"] == "fit.topics.npz" and (tmp_path / "fit.topics.npz").is_file()
    assert 0.0 <= written["topic_weight"] <= 1.0 and "right_first_by_topic_weight" in written["development"]

    nlg, domain = fitted_nlg(kb, tmp_path / "fit.json")
    retriever = nlg.answerer.retriever
    assert retriever.topics is not None and retriever.topic_weight == written["topic_weight"]
    reply = fallback_reply(nlg, domain, "I live in Macau, how many days until my parcel arrives?")
    assert reply["metadata"]["generative"]["passages"] == ["ship_macau_en"], reply
    assert "5-7 working days" in reply["text"]

    (tmp_path / "fit.topics.npz").write_bytes(b"broken")
    with pytest.raises(RasaException, match="topic model"):
        fitted_nlg(kb, tmp_path / "fit.json")
