"""GPTIntentClassifier inside real Rasa training and a real Agent, on a tiny random GPT-2."""

import asyncio
import tarfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from tests.conftest import build_tiny_gpt2

INTENTS: Dict[str, List[str]] = {
    "greet": ["hello", "hi there", "good morning", "hey", "你好", "您好啊"],
    "order_status": [
        "where is my order",
        "track order 12345",
        "has my parcel shipped",
        "我的订单在哪里",
        "查一下订单 12345",
        "my package has not arrived",
    ],
    "refund": [
        "I want a refund",
        "give me my money back",
        "refund order 555",
        "我要退款",
        "退货退款怎么办",
        "can I return this for a refund",
    ],
}


def write_project(directory: Path, model_dir: Path, extra: str = "", intents=INTENTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in intents.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {example}" for example in examples)
    (directory / "nlu.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pipeline = [
        "  - name: JiebaTokenizer",
        "  - name: rasa_gpt_components.GPTIntentClassifier",
        f"    model: {model_dir}",
        "    layer: 2",
        "    calibration_folds: 3",
        "    show_progress: false",
    ] + ["  " + line for line in extra.splitlines()]
    config = ["recipe: default.v1", "assistant_id: unit-test", "language: zh", "pipeline:"]
    (directory / "config.yml").write_text(
        "\n".join(config + pipeline + ["policies: []"]) + "\n", encoding="utf-8"
    )
    return directory


def train(project: Path, out: Path, name: str = "nlu") -> Path:
    from rasa.model_training import train_nlu

    result = train_nlu(
        str(project / "config.yml"), str(project / "nlu.yml"), str(out), fixed_model_name=name
    )
    assert result, "training produced no model"
    return Path(result)


def parse(model_path: Path, texts: List[str]) -> List[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))

    async def run():
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model) -> Path:
    import os

    root = tmp_path_factory.mktemp("trained")
    os.environ["RASA_CACHE_DIRECTORY"] = str(root / "rasa-cache")
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


def test_same_seed_same_model(tmp_path, tiny_model):
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
    import os

    os.environ["RASA_CACHE_DIRECTORY"] = str(tmp_path / "other-cache")  # no cached component
    second = head_of(train(project, tmp_path / "b", "two"))
    assert first.keys() == second.keys()
    for key in first:
        if first[key].dtype.kind in "fc":
            np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-9)
        else:
            assert (first[key] == second[key]).all()


def test_bad_config_is_refused(tmp_path, tiny_model):
    from rasa.shared.exceptions import RasaException

    from rasa_gpt_components.nlu.gpt_intent_classifier import GPTIntentClassifier

    for bad in ({"mode": "magic"}, {"pooling": "max"}, {"oos_rate": 0.9}, {"layer": 0}, {"compute": "fp8"}):
        with pytest.raises(RasaException):
            GPTIntentClassifier.validate_config({**GPTIntentClassifier.get_default_config(), **bad})
