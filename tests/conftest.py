"""Shared fixtures: a tiny randomly initialised GPT-2 built inside the tests."""

from pathlib import Path
from typing import Optional

import pytest

CORPUS = [
    "hello, where is my order?",
    "I want a refund for order 12345",
    "how long does shipping take",
    "我的订单在哪里",
    "我要退款",
    "发货需要多长时间",
    "thanks, goodbye",
]


def build_tiny_gpt2(
    directory: Path,
    eos_token: Optional[str] = "<|endoftext|>",
    unk_token: Optional[str] = None,
    pad_token: Optional[str] = None,
    n_layer: int = 2,
    seed: int = 0,
    n_positions: int = 128,
) -> Path:
    """Save a 2-layer GPT-2 with random weights and a byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    specials = [t for t in (eos_token, unk_token, pad_token) if t]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=eos_token, unk_token=unk_token, pad_token=pad_token
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=n_positions,
        n_embd=32,
        n_layer=n_layer,
        n_head=2,
        eos_token_id=tokenizer.token_to_id(eos_token) if eos_token else None,
        bos_token_id=tokenizer.token_to_id(eos_token) if eos_token else None,
    )
    GPT2LMHeadModel(config).save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch, request):
    """Unit tests use a fresh cache folder; integration tests keep the real one."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("RASA_GPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    from rasa_gpt_components.models import clear_loaded_models

    clear_loaded_models()


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 directory, built once per test session."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))
