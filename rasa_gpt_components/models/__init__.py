"""The model loader shared by every GPT component (see ``loader.py``)."""

from rasa_gpt_components.models.errors import (
    CorruptModelError,
    ModelLoadError,
    ModelNotFoundError,
    TokenizerError,
    UnsupportedArchitectureError,
)
from rasa_gpt_components.models.loader import (
    LoadedModel,
    ResolvedModel,
    clear_loaded_models,
    configure_threads,
    ensure_pad_token,
    load_model,
    resolve,
)
from rasa_gpt_components.models.registry import DEFAULT_MODEL, KNOWN_MODELS, ModelSpec

__all__ = [
    "CorruptModelError",
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSpec",
    "ResolvedModel",
    "TokenizerError",
    "UnsupportedArchitectureError",
    "clear_loaded_models",
    "configure_threads",
    "ensure_pad_token",
    "load_model",
    "resolve",
]
