"""The calibrated head and its out-of-scope detector on synthetic features."""

import numpy as np
import pytest

from rasa_gpt_components.nlu.head import HeadSettings, IntentHead, fit_head, fit_temperature, softmax

DEFAULTS = HeadSettings(random_seed=0)


def clusters(seed=0, per_class=60, classes=5, dim=16, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(classes, dim))
    x = np.concatenate([c + rng.normal(0, spread, size=(per_class, dim)) for c in centres])
    y = [f"intent_{k}" for k in range(classes) for _ in range(per_class)]
    return x, y, centres, rng


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 2, size=(4000, 6))
    y = np.array([rng.choice(6, p=p) for p in softmax(true_logits)])
    assert abs(fit_temperature(true_logits * 3.0, y) - 3.0) < 0.3


def test_head_separates_clusters_and_flags_unseen_intents():
    x, y, centres, rng = clusters()
    head = fit_head(x, y, HeadSettings(random_seed=0, oos_rate=0.05))
    test_in = np.concatenate([c + rng.normal(0, 0.6, size=(40, 16)) for c in centres])
    expected = [f"intent_{k}" for k in range(5) for _ in range(40)]
    predicted = [head.labels[k] for k in head.predict_proba(test_in).argmax(1)]
    assert np.mean([p == e for p, e in zip(predicted, expected)]) > 0.98
    # messages of intents the head never saw: new centres, same spread
    unseen = np.concatenate([c + rng.normal(0, 0.6, size=(40, 16)) for c in rng.normal(0, 3, size=(5, 16))])
    flagged_unseen = head.is_out_of_scope(unseen).mean()
    flagged_in = head.is_out_of_scope(test_in).mean()
    assert flagged_unseen > 0.6 and flagged_in < 0.1, (flagged_unseen, flagged_in)
    _, p_oos = head.predict(np.concatenate([unseen, test_in]))
    assert ((p_oos == 0) | (p_oos > 0.5)).all() and (p_oos < 1).all()


def test_confidences_are_calibrated_on_overlapping_classes():
    x, y, centres, rng = clusters(seed=2, per_class=300, spread=2.5)
    head = fit_head(x[::2], y[::2], DEFAULTS)
    probabilities = head.predict_proba(x[1::2])
    confidence = probabilities.max(1)
    correct = np.array([head.labels[k] for k in probabilities.argmax(1)]) == np.array(y[1::2])
    # expected calibration error over 10 bins
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
        for b in range(10)
        if (bins == b).any()
    )
    assert ece < 0.06, ece


def test_round_trip_through_arrays():
    x, y, _, _ = clusters()
    head = fit_head(x, y, DEFAULTS)
    again = IntentHead.from_arrays(head.to_arrays())
    np.testing.assert_allclose(again.predict_proba(x), head.predict_proba(x))
    np.testing.assert_array_equal(again.is_out_of_scope(x), head.is_out_of_scope(x))
    assert again.labels == head.labels


def test_single_example_intents_train_without_calibration():
    x, y, _, _ = clusters(per_class=1)
    head = fit_head(x, y, DEFAULTS)
    assert head.temperature == 1.0 and not head.is_out_of_scope(x).any()
    assert [head.labels[k] for k in head.predict_proba(x).argmax(1)] == y


def test_lexical_features_carry_what_the_gpt_features_miss():
    rng = np.random.default_rng(3)
    words = {"refund": "退款", "shipping": "发货", "invoice": "发票"}
    texts, y = [], []
    for intent, word in words.items():
        for k in range(20):
            texts.append(f"{word} 问题 {k}" if k % 2 else f"about {intent} please {k}")
            y.append(intent)
    noise = rng.normal(size=(len(texts), 8))  # GPT features that say nothing
    dense_only = fit_head(noise, y, HeadSettings(random_seed=0, oos_detection=False))
    hybrid = fit_head(noise, y, HeadSettings(random_seed=0, oos_detection=False), texts=texts)
    tests = ["我要退款", "发票开错了", "about shipping please"]
    fresh = rng.normal(size=(3, 8))
    predicted = [hybrid.labels[k] for k in hybrid.predict_proba(fresh, tests).argmax(1)]
    assert predicted == ["refund", "invoice", "shipping"]
    again = IntentHead.from_arrays(hybrid.to_arrays())
    np.testing.assert_allclose(again.predict_proba(fresh, tests), hybrid.predict_proba(fresh, tests), rtol=1e-5)
    assert dense_only.lexical is None
    logits = hybrid.logits(fresh, tests)
    lexical = hybrid.lexical.transform(tests).toarray() @ hybrid.lexical_weights.T
    hybrid.lexical_weights = 2 * hybrid.lexical_weights  # new weights: their columns are taken anew
    np.testing.assert_allclose(hybrid.logits(fresh, tests), logits + lexical, rtol=1e-4, atol=1e-6)


def test_char_ngrams_round_trip_and_unknown_text():
    from rasa_gpt_components.nlu.lexical import CharNgrams

    grams = CharNgrams.fit(["where is my order", "我的订单"])
    matrix = grams.transform(["my order", "", "zzz", "订单"])
    assert matrix.shape == (4, grams.dimension)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(1))).ravel()
    np.testing.assert_allclose(norms[[0, 3]], 1.0, rtol=1e-5)
    assert norms[1] == 0
    again = CharNgrams.from_arrays(grams.to_arrays())
    assert (again.transform(["my order"]) != grams.transform(["my order"])).nnz == 0


