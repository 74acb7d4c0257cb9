"""The GPT encoder: a truncated view of the shared model, pooling, compute modes."""

import numpy as np
import pytest

from rasa_gpt_components.models import load_model
from rasa_gpt_components.models.encoder import EncoderSettings, GPTEncoder, truncated_base_model
from rasa_gpt_components.text import clean_text
from tests.conftest import build_tiny_gpt2

TEXTS = ["where is my order", "我要退款", "hello 😀", "x" * 500]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(str(build_tiny_gpt2(tmp_path_factory.mktemp("m"), n_layer=4)))


def test_view_runs_fewer_blocks_and_leaves_the_model_whole(loaded):
    import torch

    view = truncated_base_model(loaded.model, 2)
    assert len(view.h) == 2 and len(loaded.model.base_model.h) == 4
    batch = loaded.tokenizer(["hello"], return_tensors="pt")
    with torch.inference_mode():
        full = loaded.model(**batch, output_hidden_states=True).hidden_states
        part = view(**batch).last_hidden_state
        # GPT-2 applies its final layer norm to the view's output
        expected = loaded.model.base_model.ln_f(full[2])
    assert torch.allclose(part, expected, atol=1e-5)
    assert view.h[0] is loaded.model.base_model.h[0]  # shared, not copied


def test_pooling_shapes_and_empty_text(loaded):
    for pooling, width in (("mean", 32), ("last", 32), ("mean_last", 64)):
        encoder = GPTEncoder(loaded, EncoderSettings(layer=2, pooling=pooling, compute="float32"))
        features = encoder.encode(TEXTS + [""])
        assert features.shape == (5, width) and encoder.dimension == width
        assert np.isfinite(features).all()
        assert not features[-1].any()  # empty text: zero vector


def test_padding_does_not_change_features(loaded):
    encoder = GPTEncoder(loaded, EncoderSettings(layer=3, cache_size=0, compute="float32"))
    alone = encoder.encode(["hi"])
    batched = encoder.encode(["hi", "a much longer message about a refund for my order"])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-4)


@pytest.mark.parametrize("compute,min_cosine", [("bfloat16", 0.99), ("int8", 0.9)])
def test_compute_modes_stay_close_to_float32(loaded, compute, min_cosine):
    reference = GPTEncoder(loaded, EncoderSettings(layer=4, compute="float32")).encode(TEXTS)
    other = GPTEncoder(loaded, EncoderSettings(layer=4, compute=compute)).encode(TEXTS)
    cosine = (reference * other).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(other, axis=1)
    assert (cosine > min_cosine).all(), cosine


def test_cache_returns_the_same_features(loaded):
    encoder = GPTEncoder(loaded, EncoderSettings(layer=2, cache_size=2, compute="float32"))
    first = encoder.encode(["one", "two", "three"])
    assert len(encoder._cache) == 2
    np.testing.assert_allclose(encoder.encode(["three"])[0], first[2], atol=1e-5)


def test_bad_options_are_refused(loaded):
    with pytest.raises(ValueError, match="layer must be between 1 and 4"):
        GPTEncoder(loaded, EncoderSettings(layer=9))
    with pytest.raises(ValueError, match="pooling must be one of"):
        EncoderSettings(pooling="max")
    with pytest.raises(ValueError, match="compute must be one of"):
        EncoderSettings(compute="fp4")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        EncoderSettings(batch_size=0)


def test_clean_text_bounds_and_cleans():
    assert clean_text(None) == ""
    assert clean_text("  a\x00b\u202e\n\tc  ") == "a b c"
    assert len(clean_text("y" * 50_000)) == 2000
    assert clean_text("\ud800x") == "?x"
    assert clean_text("ＡＢＣ１２３") == "ABC123"
