"""Typos repaired in what GPTIntentClassifier reads (nlu/spelling.py), and the seeded typos of
``rasa-gpt bench intent --typos`` (bench/typos.py)."""

import random

import pytest

from rasa_gpt_components.bench.typos import with_typo, with_typos
from rasa_gpt_components.nlu.spelling import SpellingCorrector

EXAMPLES = [
    "I want a refund", "refund please", "where is my order", "exchange it for a bigger size",
    "I want to return this", "change my delivery address", "please change the address", "cancel that",
    "talk to a human", "recommend some headphones", "a red dress",
]


@pytest.fixture(scope="module")
def corrector() -> SpellingCorrector:
    return SpellingCorrector.fit(EXAMPLES)


@pytest.mark.parametrize("typed, meant", [
    ("refnd please", "refund please"),                # a letter missing
    ("i want to retrun this", "i want to return this"),  # two letters swapped
    ("exhange pls", "exchange pls"),
    ("talk to a humna", "talk to a human"),
    ("recomend me some headphnoes", "recommend me some headphones"),
    ("cancle that", "cancel that"),
    ("where is my ordder", "where is my order"),      # a letter too many
    ("REFND NOW", "REFUND NOW"),                      # the case is kept
    ("Exhange", "Exchange"),
])
def test_a_typo_becomes_the_bots_word(corrector, typed, meant):
    assert corrector.correct(typed) == meant


def test_the_word_the_examples_use_most_wins(corrector):
    # "adress" is one edit from "address" (used twice) and "dress" (once)
    assert corrector.correct("my adress") == "my address"


@pytest.mark.parametrize("text", [
    "the east gate, my pride and joy",     # English words, one edit from none of the bot's
    "went to the shop",                    # "went" is one edit from "want", and an English word
    "hubei tianfu chai",                   # names the word list does not know, no bot word one edit away
    "No. 9 Lane 200, Changle Road, Xuhui District",  # pinyin, though "changle" is one edit from "change"
    "Flat 6, 88 Nanjing Road, Heping District",      # and "heping" from "helping"
    "我要退款 ES2611210006 refnd",          # Chinese and the order number stay as typed
    "pls thx ur",                          # too short to guess
    "",
])
def test_english_words_and_other_text_stay_as_typed(corrector, text):
    fixed = corrector.correct(text)
    if "refnd" in text:
        assert fixed == text.replace("refnd", "refund")
    else:
        assert fixed == text


def test_pinyin_is_told_from_typos():
    from rasa_gpt_components.nlu.spelling import is_pinyin

    assert all(is_pinyin(w) for w in ("changle", "heping", "xuhui", "chai", "tianfu", "zhongguancun", "wangfujing"))
    assert not any(is_pinyin(w) for w in ("refnd", "retrun", "exhange", "humna", "cancle", "adress", "wher"))


def test_stored_and_read_back(corrector):
    import json

    again = SpellingCorrector.from_json(json.loads(json.dumps(corrector.to_json())))
    assert again.counts == corrector.counts and again.counts["address"] == 2
    assert again.correct("exhange my adress") == corrector.correct("exhange my adress") == "exchange my address"


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_bench_typos_are_one_edit_in_one_long_word_and_seeded():
    texts = ["How do I locate my card?", "I still have not received my new card", "我要退款", "ok hi"] * 25
    once, again = with_typos(texts, 3), with_typos(texts, 3)
    assert once == again and once != with_typos(texts, 4)
    for text, typo in zip(texts, once):
        if text in ("我要退款", "ok hi"):  # no word of 4 letters: unchanged
            assert typo == text
            continue
        assert typo != text and _distance(text, typo) == 1
        changed = [(a, b) for a, b in zip(text.split(), typo.split()) if a != b]
        assert len(changed) == 1 and len(changed[0][0]) >= 4 and changed[0][0][0] == changed[0][1][0]
    assert with_typo("aaaa", random.Random(0)) != "aaaa"  # a swap of equal letters still makes a typo
