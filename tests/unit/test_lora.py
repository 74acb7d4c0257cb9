"""lora mode: adapters trained on a private copy of the blocks, merged, persisted
alone, and rebuilt on load; on a tiny random GPT-2, in real Rasa training."""

import tarfile

import numpy as np
import pytest

from rasa_gpt_components.models import load_model
from rasa_gpt_components.models.encoder import EncoderSettings, GPTEncoder
from rasa_gpt_components.nlu.lora import LoraSettings, apply_adapter, target_modules, train_adapter
from tests.fixtures.nlu_project import INTENTS, parse, train, write_project

LORA = "\n".join(
    "  " + option
    for option in ("mode: lora", "lora_epochs: 2", "lora_min_steps: 40", "lora_learning_rate: 0.005", "lora_batch_size: 4")
)


def _examples():
    names = sorted(INTENTS)
    texts = [t for intent in names for t in INTENTS[intent]]
    labels = [names.index(intent) for intent in names for _ in INTENTS[intent]]
    return texts, labels, len(names)


def test_adapter_changes_the_encoder_not_the_shared_model(tiny_model):
    loaded = load_model(str(tiny_model))
    before = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    encoder = GPTEncoder(loaded, EncoderSettings(layer=2, compute="float32"))
    texts, labels, classes = _examples()
    frozen = encoder.encode(texts)
    arrays, targets = train_adapter(
        encoder, texts, labels, classes, LoraSettings(random_seed=0, epochs=2, min_steps=20, learning_rate=0.01, batch_size=4),
        progress=False,
    )
    assert targets == ["c_attn", "c_fc", "c_proj"]  # GPT-2's Conv1D layers
    assert arrays and all("lora_" in name for name in arrays)
    adapted = encoder.encode(texts)
    assert not np.allclose(frozen, adapted, atol=1e-4), "the adapter changed nothing"
    for name, parameter in loaded.model.named_parameters():
        assert (parameter == before[name]).all(), f"{name} of the shared model was modified"
    assert not any(p.requires_grad for p in encoder.blocks.parameters())

    # rebuilt from the saved matrices alone: the same features
    again = GPTEncoder(loaded, EncoderSettings(layer=2, compute="float32"))
    apply_adapter(again, arrays, LoraSettings(random_seed=0), targets)
    np.testing.assert_allclose(again.encode(texts), adapted, rtol=1e-4, atol=1e-5)


def test_adapter_that_does_not_fit_is_refused(tiny_model):
    loaded = load_model(str(tiny_model))
    encoder = GPTEncoder(loaded, EncoderSettings(layer=2, compute="float32"))
    with pytest.raises(ValueError, match="does not fit"):
        apply_adapter(encoder, {"h.0.attn.c_attn.lora_A.default.weight": np.zeros((8, 32))}, LoraSettings(random_seed=0), target_modules(encoder.blocks))


def test_lora_mode_in_rasa_training_and_agent(tmp_path, tiny_model):
    model_path = train(write_project(tmp_path / "p", tiny_model, extra=LORA), tmp_path / "m")
    texts = [t for examples in INTENTS.values() for t in examples]
    expected = [intent for intent, examples in INTENTS.items() for _ in examples]
    results = parse(model_path, texts)
    accuracy = np.mean([r["intent"]["name"] == e for r, e in zip(results, expected)])
    assert accuracy >= 0.9
    with tarfile.open(model_path) as archive:
        members = {m.name.rsplit("/", 1)[-1]: m.size for m in archive.getmembers()}
    assert "adapter.npz" in members and "head.npz" in members
    assert not any(name.endswith((".safetensors", ".bin", ".gguf")) for name in members)

    # the loaded classifier runs adapted blocks: its features are not the frozen model's
    from rasa.core.agent import Agent

    from rasa_gpt_components.nlu.gpt_intent_classifier import GPTIntentClassifier

    agent = Agent.load(str(model_path))
    (classifier,) = [
        node._component
        for node in agent.processor.graph_runner._instantiated_nodes.values()
        if isinstance(node._component, GPTIntentClassifier)
    ]
    frozen = GPTEncoder(load_model(str(tiny_model)), EncoderSettings(layer=2, compute=classifier.features.gpt.compute))
    assert classifier.features.gpt.blocks is not frozen.blocks
    assert not np.allclose(classifier.features.gpt.encode(texts), frozen.encode(texts), atol=1e-4)


def test_lora_with_int8_prediction(tmp_path, tiny_model):
    from rasa.core.agent import Agent

    from rasa_gpt_components.nlu.gpt_intent_classifier import GPTIntentClassifier

    model_path = train(
        write_project(tmp_path / "p", tiny_model, extra=LORA + "\n  compute: int8"), tmp_path / "m"
    )
    texts = [t for examples in INTENTS.values() for t in examples]
    expected = [intent for intent, examples in INTENTS.items() for _ in examples]
    accuracy = np.mean([r["intent"]["name"] == e for r, e in zip(parse(model_path, texts), expected)])
    assert accuracy >= 0.8, accuracy  # int8 may cost a little of float32's
    # the classifier runs its adapted blocks in int8
    agent = Agent.load(str(model_path))
    (classifier,) = [
        node._component
        for node in agent.processor.graph_runner._instantiated_nodes.values()
        if isinstance(node._component, GPTIntentClassifier)
    ]
    assert classifier.features.gpt.compute == "int8" and classifier.adapter is not None
