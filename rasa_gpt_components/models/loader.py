"""The one model loader: a model reference in, a shared (tokenizer, model) out.

A reference is, in the order tried:

1. a registry name (``smollm2-135m-instruct``, the default), prepared once
   into the cache from the GGUF file its Python package ships;
2. a local ``.gguf`` file, prepared once in the same way;
3. a local Hugging Face directory (``config.json`` + weights);
4. a hub id (``org/name``): taken from the local Hugging Face cache if it is
   there; otherwise it needs the network, and offline it fails at once with
   an error that says how to point at a local copy.

Nothing touches the network at import or load time except case 4.
Loaded models are kept in a process-wide cache, so every component that asks
for the same model gets the same instance (one copy in memory).
"""

import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from rasa_gpt_components.models import cache
from rasa_gpt_components.models.convert import prepare_gguf
from rasa_gpt_components.models.errors import (
    CorruptModelError,
    ModelLoadError,
    ModelNotFoundError,
    TokenizerError,
    UnsupportedArchitectureError,
)
from rasa_gpt_components.models.registry import DEFAULT_MODEL, get_spec

logger = logging.getLogger(__name__)

THREADS_ENV = "RASA_GPT_NUM_THREADS"
DTYPES = ("float32", "bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")

_loaded: Dict[Tuple[str, str], "LoadedModel"] = {}
_lock = threading.RLock()


@dataclass(frozen=True)
class ResolvedModel:
    """Where a reference points on disk, and a fingerprint of its weights."""

    reference: str
    path: Path
    fingerprint: str


@dataclass
class LoadedModel:
    """A tokenizer and causal LM, shared by every component of the process."""

    reference: str
    path: Path
    fingerprint: str
    dtype: str
    tokenizer: Any
    model: Any
    load_seconds: float

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states."""
        return int(self.model.config.hidden_size)


def configure_threads(num_threads: Optional[int] = None) -> Optional[int]:
    """Set torch's intra-op thread count from the argument or ``$RASA_GPT_NUM_THREADS``.

    Returns the count that was set, or None when neither was given.
    """
    if num_threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if not env:
            return None
        try:
            num_threads = int(env)
        except ValueError:
            raise ValueError(f"${THREADS_ENV} must be a whole number, got '{env}'.") from None
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}.")
    import torch

    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


def resolve(reference: Optional[str] = None, progress: bool = True) -> ResolvedModel:
    """Turn a model reference into a local directory, preparing GGUF files once."""
    reference = (reference or DEFAULT_MODEL).strip()
    spec = get_spec(reference)
    if spec is not None:
        path = prepare_gguf(spec.source_file(), spec.name, spec.sha256, progress=progress)
        return ResolvedModel(reference, path, spec.sha256)

    local = Path(reference).expanduser()
    if local.is_file():
        if local.suffix.lower() != ".gguf":
            raise ModelNotFoundError(
                f"'{reference}' is a file but not a .gguf file. Point at a .gguf file, "
                f"a Hugging Face model directory, or one of: {_known_names()}."
            )
        path = prepare_gguf(local, _slug(local.stem), progress=progress)
        return ResolvedModel(reference, path, cache.read_manifest(path)["source_sha256"])
    if local.is_dir():
        return ResolvedModel(reference, local.resolve(), _directory_fingerprint(local))
    if _HUB_ID.match(reference) and not reference.startswith((".", "/", "~")):
        path = _from_hub(reference)
        return ResolvedModel(reference, path, _directory_fingerprint(path))
    raise ModelNotFoundError(
        f"Model '{reference}' not found: it is not a known model name ({_known_names()}), "
        f"not an existing .gguf file and not a Hugging Face model directory."
    )


def load_model(
    reference: Optional[str] = None,
    dtype: str = "float32",
    num_threads: Optional[int] = None,
    progress: bool = True,
) -> LoadedModel:
    """Load (or return the already loaded) tokenizer and causal LM for ``reference``.

    Args:
        reference: a registry name, ``.gguf`` file, model directory or hub id;
            None means the default model.
        dtype: ``float32`` (default), ``bfloat16`` or ``float16``.
        num_threads: torch threads; None reads ``$RASA_GPT_NUM_THREADS``.
        progress: show progress bars while preparing a model.

    Raises:
        ModelLoadError: a subclass that says what is wrong and what to do.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'.")
    configure_threads(num_threads)
    with _lock:
        resolved = resolve(reference, progress=progress)
        key = (str(resolved.path), dtype)
        if key not in _loaded:
            started = time.perf_counter()
            tokenizer, model = _load_from_directory(resolved.path, dtype)
            _loaded[key] = LoadedModel(
                reference=resolved.reference,
                path=resolved.path,
                fingerprint=resolved.fingerprint,
                dtype=dtype,
                tokenizer=tokenizer,
                model=model,
                load_seconds=time.perf_counter() - started,
            )
            logger.info(
                "Loaded model %s from %s in %.2f s.",
                resolved.reference,
                resolved.path,
                _loaded[key].load_seconds,
            )
        return _loaded[key]


