"""Passage embeddings kept on disk, so a bot starts without encoding its
knowledge base again: keyed by the encoder (its weights' fingerprint and the
options that change a vector) and the exact texts, under the plugin's cache
folder (``$RASA_GPT_CACHE``, default ``~/.cache/rasa_gpt_components``), in
``embeddings/<key>.npy`` (and the states of each token, for the coverage gate,
in ``tokens/<key>.npz``, float16). Any change of a text or of the model gives a
new key; a file that cannot be read is encoded again (and rewritten)."""

import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Callable, List, Sequence, Tuple

import numpy as np

from rasa_gpt_components.models.cache import cache_root

logger = logging.getLogger(__name__)


# 2: multilingual-e5-small-int8 computes int8 products on every CPU (before, float32 where
# the CPU had no VNNI, under the same fingerprint)
CACHE_VERSION = 2


def cache_key(encoder: Any, texts: Sequence[str]) -> str:
    """What the vectors depend on: the encoder's fingerprint and settings, and the texts."""
    settings = getattr(encoder, "settings", None)
    described = {"version": CACHE_VERSION, "fingerprint": encoder.fingerprint,
                 "settings": {k: v for k, v in vars(settings).items() if k not in ("batch_size", "cache_size", "compute")}
                 if settings is not None else None}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode("utf-8"))
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8"))
    return digest.hexdigest()


def cached_encode(encoder: Any, texts: Sequence[str], **encode_options: Any) -> np.ndarray:
    """``encoder.encode(texts)``, from disk when these texts were encoded by this encoder before."""
    path = cache_root() / "embeddings" / f"{cache_key(encoder, texts)}.npy"
    if path.is_file():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape[0] == len(texts):
                logger.debug("Passage embeddings read from %s.", path)
                return vectors
        except (OSError, ValueError) as error:
            logger.warning("Passage embeddings in %s could not be read (%s); encoding again.", path, error)
    vectors = np.asarray(encoder.encode(list(texts), **encode_options))
    _write(path, lambda handle: np.save(handle, vectors, allow_pickle=False))
    return vectors


def cached_token_states(encoder: Any, texts: Sequence[str], kind: str) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``encoder.token_states(texts, kind)`` (states in float16), from disk when these texts
    were read so by this encoder before."""
    path = cache_root() / "tokens" / f"{cache_key(encoder, [kind, *texts])}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                ids, states, lengths = stored["ids"], stored["states"], stored["lengths"]
            if len(lengths) == len(texts) and len(ids) == len(states) == int(lengths.sum()):
                logger.debug("Token states read from %s.", path)
                bounds = np.cumsum(lengths)[:-1]
                return list(zip(np.split(ids, bounds), np.split(states, bounds)))
        except (OSError, ValueError, KeyError) as error:
            logger.warning("Token states in %s could not be read (%s); encoding again.", path, error)
    read = [(ids, states.astype(np.float16)) for ids, states in encoder.token_states(list(texts), kind)]
    hidden = read[0][1].shape[1] if read else 0
    _write(path, lambda handle: np.savez(
        handle, ids=np.concatenate([ids for ids, _ in read] or [np.zeros(0, np.int64)]),
        states=np.concatenate([states for _, states in read] or [np.zeros((0, hidden), np.float16)]),
        lengths=np.array([len(ids) for ids, _ in read], dtype=np.int64)))
    return read


def _write(path: Any, save: Callable[[Any], None]) -> None:
    """``save(handle)`` into ``path``, whole or not at all (also with two bots starting at once)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            save(handle)
        os.replace(handle.name, path)
    except OSError as error:
        logger.warning("Could not write %s (%s).", path, error)