def test_heads_can_share_one_ngram_vocabulary_and_store_it_once():
    from rasa_gpt_components.nlu.lexical import CharNgrams

    texts = ["where is my order", "我的订单呢", "refund please", "我要退款", "order status", "退款多久到账"]
    y = ["order", "order", "refund", "refund", "order", "refund"]
    settings = HeadSettings(random_seed=0, oos_detection=False, calibration_folds=2)
    x = np.random.default_rng(0).normal(size=(len(texts), 4))
    own = fit_head(x, y, settings, texts=texts)
    shared = fit_head(x, y, settings, texts=texts, ngrams=own.lexical)
    assert shared.lexical is own.lexical
    np.testing.assert_allclose(shared.lexical_weights, own.lexical_weights, rtol=1e-5, atol=1e-7)
    arrays = shared.to_arrays(with_ngrams=False)
    assert "lex_terms" not in arrays and "lex_terms" in own.to_arrays()
    again = IntentHead.from_arrays(arrays)
    assert again.lexical is None
    again.lexical = own.lexical
    np.testing.assert_allclose(again.predict_proba(x, texts), shared.predict_proba(x, texts), rtol=1e-5)

    grams = CharNgrams.fit(texts)
    first = grams.transform(["my order", "退款"])
    assert grams.transform(("my order", "退款")) is first  # the same batch is transformed once
    other = grams.transform(["refund"])
    assert other is not first and other.shape[0] == 1
    again = grams.transform(["my order", "退款"])
    grams.forget()
    fresh = grams.transform(["my order", "退款"])
    assert fresh is not again and (fresh != first).nnz == 0


def test_balanced_class_weights_keep_a_rare_intent_apart_from_a_large_one():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0.0, 1.0, (300, 8)), rng.normal(0.8, 1.0, (15, 8))])  # overlapping
    y = ["large"] * 300 + ["rare"] * 15
    unseen_rare = rng.normal(0.8, 1.0, (400, 8))

    def rare_recall(head) -> float:
        return float(np.mean(np.array(head.labels)[head.predict_proba(unseen_rare).argmax(1)] == "rare"))

    by_count = fit_head(x, y, HeadSettings(random_seed=0, oos_detection=False, class_weight=None))
    balanced = fit_head(x, y, HeadSettings(random_seed=0, oos_detection=False, class_weight="balanced"))
    assert rare_recall(balanced) > rare_recall(by_count) + 0.2, (rare_recall(balanced), rare_recall(by_count))
    with pytest.raises(ValueError, match="class_weight"):
        HeadSettings(random_seed=0, class_weight="inverse")


def off_the_map(seed=3):
    """Intents that live in the first 8 of 16 dimensions, and messages that look like one
    of them there but are far from every example in the other 8 (where the examples vary less)."""
    rng = np.random.default_rng(seed)
    centres = np.hstack([rng.normal(0, 3, size=(5, 8)), np.zeros((5, 8))])
    x = np.concatenate([c + np.hstack([rng.normal(0, 0.6, (60, 8)), rng.normal(0, 0.6, (60, 8))]) for c in centres])
    y = [f"intent_{k}" for k in range(5) for _ in range(60)]
    test_in = np.concatenate([c + np.hstack([rng.normal(0, 0.6, (40, 8)), rng.normal(0, 0.6, (40, 8))])
                              for c in centres])
    far = np.concatenate([c + np.hstack([rng.normal(0, 0.6, (40, 8)), rng.normal(0, 3.0, (40, 8))])
                          for c in centres])
    return x, y, test_in, far


def test_neighbours_flag_messages_far_from_every_example_that_the_energy_misses():
    x, y, test_in, far = off_the_map()
    energy_only = fit_head(x, y, HeadSettings(random_seed=0, oos_rate=0.05))
    with_neighbours = fit_head(x, y, HeadSettings(random_seed=0, oos_rate=0.05, oos_neighbours=5,
                                                  oos_neighbour_weight=1.0))
    assert with_neighbours.is_out_of_scope(far).mean() > energy_only.is_out_of_scope(far).mean() + 0.2
    assert with_neighbours.is_out_of_scope(test_in).mean() < 0.1
    # the head's intents are those of energy alone: the neighbours only change what is flagged
    assert (with_neighbours.predict_proba(test_in).argmax(1) == energy_only.predict_proba(test_in).argmax(1)).all()


def test_neighbours_round_trip_through_arrays():
    x, y, _, far = off_the_map()
    head = fit_head(x, y, HeadSettings(random_seed=0, oos_neighbours=3))
    again = IntentHead.from_arrays(head.to_arrays())
    assert again.neighbour_count == 3 and again.neighbours.shape == x.shape
    np.testing.assert_allclose(again.predict(far)[1], head.predict(far)[1], atol=1e-3)
    without = IntentHead.from_arrays(fit_head(x, y, DEFAULTS).to_arrays())
    assert without.neighbours is None and "neighbours" not in fit_head(x, y, DEFAULTS).to_arrays()


@pytest.mark.parametrize("options", [{"oos_neighbours": -1}, {"oos_neighbours": 2.5}, {"oos_neighbour_weight": -0.5}])
def test_neighbour_settings_are_checked(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        HeadSettings(random_seed=0, **options)
