"""The coverage gate: how much of a question a knowledge-base entry covers, token by token
(knowledge/coverage.py), and the retriever that answers only what its best entries cover.

The encoder here is a stand-in whose tokens are words and whose states are one random
unit vector per word (the same word, the same state; no two words alike): coverage is
then the idf-weighted share of the question's words an entry uses. e5's own token
states are tested in tests/integration/test_sentence_encoders.py."""

import zlib

import numpy as np
import pytest
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.knowledge import KnowledgeBase
from rasa_gpt_components.knowledge.coverage import TokenCoverage
from rasa_gpt_components.knowledge.retrieval import HybridRetriever, RetrievalSettings
from rasa_gpt_components.text import without_lead_in

KB = """
version: "1"
faq:
  - id: macau_en
    question: Do you ship to Macau?
    paraphrases: ["delivery to Macau"]
    answer: Yes, we ship to Macau; delivery takes 3 to 5 days.
  - id: gift_card_en
    question: How do I use a gift card?
    answer: Enter the gift card code at checkout.
  - id: returns_en
    question: How do I return an item?
    answer: Start a return in your orders within 7 days of delivery.
"""


class WordStates:
    """A stand-in sentence encoder with token states: one token a word."""

    fingerprint = "words"
    dimension = 32
    has_token_states = True

    def __init__(self) -> None:
        self.calls = 0

    def _vector(self, word: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(word.encode())).normal(size=self.dimension)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode(self, texts, kind="query", **_):
        out = np.array([sum((self._vector(w) for w in _words(t)), np.zeros(self.dimension)) for t in texts])
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)).astype(np.float32)

    def token_states(self, texts, kind="query"):
        self.calls += 1
        return [(np.array([zlib.crc32(w.encode()) for w in _words(t)], dtype=np.int64),
                 np.array([self._vector(w) for w in _words(t)]).reshape(-1, self.dimension)) for t in texts]


def _words(text):
    return [w.strip("?.,;!").lower() for w in text.split() if w.strip("?.,;!")]


@pytest.fixture()
def kb(tmp_path):
    (tmp_path / "kb.yml").write_text(KB, encoding="utf-8")
    return KnowledgeBase.load(tmp_path)


def test_coverage_is_the_share_of_the_question_an_entry_uses(kb):
    coverage = TokenCoverage(kb.passages, WordStates())
    macau, gift, _ = range(3)
    full, near_miss = coverage("do you ship to macau", [macau, gift])
    assert full == pytest.approx(1.0, abs=1e-3)  # every word of the question is in the Macau entry
    assert near_miss < 0.5
    # a near miss: the entry's words, and one (rare: it weighs most) the base never uses
    asked = coverage("do you ship to macau by hovercraft", [macau])[0]
    assert 0.5 < asked < 1.0
    assert coverage("do you ship to macau by the", [macau])[0] > asked  # a common word weighs less
    assert coverage("", [macau]).tolist() == [0.0]


def test_the_gate_answers_what_the_best_entries_cover_and_declines_a_near_miss(kb):
    settings = RetrievalSettings(bm25_weight=0.5, gate="coverage", coverage_threshold=0.9, top_k=3)
    retriever = HybridRetriever(kb, settings, WordStates())
    assert retriever.decides
    hits = retriever.search("do you ship to macau", language="en")
    assert [h.passage.id for h in hits] == ["macau_en"] and hits[0].coverage == pytest.approx(1.0, abs=1e-3)
    # close to the Macau entry by its words, about something no entry says
    assert retriever.search("do you ship hovercraft parts to macau", language="en") == []
    # per language; a language without its own threshold gets the strictest
    lenient = RetrievalSettings(gate="coverage", coverage_threshold={"en": 0.5, "zh": 0.95})
    assert lenient.coverage_threshold_for("en") == 0.5 and lenient.coverage_threshold_for("fr") == 0.95
    assert HybridRetriever(kb, lenient, WordStates()).search("do you ship hovercraft parts to macau", language="en")


