"""SentimentAnalyzer: a label and a calibrated score on each message.

``config.yml``::

    pipeline:
      - name: JiebaTokenizer               # any tokenizer
      - name: rasa_gpt_components.GPTIntentClassifier
      - name: rasa_gpt_components.SentimentAnalyzer
        training_data: data/sentiment.csv  # text,label rows you provide

Features are a vector of the shared sentence encoder (by default
multilingual-e5-small's mean of its last four layers, computed in the same pass
as the intent classifier's vector) or the pooled hidden states of one layer of
the shared GPT model (the same loaded instance the intent classifier uses; no
second copy), beside character n-grams; the head is the classifier's calibrated logistic
regression without out-of-scope detection (``nlu/head.py``). It is trained at
``rasa train`` from the CSV named by ``training_data`` and persisted in the
Rasa model as numpy arrays. No trained head ships with the package: the
public sentiment sets are licensed for benchmarking only (docs/handoff.md).

Each message gets ``sentiment``: ``{"label", "confidence", "scores"}``
(``/model/parse`` output, ``tracker.latest_message``).
"""

import csv
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple, Union

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.models import load_model
from rasa_gpt_components.models.encoder import GPTEncoder
from rasa_gpt_components.models.sentence import SentenceEncoder, is_sentence_encoder, load_sentence_encoder
from rasa_gpt_components.nlu.head import IntentHead, fit_head
from rasa_gpt_components.nlu.sentiment_settings import SentimentSettings, default_config
from rasa_gpt_components.text import clean_text

logger = logging.getLogger(__name__)

SENTIMENT = "sentiment"
HEAD_FILE = "sentiment_head.npz"
LEXICAL_HEAD_FILE = "sentiment_lexical_head.npz"
META_FILE = "meta.json"
SHARES = np.round(np.linspace(0.0, 1.0, 11), 1)  # the lexical head's share of the averaged probabilities
FORMAT_VERSION = 1
_FROZEN = ("model", "layer", "pooling", "max_length", "dtype", "sentence_view")  # training-time choices win at load
PREFERRED_VIEW = "last4"  # a sentence encoder's view when ``sentence_view`` is not set


