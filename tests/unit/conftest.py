"""Fixtures of the unit tests: tiny GPT-2 models, GenerativeNLG and
GenerativeFallbackPolicy builders, each in the test's own folders."""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.utils.endpoints import EndpointConfig

from rasa_gpt_components.generation.nlg import GenerativeNLG
from rasa_gpt_components.policies.generative_fallback import GenerativeFallbackPolicy
from tests.conftest import build_tiny_gpt2
from tests.fixtures.conversations import NLG_DOMAIN
from tests.fixtures.knowledge import SHOP


@pytest.fixture(autouse=True)
def rasa_cache(tmp_path, monkeypatch):
    """Rasa's training cache in the test's own folder: no component is reused between tests."""
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 3-layer tiny GPT-2, built once per test module."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny"), n_layer=3)


@pytest.fixture(scope="module")
def nlg_model(tmp_path_factory) -> Path:
    """A tiny GPT-2 with room for long prompts, for GenerativeNLG."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("m"), n_layer=2, n_positions=8192)


@pytest.fixture()
def nlg(tmp_path, nlg_model):
    """Builds a GenerativeNLG over the shared little knowledge base: ``nlg(**options)``."""
    (tmp_path / "shop.yml").write_text(SHOP, encoding="utf-8")

    def build(**options):
        options = {"knowledge": str(tmp_path), "model": str(nlg_model), "retrieval": {"layer": 2}, **options}
        config = EndpointConfig(type="rasa_gpt_components.GenerativeNLG", **options)
        return GenerativeNLG(endpoint_config=config, domain=NLG_DOMAIN)

    return build


@pytest.fixture()
def policy(tmp_path):
    """Builds a GenerativeFallbackPolicy: ``policy(**config)``."""
    def build(**config):
        storage = LocalModelStorage(tmp_path)
        context = ExecutionContext(GraphSchema({}), "test")
        return GenerativeFallbackPolicy.create(
            {**GenerativeFallbackPolicy.get_default_config(), **config}, storage, Resource("p"), context
        )

    return build
