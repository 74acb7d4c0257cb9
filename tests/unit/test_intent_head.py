"""The calibrated head and its out-of-scope detector on synthetic features."""

import numpy as np

from rasa_gpt_components.nlu.head import IntentHead, fit_head, fit_temperature, softmax


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


def test_head_separates_clusters_and_flags_far_points():
    x, y, centres, rng = clusters()
    head = fit_head(x, y, oos_rate=0.05)
    test_in = np.concatenate([c + rng.normal(0, 0.6, size=(40, 16)) for c in centres])
    expected = [f"intent_{k}" for k in range(5) for _ in range(40)]
    predicted = [head.labels[k] for k in head.predict_proba(test_in).argmax(1)]
    assert np.mean([p == e for p, e in zip(predicted, expected)]) > 0.98
    far = rng.normal(0, 3, size=(200, 16)) * 2.0
    assert head.is_out_of_scope(far).mean() > 0.9
    assert head.is_out_of_scope(test_in).mean() < 0.15
    probability = head.oos_probability(np.concatenate([far, test_in]))
    assert ((probability == 0) | (probability > 0.5)).all() and (probability < 1).all()


def test_confidences_are_calibrated_on_overlapping_classes():
    x, y, centres, rng = clusters(seed=2, per_class=300, spread=2.5)
    head = fit_head(x[::2], y[::2])
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
    head = fit_head(x, y)
    again = IntentHead.from_arrays(head.to_arrays())
    np.testing.assert_allclose(again.predict_proba(x), head.predict_proba(x))
    np.testing.assert_array_equal(again.is_out_of_scope(x), head.is_out_of_scope(x))
    assert again.labels == head.labels


def test_single_example_intents_train_without_calibration():
    x, y, _, _ = clusters(per_class=1)
    head = fit_head(x, y)
    assert head.temperature == 1.0 and not head.is_out_of_scope(x).any()
    assert [head.labels[k] for k in head.predict_proba(x).argmax(1)] == y
