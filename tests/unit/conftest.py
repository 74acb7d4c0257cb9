"""Fixtures of the unit tests that train real Rasa models on a tiny GPT-2."""

from pathlib import Path

import pytest

from tests.conftest import build_tiny_gpt2


@pytest.fixture(autouse=True)
def rasa_cache(tmp_path, monkeypatch):
    """Rasa's training cache in the test's own folder: no component is reused between tests."""
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 3-layer tiny GPT-2, built once per test module."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny"), n_layer=3)
