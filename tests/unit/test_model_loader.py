"""The model loader on a tiny random GPT-2 and on broken inputs."""

import json
import time

import pytest

from rasa_gpt_components.models import (
    CorruptModelError,
    ModelNotFoundError,
    TokenizerError,
    UnsupportedArchitectureError,
    configure_threads,
    load_model,
    resolve,
)
from rasa_gpt_components.models import cache
from rasa_gpt_components.models.convert import prepare_gguf
from tests.conftest import build_tiny_gpt2


def test_same_reference_gives_same_instance(tiny_gpt2_dir):
    first = load_model(str(tiny_gpt2_dir))
    second = load_model(str(tiny_gpt2_dir))
    assert first is second
    assert first.model is second.model
    assert first.num_layers == 2 and first.hidden_size == 32


def test_other_dtype_is_another_instance(tiny_gpt2_dir):
    import torch

    full = load_model(str(tiny_gpt2_dir))
    half = load_model(str(tiny_gpt2_dir), dtype="bfloat16")
    assert full is not half
    assert next(half.model.parameters()).dtype == torch.bfloat16


def test_unknown_dtype_is_refused(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="dtype"):
        load_model(str(tiny_gpt2_dir), dtype="int3")


def test_loaded_model_runs_a_batch(tiny_gpt2_dir):
    import torch

    loaded = load_model(str(tiny_gpt2_dir))
    batch = loaded.tokenizer(["我要退款", "where is my order 12345?"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model(**batch, output_hidden_states=True)
    assert out.logits.shape[0] == 2
    assert len(out.hidden_states) == 3  # embeddings + 2 layers


def test_fingerprint_follows_the_weights(tmp_path):
    first = build_tiny_gpt2(tmp_path / "a", seed=1)
    second = build_tiny_gpt2(tmp_path / "b", seed=2)
    same = build_tiny_gpt2(tmp_path / "c", seed=1)
    assert resolve(str(first)).fingerprint != resolve(str(second)).fingerprint
    assert resolve(str(first)).fingerprint == resolve(str(same)).fingerprint


def test_missing_pad_token_falls_back_to_eos(tiny_gpt2_dir):
    loaded = load_model(str(tiny_gpt2_dir))
    assert loaded.tokenizer.pad_token == "<|endoftext|>"


def test_tokenizer_without_pad_eos_or_unk_is_a_clear_error(tmp_path):
    directory = build_tiny_gpt2(tmp_path / "nopad", eos_token=None)
    with pytest.raises(TokenizerError, match="no pad token"):
        load_model(str(directory))


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_model(str(tmp_path / "nowhere"))


def test_directory_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(str(tmp_path))


def test_truncated_weights_are_a_clear_error(tmp_path):
    directory = build_tiny_gpt2(tmp_path / "cut")
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="damaged or truncated"):
        load_model(str(directory))


def test_unknown_architecture_is_a_clear_error(tmp_path):
    directory = build_tiny_gpt2(tmp_path / "odd")
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "no-such-architecture"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitectureError):
        load_model(str(directory))


def test_encoder_only_model_is_refused(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    directory = build_tiny_gpt2(tmp_path / "enc")  # keeps a tokenizer in the folder
    (directory / "model.safetensors").unlink()
    config = DistilBertConfig(vocab_size=300, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(str(directory))
    with pytest.raises(UnsupportedArchitectureError, match="not a causal"):
        load_model(str(directory))


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(CorruptModelError, match="GGUF"):
        load_model(str(broken))


def test_gguf_with_wrong_checksum_is_refused(tmp_path):
    file = tmp_path / "model.gguf"
    file.write_bytes(b"not the real weights")
    with pytest.raises(CorruptModelError, match="SHA-256"):
        prepare_gguf(file, "model", expected_sha256="0" * 64, progress=False)


def test_other_file_types_are_refused(tmp_path):
    file = tmp_path / "weights.pt"
    file.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=".gguf"):
        load_model(str(file))


def test_hub_id_offline_fails_fast_with_a_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="local directory or .gguf file"):
        load_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert time.perf_counter() - started < 5


def test_hub_id_with_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:1")  # nothing listens on 443 here
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="not reachable"):
        load_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert time.perf_counter() - started < 5


def test_threads_from_argument_and_environment(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("RASA_GPT_NUM_THREADS", "2")
        assert configure_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("RASA_GPT_NUM_THREADS", "many")
        with pytest.raises(ValueError, match="RASA_GPT_NUM_THREADS"):
            configure_threads()
        with pytest.raises(ValueError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_file_digest_is_remembered(tmp_path, monkeypatch):
    file = tmp_path / "blob.bin"
    file.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert cache.sha256_file(file) == expected
    index = json.loads((cache.cache_root() / "digests.json").read_text())
    assert expected in index.values()
    file.write_bytes(b"abcd")  # a changed file is hashed again
    assert cache.sha256_file(file) != expected
