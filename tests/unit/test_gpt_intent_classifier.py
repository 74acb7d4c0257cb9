"""GPTIntentClassifier inside real Rasa training and a real Agent, on a tiny random GPT-2."""

import tarfile
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from tests.conftest import build_tiny_gpt2
from tests.fixtures.nlu_project import INTENTS, parse, train, write_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model) -> Path:
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RASA_CACHE_DIRECTORY", str(root / "rasa-cache"))
        project = write_project(root / "project", tiny_model)
        return train(project, root / "models")


def test_learns_its_training_examples_in_both_languages(trained):
    texts = [t for examples in INTENTS.values() for t in examples]
    expected = [intent for intent, examples in INTENTS.items() for _ in examples]
    results = parse(trained, texts)
    predicted = [r["intent"]["name"] for r in results]
    accuracy = np.mean([p == e for p, e in zip(predicted, expected)])
    assert accuracy >= 0.9, list(zip(texts, predicted))


def test_ranking_is_sorted_calibrated_and_bounded(trained):
    (result,) = parse(trained, ["where is my order 12345?"])
    ranking = result["intent_ranking"]
    confidences = [entry["confidence"] for entry in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert result["intent"]["name"] == ranking[0]["name"]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert sum(c for e, c in zip(ranking, confidences) if e["name"] != "nlu_fallback") <= 1.0 + 1e-6


def test_archive_holds_the_head_not_the_base_weights(trained):
    with tarfile.open(trained) as archive:
        names = archive.getnames()
    assert any(n.endswith("head.npz") for n in names)
    assert any(n.endswith("meta.json") for n in names)
    assert not any(n.endswith((".safetensors", ".bin", ".gguf")) for n in names)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "x" * 10_000, "😀🙃 \x00\x07\x1b[31m hi", "退款 refund 退款 \u202e please", "\ud800broken"],
)
def test_bad_input_never_crashes(trained, text):
    (result,) = parse(trained, [text])
    if not text.strip():
        assert result["intent"]["name"] in (None, "nlu_fallback")
    else:
        assert result["intent"]["name"] in set(INTENTS) | {"nlu_fallback"}


def test_changed_base_weights_fail_clearly(tmp_path):
    model_dir = build_tiny_gpt2(tmp_path / "model", n_layer=3, seed=5)
    model_path = train(write_project(tmp_path / "p", model_dir), tmp_path / "models")
    from rasa_gpt_components.models import clear_loaded_models

    clear_loaded_models()
    build_tiny_gpt2(tmp_path / "model", n_layer=3, seed=6)  # same place, other weights
    with pytest.raises(Exception, match="Retrain the model"):
        parse(model_path, ["hello"])


def test_few_shot_with_two_examples_per_intent(tmp_path, tiny_model):
    few = {intent: examples[:2] for intent, examples in INTENTS.items()}
    model_path = train(write_project(tmp_path / "p", tiny_model, intents=few), tmp_path / "m")
    results = parse(model_path, [examples[0] for examples in few.values()])
    assert [r["intent"]["name"] for r in results] == list(few)


def test_same_seed_same_model(tmp_path, tiny_model, monkeypatch):
    def head_of(path: Path) -> Dict[str, np.ndarray]:
        with tarfile.open(path) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("head.npz"))
            data = archive.extractfile(member).read()
        target = tmp_path / f"{path.stem}.npz"
        target.write_bytes(data)
        with np.load(target) as arrays:
            return {k: arrays[k] for k in arrays.files}

    project = write_project(tmp_path / "p", tiny_model)
    first = head_of(train(project, tmp_path / "a", "one"))
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "other-cache"))  # no cached component
    second = head_of(train(project, tmp_path / "b", "two"))
    assert first.keys() == second.keys()
    for key in first:
        if first[key].dtype.kind in "fc":
            np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-9)
        else:
            assert (first[key] == second[key]).all()