def test_the_best_covered_entry_comes_first_whatever_its_score(kb):
    retriever = HybridRetriever(kb, RetrievalSettings(gate="coverage", coverage_threshold=0.4, top_k=3), WordStates())
    question = "how do I return an item bought with a gift card"
    by_score = [h.passage.id for h in HybridRetriever(kb, RetrievalSettings(threshold=0.0), WordStates()).search(
        question, language="en")]
    assert by_score == ["returns_en", "gift_card_en", "macau_en"]
    read = []

    def covers(text, indices):  # the candidates in score order; gift cards covered best, Macau not enough
        read.append((text, [kb.passages[i].id for i in indices]))
        return np.array([{"returns_en": 0.6, "gift_card_en": 0.9, "macau_en": 0.3}[kb.passages[i].id] for i in indices])

    retriever.coverage = covers
    hits = retriever.search(question, language="en")
    assert [(h.passage.id, h.coverage) for h in hits] == [("gift_card_en", 0.9), ("returns_en", 0.6)]
    assert read == [(question, by_score)]
    two = HybridRetriever(kb, RetrievalSettings(gate="coverage", coverage_threshold=0.4, coverage_candidates=2), WordStates())
    two.coverage = covers
    assert [h.passage.id for h in two.search(question, language="en")] == ["gift_card_en", "returns_en"]
    assert read[-1] == (question, by_score[:2])  # only the best candidates are read


def test_token_states_of_the_knowledge_base_are_read_from_disk_at_the_next_start(kb):
    encoder = WordStates()
    settings = RetrievalSettings(gate="coverage")
    HybridRetriever(kb, settings, encoder)
    first = encoder.calls
    assert first > 0
    again = HybridRetriever(kb, settings, encoder)
    assert encoder.calls == first  # read from disk, nothing encoded
    assert again.search("do you ship to macau", language="en")[0].coverage == pytest.approx(1.0, abs=1e-3)


def test_settings_that_do_not_go_together_are_clear_errors(kb, tmp_path):
    with pytest.raises(ValueError, match="retrieval.gate must be one of score, coverage"):
        RetrievalSettings(gate="vibes")
    for bad in (1.5, "high", {"en": -0.1}, True):
        with pytest.raises(ValueError, match="coverage_threshold"):
            RetrievalSettings(gate="coverage", coverage_threshold=bad)
    with pytest.raises(ValueError, match="coverage_candidates must be at least 1"):
        RetrievalSettings(gate="coverage", coverage_candidates=0)

    class Vectors(WordStates):
        has_token_states = False

    with pytest.raises(ValueError, match="multilingual-e5-small"):
        HybridRetriever(kb, RetrievalSettings(gate="coverage"), Vectors())
    with pytest.raises(ValueError, match="multilingual-e5-small"):
        HybridRetriever(kb, RetrievalSettings(gate="coverage"), None)


def test_the_nlg_says_what_is_wrong_when_the_encoder_has_no_token_states(tmp_path):
    from rasa.utils.endpoints import EndpointConfig

    from rasa_gpt_components.generation.nlg import GenerativeNLG

    (tmp_path / "kb.yml").write_text(KB, encoding="utf-8")
    config = {"type": "rasa_gpt_components.GenerativeNLG", "knowledge": str(tmp_path), "backend": "openai",
              "base_url": "http://127.0.0.1:9", "retrieval": {"bm25_weight": 1.0, "gate": "coverage"}}
    with pytest.raises(RasaException, match="GenerativeNLG: retrieval.gate: coverage reads the states of each token"):
        GenerativeNLG(EndpointConfig.from_dict(config))


def test_a_question_that_only_names_something_else_is_read_with_the_previous_message(kb):
    retriever = HybridRetriever(kb, RetrievalSettings(gate="coverage", coverage_threshold=0.5), WordStates())
    before = "does delivery take 3 to 5 days"
    # "what about macau?" means the question before it: alone it covers too little
    assert retriever.search("what about macau?", language="en") == []
    hits = retriever.search("what about macau?", language="en", context=before)
    assert hits[0].passage.id == "macau_en" and hits[0].coverage > 0.5
    # a question of its own is read alone, whatever came before
    alone = retriever.search("what about macau in 3 days?", language="en")[0].coverage
    assert retriever.search("what about macau in 3 days?", language="en", context=before)[0].coverage == alone


def test_what_leads_in_to_a_question_does_not_count_against_it(kb):
    """"quick question: do you ship to macau" covered less than the question alone: the base never
    says "quick question". Read without it too (text.without_lead_in), the higher coverage counts."""
    question, led_in = "do you ship to macau", "quick question: do you ship to macau"
    on = HybridRetriever(kb, RetrievalSettings(gate="coverage", coverage_threshold=0.8), WordStates())
    off = HybridRetriever(kb, RetrievalSettings(gate="coverage", coverage_threshold=0.8,
                                                coverage_without_lead_in=False), WordStates())
    alone = on.search(question, language="en")[0]
    assert off.search(led_in, language="en") == []  # "quick" and "question" are words of no entry
    assert on.search(led_in, language="en")[0].coverage == alone.coverage and alone.passage.id == "macau_en"
    # chatter that names something is no lead-in: read as it is
    assert on.search("i paid with a gift card, do you ship to macau", language="en") == []