def clear_loaded_models() -> None:
    """Forget every loaded model (tests use this to measure a cold load)."""
    with _lock:
        _loaded.clear()


def _load_from_directory(path: Path, dtype: str) -> Tuple[Any, Any]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} is not a Hugging Face model directory: it has no config.json."
        )
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in path.iterdir()):
        raise ModelNotFoundError(f"{path} has a config.json but no weight files.")
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (ValueError, KeyError) as error:
        raise UnsupportedArchitectureError(
            f"transformers does not know the architecture in {path / 'config.json'}: {error}"
        ) from error
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            config=config,
            dtype=getattr(torch, dtype),
            local_files_only=True,
        )
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            raise UnsupportedArchitectureError(
                f"{path} holds a '{config.model_type}' model, which is not a causal "
                f"(decoder-only) language model. Use a GPT-style model such as "
                f"{DEFAULT_MODEL}."
            ) from error
        raise CorruptModelError(f"Cannot load the weights in {path}: {error}") from error
    except (OSError, RuntimeError, EOFError) as error:
        raise CorruptModelError(
            f"The weights in {path} are damaged or truncated ({error}). If this is a "
            f"prepared copy, run `rasa-gpt models prepare NAME --force`."
        ) from error
    except Exception as error:  # safetensors raises its own SafetensorError
        if type(error).__name__ == "SafetensorError":
            raise CorruptModelError(
                f"The weights in {path} are damaged or truncated ({error}). If this is a "
                f"prepared copy, run `rasa-gpt models prepare NAME --force`."
            ) from error
        raise
    model.eval()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as error:
        raise TokenizerError(f"Cannot load the tokenizer in {path}: {error}") from error
    ensure_pad_token(tokenizer, path)
    return tokenizer, model


def ensure_pad_token(tokenizer: Any, where: Any = "the tokenizer") -> None:
    """Give the tokenizer a pad token for batching: its eos (or unk) token.

    Raises:
        TokenizerError: when it has no pad, eos or unk token to pad with.
    """
    if tokenizer.pad_token is not None:
        return
    for fallback in (tokenizer.eos_token, tokenizer.unk_token):
        if fallback is not None:
            tokenizer.pad_token = fallback
            logger.debug("%s has no pad token; padding with '%s'.", where, fallback)
            return
    raise TokenizerError(
        f"{where} has no pad token and no eos or unk token to pad with, so messages "
        f"cannot be batched. Add a pad token to its tokenizer_config.json "
        f'(e.g. "pad_token": "<|endoftext|>").'
    )


def _from_hub(repo_id: str) -> Path:
    """A hub model from the local Hugging Face cache, or a download when online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    hint = (
        f"Model '{repo_id}' looks like a Hugging Face hub id and is not in the local "
        f"Hugging Face cache. Downloading it needs the network"
    )
    local_copy = (
        "Download it on a machine with access and point `model` at the local "
        "directory or .gguf file instead, or use a known model name "
        f"({_known_names()})."
    )
    if _offline_mode():
        raise ModelNotFoundError(f"{hint}, and offline mode is set (HF_HUB_OFFLINE). {local_copy}")
    if not _hub_reachable():
        raise ModelNotFoundError(f"{hint}, which is not reachable from here. {local_copy}")
    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:  # network and auth errors from huggingface_hub
        raise ModelNotFoundError(f"Could not download '{repo_id}': {error}. {local_copy}") from error


def _offline_mode() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _directory_fingerprint(path: Path) -> str:
    """SHA-256 over the config and the weight files' digests (remembered per file)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted(
        p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json"
    )
    for file in files:
        digest.update(file.name.encode())
        digest.update(cache.sha256_file(file).encode())
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "model"


def _known_names() -> str:
    from rasa_gpt_components.models.registry import KNOWN_MODELS

    return ", ".join(sorted(KNOWN_MODELS))


__all__ = [
    "LoadedModel",
    "ResolvedModel",
    "ModelLoadError",
    "configure_threads",
    "resolve",
    "load_model",
    "clear_loaded_models",
    "ensure_pad_token",
]