def test_bad_config_is_refused_naming_the_option():
    from rasa.shared.exceptions import RasaException

    from rasa_gpt_components.nlu.settings import ClassifierSettings

    bad_values = {"mode": "magic", "pooling": "max", "oos_rate": 0.9, "layer": 0, "compute": "fp8", "lora_rank": 0}
    for key, bad in bad_values.items():
        with pytest.raises(RasaException, match=key):
            ClassifierSettings.from_config({key: bad})
    for bad in (["bert"], [], ["gpt", "gpt"]):
        with pytest.raises(RasaException, match="features"):
            ClassifierSettings.from_config({"features": bad})
    with pytest.raises(RasaException, match="features must include 'gpt'"):
        ClassifierSettings.from_config({"mode": "lora", "features": ["use-multilingual"]})
    with pytest.raises(RasaException, match="unknown options \\['poolin'\\]"):
        ClassifierSettings.from_config({"poolin": "mean"})


def test_settings_are_built_once_from_defaults_declared_once():
    from rasa_gpt_components.models.encoder import EncoderSettings
    from rasa_gpt_components.models.registry import DEFAULT_MODEL
    from rasa_gpt_components.nlu.gpt_intent_classifier import GPTIntentClassifier
    from rasa_gpt_components.nlu.head import HeadSettings
    from rasa_gpt_components.nlu.lora import LoraSettings
    from rasa_gpt_components.nlu.settings import ClassifierSettings

    defaults = GPTIntentClassifier.get_default_config()
    assert defaults["model"] == DEFAULT_MODEL
    assert defaults["oos_rate"] == HeadSettings(random_seed=0).oos_rate
    assert defaults["layer"] == EncoderSettings().layer and defaults["lora_rank"] == LoraSettings(random_seed=0).rank
    settings = ClassifierSettings.from_config({"name": "GPTIntentClassifier", "C": 3.0, "lora_rank": 4, "random_seed": 7})
    assert settings.head.C == 3.0 and settings.lora.rank == 4
    assert settings.head.random_seed == settings.lora.random_seed == 7  # one key, one value
    assert settings.to_config() == {**defaults, "C": 3.0, "lora_rank": 4, "random_seed": 7}


def test_masked_replaces_the_chosen_entities_spans():
    from rasa_gpt_components.nlu.gpt_intent_classifier import masked

    number = {"entity": "order_number", "start": 0, "end": 12, "value": "ES2611210006"}
    product = {"entity": "product", "start": 13, "end": 15, "value": "耳机"}
    text = "ES2611210006 耳机想换货"
    assert masked(text, [product, number], ["order_number"]) == "<order_number> 耳机想换货"
    assert masked(text, [number, product], ["order_number", "product"]) == "<order_number> <product>想换货"
    assert masked(text, [number], []) == text
    overlapping = {"entity": "order_number", "start": 2, "end": 14}
    no_offsets = {"entity": "order_number", "value": "ES2611210006"}
    outside = {"entity": "order_number", "start": 10, "end": 99}
    assert masked(text, [number, overlapping, no_offsets, outside], ["order_number"]) == "<order_number> 耳机想换货"


def test_with_mask_entities_the_order_number_itself_does_not_move_the_intent(tmp_path, tiny_model):
    """An extractor before the classifier finds the number; the features read a placeholder, so
    two messages that differ only in the number get the same ranking (without it they differ)."""
    intents = {**INTENTS, "order_status": INTENTS["order_status"] + ["[ES2611210006](order_number) 到哪了"],
               "refund": INTENTS["refund"] + ["[ES2611190007](order_number) 退款"]}
    rankings = {}
    for mask in ([], ["order_number"]):
        project = write_project(tmp_path / f"project{len(mask)}", tiny_model,
                                extra=f"  mask_entities: {mask}", intents=intents)
        config = (project / "config.yml").read_text(encoding="utf-8")
        (project / "config.yml").write_text(config.replace(
            "  - name: JiebaTokenizer\n", "  - name: JiebaTokenizer\n  - name: RegexEntityExtractor\n"
            "    use_word_boundaries: false\n"), encoding="utf-8")
        with open(project / "nlu.yml", "a", encoding="utf-8") as nlu:
            nlu.write("- regex: order_number\n  examples: |\n    - ES\\d{10}\n")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / f"cache{len(mask)}"))
            model = train(project, tmp_path / f"models{len(mask)}")
        results = parse(model, ["ES2611210006 退款", "ES2699999999 退款"])
        assert [e["value"] for r in results for e in r["entities"]] == ["ES2611210006", "ES2699999999"]
        rankings[len(mask)] = [[(e["name"], round(e["confidence"], 6)) for e in r["intent_ranking"]] for r in results]
    assert rankings[1][0] == rankings[1][1]
    assert rankings[0][0] != rankings[0][1]