def test_the_fit_chooses_the_coverage_gate_and_its_thresholds_when_they_balance_best(kb, tmp_path):
    """Near misses share the entry's words and add one it never uses: the score cannot tell
    them from the answerable questions, coverage can. `rasa-gpt knowledge fit` weighs the
    coverage gate when the encoder gives token states; the NLG's retriever then gates so,
    with the fit's thresholds."""
    from rasa_gpt_components.knowledge.fit import RetrievalFit, fit

    dev = [{"text": t, "language": "en", "kind": "answerable", "passage": p} for t, p in (
        ("do you ship to macau", "macau_en"), ("delivery to macau takes 3 to 5 days?", "macau_en"),
        ("how do I use a gift card", "gift_card_en"), ("how do I return an item", "returns_en"))]
    dev += [{"text": t, "language": "en", "kind": "unanswerable"} for t in (
        "do you ship hovercraft parts to macau", "how do I return an item by pigeon",
        "can I use a gift card abroad", "what is the weather")]
    fitting = HybridRetriever(kb, RetrievalSettings(threshold=0.0, gate="coverage"), WordStates())
    result = fit(fitting, dev)
    assert result.gate == "coverage"
    balance = result.development["balance_by_gate"]
    assert balance["coverage"] == 1.0 > balance["score"]
    result.save(tmp_path / "fit.json")
    loaded = RetrievalFit.load(tmp_path / "fit.json")
    assert loaded.gate == "coverage" and loaded.thresholds == result.thresholds
    retriever = HybridRetriever(kb, RetrievalSettings(threshold=0.0), WordStates(), loaded)
    assert retriever.decides and retriever.coverage is not None
    assert [h.passage.id for h in retriever.search("do you ship to macau", language="en")][:1] == ["macau_en"]
    assert retriever.search("do you ship hovercraft parts to macau", language="en") == []
    # without token states there is no coverage to weigh, and a gate in both places is an error
    assert fit(HybridRetriever(kb, RetrievalSettings(threshold=0.0), WordStates()), dev).gate != "coverage"
    with pytest.raises(ValueError, match="use one of them"):
        HybridRetriever(kb, RetrievalSettings(gate="coverage"), WordStates(), loaded)


@pytest.mark.parametrize("text, rest", [
    ("hmm first - once the beans are back, how many days before the money goes out?",
     "once the beans are back, how many days before the money goes out?"),
    ("if I go ahead, who covers the postage?", "who covers the postage?"),
    ("quick question: do you ship to Canada?", "do you ship to Canada?"),
    ("btw do you ship to canada", "do you ship to canada"),
    ("Actually, is there a warranty?", "is there a warranty?"),
    ("before I confirm, can I pay by card?", "can I pay by card?"),
    ("等下 我先问下 你们能送到新疆吗", "你们能送到新疆吗"),
    ("先问一下哈，脸用了过敏可以退吗？", "脸用了过敏可以退吗？"),
    ("对了发票怎么开", "发票怎么开"),
    ("那个，多少钱", "多少钱"),
    # a question about to be asked before a step of the form, a sentence that holds the conversation
    # before a lead-in (holdout sets 28-30)
    ("发地址之前问一下，你们几点发货？", "你们几点发货？"), ("说原因前先问个事，能开发票吗", "能开发票吗"),
    ("改之前先问问，能退差价吗", "能退差价吗"), ("题外话，你们招人吗", "你们招人吗"),
    ("单号我等下发你。先问一句，能送到新疆吗？", "能送到新疆吗？"),
    ("let me dig it up. meanwhile, do you ship to Macau?", "do you ship to Macau?"),
    ("one thing before the reason: who is the courier?", "who is the courier?"),
    ("before I get to that, do you ship to Macau?", "do you ship to Macau?"),
    ("while I dig it up: can I sign in with WeChat?", "can I sign in with WeChat?"),
    ("also, separate thing: why is the cart capped?", "why is the cart capped?"),
    # nothing leads in: chatter that names something, a word that starts the question, a bare particle
    ("I paid with a Mastercard, will I lose anything?", None), ("first time ordering here, do you ship abroad?", None),
    ("actually is there a warranty?", None), ("how long does it take?", None), ("请问你们几点下班", None),
    ("那个多少钱", None), ("还有吗", None), ("ok", None), ("嗯", None), ("", None),
    # a time before something, a first sentence with no lead-in after it
    ("我三天前买的耳机能退吗", None), ("双十一前买的能保价吗", None), ("It broke after two days. can I get a refund?", None),
])
def test_what_leads_in_to_a_question(text, rest):
    assert without_lead_in(text) == rest
