"""SentimentAnalyzer inside real Rasa training and a real Agent, on a tiny random GPT-2."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.nlu.head import IntentHead
from rasa_gpt_components.nlu.sentiment import lexical_share
from rasa_gpt_components.nlu.sentiment_settings import SentimentSettings, default_config
from tests.fixtures.nlu_project import parse, train, write_project
from tests.fixtures.sentiment_data import examples, write_csv


def sentiment_step(model: Path, data: Path, more: str = "") -> str:
    return "\n".join(
        [
            "- name: rasa_gpt_components.SentimentAnalyzer",
            f"  model: {model}",
            "  layer: 2",
            "  max_length: 32",
            f"  training_data: {data}",
            "  calibration_folds: 3",
            "  show_progress: false",
        ]
        + [f"  {line}" for line in more.splitlines()]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model) -> Path:
    root = tmp_path_factory.mktemp("sentiment")
    data = write_csv(root / "sentiment.csv", examples())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RASA_CACHE_DIRECTORY", str(root / "rasa-cache"))
        project = write_project(root / "project", tiny_model, extra=sentiment_step(tiny_model, data))
        return train(project, root / "models")


def test_learns_its_training_messages_in_both_languages(trained):
    rows = examples()
    results = parse(trained, [text for text, _ in rows])
    predicted = [r["sentiment"]["label"] for r in results]
    accuracy = np.mean([p == label for p, (_, label) in zip(predicted, rows)])
    assert accuracy >= 0.9, list(zip(rows, predicted))


def test_scores_are_calibrated_probabilities_beside_the_intent(trained):
    (result,) = parse(trained, ["great service, thanks a lot"])
    sentiment = result["sentiment"]
    assert set(sentiment["scores"]) == {"negative", "neutral", "positive"}
    assert sum(sentiment["scores"].values()) == pytest.approx(1.0)
    assert sentiment["confidence"] == max(sentiment["scores"].values())
    assert sentiment["label"] == max(sentiment["scores"], key=sentiment["scores"].get)
    assert result["intent"]["name"]  # the intent classifier still runs


def test_archive_holds_the_head_not_the_base_weights(trained):
    with tarfile.open(trained) as archive:
        names = archive.getnames()
    assert any(n.endswith("sentiment_head.npz") for n in names)
    assert not any(n.endswith((".safetensors", ".bin", ".gguf", ".pkl")) for n in names)
    # on a random tiny GPT the n-grams carry the signal: the n-gram head is kept, and its
    # vocabulary (the head's) is stored once, with the head
    heads = {}
    with tarfile.open(trained) as archive:
        for member in archive.getmembers():
            if member.name.endswith(("sentiment_head.npz", "sentiment_lexical_head.npz")):
                with np.load(archive.extractfile(member), allow_pickle=False) as arrays:
                    heads[Path(member.name).name] = set(arrays.files)
    assert "lex_terms" in heads["sentiment_head.npz"]
    assert "lexical_weights" in heads["sentiment_lexical_head.npz"]
    assert "lex_terms" not in heads["sentiment_lexical_head.npz"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 5_000, "😀 \x00\x1b[31m 好", "\ud800broken"])
def test_bad_input_never_crashes(trained, text):
    (result,) = parse(trained, [text])
    if text.strip():
        assert result["sentiment"]["label"] in {"negative", "neutral", "positive"}
    else:
        assert "sentiment" not in result


def test_defaults_are_declared_once_and_round_trip():
    settings = SentimentSettings.from_config(default_config())
    assert settings == SentimentSettings()
    assert settings.head.oos_detection is False


@pytest.mark.parametrize(
    "config, message",
    [
        ({"no_such_option": 1}, "no_such_option"),
        ({"pooling": "max"}, "pooling"),
        ({"C": 0}, "C must be positive"),
        ({"oos_rate": 0.1}, "oos_rate"),  # sentiment has no out-of-scope detection
        ({"lexical_head_C": -1}, "lexical_head_C must be positive"),
    ],
)
def test_bad_options_are_clear_errors(config, message):
    with pytest.raises(RasaException, match=message):
        SentimentSettings.from_config(config)


def test_missing_or_wrong_training_data_fails_clearly(tmp_path, tiny_model):
    project = write_project(tmp_path / "p", tiny_model, extra=sentiment_step(tiny_model, tmp_path / "none.csv"))
    with pytest.raises(Exception, match="training_data"):
        train(project, tmp_path / "m")
    bad = write_csv(tmp_path / "bad.csv", [("hello", "x")], header=("message", "label"))
    project = write_project(tmp_path / "q", tiny_model, extra=sentiment_step(tiny_model, bad))
    with pytest.raises(Exception, match="no column"):
        train(project, tmp_path / "m2")


def _head_holding_out(probabilities, truth, rows=None):
    labels = ["negative", "positive"]
    head = IntentHead(labels, np.zeros(1), np.ones(1), np.zeros((2, 1)), np.zeros(2))
    rows = np.arange(len(truth)) if rows is None else rows
    head.held_out = (rows, np.asarray(truth), np.asarray(probabilities, dtype=float))
    return head


def test_the_ngram_heads_share_is_chosen_on_the_held_out_rows():
    """The n-gram head joins with the share that serves the held-out rows best, the smallest
    among equals; none when it adds nothing or the two heads held out different rows."""
    truth = [0, 0, 1, 1]
    # the head is sure and wrong on row 1, the n-gram head unsure and right everywhere
    head = _head_holding_out([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]], truth)
    helpful = _head_holding_out([[0.7, 0.3], [0.6, 0.4], [0.4, 0.6], [0.4, 0.6]], truth)
    share = lexical_share(head, helpful)
    assert 0.0 < share < 1.0
    blended = (1 - share) * head.held_out[2] + share * helpful.held_out[2]
    assert (blended.argmax(1) == truth).all()
    useless = _head_holding_out([[0.5, 0.5]] * 4, truth)
    assert lexical_share(_head_holding_out([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], truth), useless) == 0.0
    assert lexical_share(head, _head_holding_out(helpful.held_out[2], truth, rows=np.arange(4) + 1)) == 0.0