def test_a_priority_intent_asked_for_in_one_clause_gives_the_message_that_intent(tmp_path, tiny_model):
    """"我的订单在哪里，转人工": with ``priority_intents`` the clause that asks for a person gives the
    message its intent, first with the clause's confidence; the message's own ranking is kept in
    ``clause_reading`` (for NegatedRequests); messages without such a clause are read as before."""
    intents = {**INTENTS, "human_handoff": ["转人工", "人工客服", "我要找人工", "talk to a human", "agent please",
                                            "get me a real person"]}
    models = {}
    for on, extra in ((False, ""), (True, "  priority_intents: [human_handoff]\n  priority_confidence: 0.5")):
        project = write_project(tmp_path / f"project{on}", tiny_model, extra=extra, intents=intents)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / f"cache{on}"))
            models[on] = train(project, tmp_path / f"models{on}")
    texts = ["我的订单在哪里，查一下订单 12345，转人工", "hello, where is my order"]
    plain, prior = parse(models[False], texts), parse(models[True], texts)
    (clause,) = parse(models[True], ["转人工"])
    assert clause["intent"]["name"] == "human_handoff" and clause["intent"]["confidence"] >= 0.5
    assert plain[0]["intent"]["name"] != "human_handoff"  # the whole message is read as something else
    assert prior[0]["intent"]["name"] == "human_handoff"
    assert prior[0]["intent"]["confidence"] == pytest.approx(clause["intent"]["confidence"], abs=1e-3)  # batched: padding
    assert prior[0]["clause_reading"]["clause"] == "转人工"
    assert prior[0]["clause_reading"]["message_ranking"] == plain[0]["intent_ranking"]
    ranking = prior[0]["intent_ranking"]
    assert [e["name"] for e in ranking][0] == "human_handoff" and len(ranking) == len(plain[0]["intent_ranking"])
    assert sum(e["confidence"] for e in ranking) == pytest.approx(sum(e["confidence"] for e in plain[0]["intent_ranking"]))
    others = [e["name"] for e in plain[0]["intent_ranking"] if e["name"] != "human_handoff"]
    assert [e["name"] for e in ranking[1:]] == others[: len(ranking) - 1]  # their order kept
    assert prior[1]["intent_ranking"] == plain[1]["intent_ranking"] and "clause_reading" not in prior[1]


def test_priority_settings_are_checked():
    from rasa.shared.exceptions import RasaException

    from rasa_gpt_components.nlu.settings import ClassifierSettings

    assert ClassifierSettings.from_config({"priority_intents": ["human_handoff"]}).priority_intents == ("human_handoff",)
    for bad in ({"priority_intents": [""]}, {"priority_intents": [3]}, {"priority_confidence": 0}, {"priority_confidence": 1.5}):
        with pytest.raises(RasaException, match="priority_"):
            ClassifierSettings.from_config(bad)


def test_a_typo_is_read_as_the_word_the_examples_use(trained, tmp_path, tiny_model):
    """With ``correct_spelling`` (the default) the features read "I want a refnd" as "I want a
    refund": the same ranking; the message's own text stays as typed. Switched off, the typo
    reads differently, and the model holds no word list."""
    typed, meant = parse(trained, ["I want a refnd", "I want a refund"])
    assert typed["text"] == "I want a refnd"
    assert typed["intent_ranking"] == meant["intent_ranking"]
    with tarfile.open(trained) as archive:
        assert any(n.endswith("spelling.json") for n in archive.getnames())
    off = train(write_project(tmp_path / "p", tiny_model, extra="  correct_spelling: false"), tmp_path / "m")
    typed, meant = parse(off, ["I want a refnd", "I want a refund"])
    assert typed["intent_ranking"] != meant["intent_ranking"]
    with tarfile.open(off) as archive:
        assert not any(n.endswith("spelling.json") for n in archive.getnames())
