"""Passage embeddings kept on disk, so a bot starts without encoding its
knowledge base again: keyed by the encoder (its weights' fingerprint and the
options that change a vector) and the exact texts, under the plugin's cache
folder (``$RASA_GPT_CACHE``, default ``~/.cache/rasa_gpt_components``), in
``embeddings/<key>.npy``. Any change of a text or of the model gives a new key;
a file that cannot be read is encoded again (and rewritten)."""

import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from rasa_gpt_components.models.cache import cache_root

logger = logging.getLogger(__name__)


def cache_key(encoder: Any, texts: Sequence[str]) -> str:
    """What the vectors depend on: the encoder's fingerprint and settings, and the texts."""
    settings = getattr(encoder, "settings", None)
    described = {"fingerprint": encoder.fingerprint,
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.save(handle, vectors, allow_pickle=False)
        os.replace(handle.name, path)  # whole or not at all, also with two bots starting at once
    except OSError as error:
        logger.warning("Passage embeddings could not be written to %s (%s).", path.parent, error)
    return vectors