def read_labelled_csv(path: Path, text_column: str = "text", label_column: str = "label") -> Tuple[List[str], List[str]]:
    """Cleaned texts and their labels from a CSV with a header; empty texts are dropped."""
    path = Path(path)
    if not path.is_file():
        raise RasaException(f"SentimentAnalyzer: training_data '{path}' is not a file.")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {text_column, label_column} - set(reader.fieldnames or [])
        if missing:
            raise RasaException(f"SentimentAnalyzer: '{path}' has no column(s) {sorted(missing)}.")
        rows = [(clean_text(row[text_column] or ""), (row[label_column] or "").strip()) for row in reader]
    rows = [(text, label) for text, label in rows if text and label]
    return [text for text, _ in rows], [label for _, label in rows]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class SentimentAnalyzer(GraphComponent):
    """Sentiment of each message from the shared GPT's features and a light head."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config; declared once, in ``nlu/sentiment_settings.py``."""
        return default_config()

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the component needs."""
        return ["torch", "transformers", "sklearn"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        head: Optional[IntentHead] = None,
        fingerprint: Optional[str] = None,
    ) -> None:
        self.settings = SentimentSettings.from_config(config)
        self._model_storage = model_storage
        self._resource = resource
        self.head = head
        # the n-gram head whose probabilities are averaged with the head's, and its share (fit)
        self.lexical_head: Optional[IntentHead] = None
        self.lexical_share = 0.0
        self.fingerprint = fingerprint
        self._encoder: Optional[Union[GPTEncoder, SentenceEncoder]] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentimentAnalyzer":
        """A new, untrained component; a missing ``training_data`` is an error now,
        not after the other components have trained."""
        component = cls(config, model_storage, resource)
        if not component.settings.training_data:
            raise RasaException(
                "SentimentAnalyzer: set `training_data` to a CSV of labelled messages "
                "(columns text,label); see docs/handoff.md."
            )
        return component

    @property
    def encoder(self) -> Union[GPTEncoder, SentenceEncoder]:
        """The feature extractor (built on first use): a sentence encoder when ``model``
        names one (models/sentence.py), else pooled states of the shared GPT model."""
        if self._encoder is None:
            s = self.settings
            if is_sentence_encoder(s.model):
                self._encoder = load_sentence_encoder(s.model)
            else:
                loaded = load_model(s.model, dtype=s.dtype, num_threads=s.num_threads)
                self._encoder = GPTEncoder(loaded, s.encoder)
        return self._encoder

    @property
    def view(self) -> Optional[str]:
        """The sentence encoder's view the head reads (None for a GPT model)."""
        encoder = self.encoder
        if not isinstance(encoder, SentenceEncoder):
            return None
        views = encoder.spec.views
        view = self.settings.sentence_view or (PREFERRED_VIEW if PREFERRED_VIEW in views else views[0])
        if view not in views:
            raise RasaException(
                f"SentimentAnalyzer: sentence_view '{view}' is not one of {list(views)} ({encoder.spec.name})."
            )
        return view

    def features(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """The head's input for cleaned ``texts``."""
        view = self.view
        options = {"view": view} if view else {}
        return self.encoder.encode(texts, progress=progress, desc="SentimentAnalyzer features", **options)

    # -- training ---------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the calibrated head on the CSV named by ``training_data`` (the
        bot's NLU data is not sentiment-labelled and is not used)."""
        s = self.settings
        texts, labels = read_labelled_csv(Path(s.training_data), s.text_column, s.label_column)
        self.fit(texts, labels)
        self.persist()
        return self._resource

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """Fit the head on cleaned ``texts`` and their labels."""
        if len(set(labels)) < 2:
            raise RasaException(
                f"SentimentAnalyzer: the training data needs at least two labels, got {sorted(set(labels))}."
            )
        s = self.settings
        features = self.features(texts, progress=s.show_progress)
        self.head = fit_head(features, labels, s.head, texts=texts)
        self.lexical_head, self.lexical_share = None, 0.0
        if s.lexical_head:
            self.lexical_head = fit_head(_no_features(len(texts)), labels,
                                         replace(s.head, lexical=True, C=float(s.lexical_head_C)), texts=texts,
                                         ngrams=self.head.lexical)  # one vocabulary, one transform a batch
            self.lexical_share = lexical_share(self.head, self.lexical_head)
            if self.lexical_share == 0.0:
                self.lexical_head = None
        self.fingerprint = self.encoder.fingerprint
        logger.info(
            "SentimentAnalyzer trained on %d messages, labels %s (temperature %.2f; n-gram head's share %.1f).",
            len(texts), self.head.labels, self.head.temperature, self.lexical_share,
        )

    # -- prediction -------------------------------------------------------

    def process(self, messages: List[Message]) -> List[Message]:
        """Set ``sentiment`` on each message with text (batched)."""
        if self.head is None:
            return messages
        texts = [clean_text(m.get(TEXT)) for m in messages]  # cleaned here, once
        present = [i for i, text in enumerate(texts) if text]
        if not present:
            return messages
        for index, result in zip(present, self.predict([texts[i] for i in present])):
            messages[index].set(SENTIMENT, result, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the bot's training examples (no component trains on sentiment)."""
        return training_data

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities ``[n, labels]`` of cleaned, non-empty ``texts``: the head's,
        averaged with the n-gram head's by its share when it has one."""
        assert self.head is not None
        probabilities = self.head.predict_proba(self.features(texts), texts)
        if self.lexical_head is not None and self.lexical_share > 0:
            lexical = self.lexical_head.predict_proba(_no_features(len(texts)), texts)
            probabilities = (1.0 - self.lexical_share) * probabilities + self.lexical_share * lexical
        return probabilities

    def clear_cache(self) -> None:
        """Forget what the encoder and the n-gram vocabulary remember of the last messages."""
        if self._encoder is not None:
            self._encoder.clear_cache()
        for head in (self.head, self.lexical_head):
            if head is not None and head.lexical is not None:
                head.lexical.forget()

    def predict(self, texts: List[str]) -> List[Dict[str, Any]]:
        """``{"label", "confidence", "scores"}`` for each cleaned, non-empty text."""
        probabilities = self.probabilities(texts)
        results = []
        for row in probabilities:
            best = int(np.argmax(row))
            results.append(
                {
                    "label": self.head.labels[best],
                    "confidence": float(row[best]),
                    "scores": {label: float(p) for label, p in zip(self.head.labels, row)},
                }
            )
        return results

    # -- persistence ------------------------------------------------------

    def persist(self) -> None:
        """Save the head and what it was trained on (never the base weights)."""
        if self.head is None:
            return
        s = self.settings
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / HEAD_FILE, **self.head.to_arrays())
            if self.lexical_head is not None:
                shared = self.lexical_head.lexical is self.head.lexical  # stored once, with the head
                np.savez(directory / LEXICAL_HEAD_FILE, **self.lexical_head.to_arrays(with_ngrams=not shared))
            meta = {
                "format_version": FORMAT_VERSION,
                "base_fingerprint": self.fingerprint,
                "model": s.model,
                "layer": s.encoder.layer,
                "pooling": s.encoder.pooling,
                "max_length": s.encoder.max_length,
                "dtype": s.dtype,
                "sentence_view": self.view,
                "lexical_share": self.lexical_share,  # 0 when fit kept no n-gram head
            }
            (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SentimentAnalyzer":
        """Load a trained component; the base weights must be the ones it was trained on."""
        try:
            with model_storage.read_from(resource) as directory:
                meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
                with np.load(directory / HEAD_FILE, allow_pickle=False) as arrays:
                    head = IntentHead.from_arrays(dict(arrays))
                lexical_head = None
                if (directory / LEXICAL_HEAD_FILE).exists():
                    with np.load(directory / LEXICAL_HEAD_FILE, allow_pickle=False) as arrays:
                        lexical_head = IntentHead.from_arrays(dict(arrays))
        except (ValueError, FileNotFoundError):
            logger.debug("SentimentAnalyzer: no trained head in '%s'.", resource.name)
            return cls(config, model_storage, resource)
        if meta.get("format_version") != FORMAT_VERSION:
            raise RasaException(
                f"SentimentAnalyzer: this model was trained by another version of rasa_gpt_components "
                f"(format {meta.get('format_version')}, this version reads {FORMAT_VERSION}). Retrain it."
            )
        meta.setdefault("sentence_view", "last")  # heads trained before it existed read the sentence vector
        merged = {**config, **{key: meta[key] for key in _FROZEN}}
        component = cls(merged, model_storage, resource, head, meta.get("base_fingerprint"))
        if lexical_head is not None:  # trained with one (models trained before it have none)
            if lexical_head.lexical is None:  # its vocabulary is the head's, stored once
                lexical_head.lexical = head.lexical
            if lexical_head.lexical is None:
                raise RasaException("SentimentAnalyzer: the n-gram head's vocabulary is missing. Retrain it.")
            component.lexical_head, component.lexical_share = lexical_head, float(meta.get("lexical_share", 0.0))
        found = component.encoder.fingerprint
        if meta.get("base_fingerprint") and found != meta["base_fingerprint"]:
            raise RasaException(
                f"SentimentAnalyzer was trained on model '{meta['model']}' with weights "
                f"{meta['base_fingerprint'][:12]}, but the weights found now are {found[:12]}. Retrain with `rasa train`."
            )
        component.encoder.warm_up()
        return component


def _no_features(count: int) -> np.ndarray:
    """The n-gram head's sentence features: none (one constant column; it reads the texts)."""
    return np.zeros((count, 1))


def lexical_share(head: IntentHead, lexical_head: IntentHead) -> float:
    """The n-gram head's share in the averaged probabilities: of ``SHARES``, the one with the
    highest accuracy on the rows both heads held out at training (the same rows: the same labels
    and seed); the smallest share among equals. 0 when either head was not calibrated."""
    if head.held_out is None or lexical_head.held_out is None or head.labels != lexical_head.labels:
        return 0.0
    rows, truth, p_head = head.held_out
    if not np.array_equal(rows, lexical_head.held_out[0]):
        return 0.0
    p_lexical = lexical_head.held_out[2]
    accuracy = [float((((1.0 - share) * p_head + share * p_lexical).argmax(1) == truth).mean()) for share in SHARES]
    return float(SHARES[int(np.argmax(accuracy))])  # argmax: the first, smallest share among equals
