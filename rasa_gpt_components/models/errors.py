"""Errors raised by the model loader.

Each message says what went wrong and what the user can do next, so that a
Rasa user sees one clear line instead of a traceback from deep inside
transformers or safetensors.
"""


class ModelLoadError(Exception):
    """Base class of every error the loader raises."""


class ModelNotFoundError(ModelLoadError):
    """The model reference names nothing that can be loaded here."""


class CorruptModelError(ModelLoadError):
    """A model file exists but is truncated, damaged or fails its checksum."""


class UnsupportedArchitectureError(ModelLoadError):
    """The model is not a causal (decoder-only) language model transformers can run."""


class TokenizerError(ModelLoadError):
    """The tokenizer cannot be used for batching (no pad, eos or unk token)."""
