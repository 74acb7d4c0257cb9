"""GPTIntentClassifier: a Rasa 3.6 intent classifier on a frozen GPT.

``config.yml``::

    pipeline:
      - name: WhitespaceTokenizer        # or JiebaTokenizer / SpacyTokenizer
      - name: rasa_gpt_components.GPTIntentClassifier
      - name: FallbackClassifier
        threshold: 0.5

It reads the message text itself (no featurizer needed), so it can sit beside
any tokenizer and entity extractor. See docs/intent_classifier.md.
"""

import json
import logging
from typing import Any, Dict, List, Optional, Sequence, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import (
    ENTITIES, ENTITY_ATTRIBUTE_END, ENTITY_ATTRIBUTE_START, ENTITY_ATTRIBUTE_TYPE, INTENT, INTENT_RANKING_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.models import LoadedModel, load_model
from rasa_gpt_components.models.encoder import GPTEncoder
from rasa_gpt_components.nlu.features import Featurizer
from rasa_gpt_components.nlu.head import IntentHead, fit_head, holdout_split
from rasa_gpt_components.nlu.lora import apply_adapter, train_adapter
from rasa_gpt_components.nlu.settings import ClassifierSettings, default_config
from rasa_gpt_components.nlu.spelling import SpellingCorrector
from rasa_gpt_components.text import clauses, clean_text

logger = logging.getLogger(__name__)

HEAD_FILE = "head.npz"
ADAPTER_FILE = "adapter.npz"
SPELLING_FILE = "spelling.json"
META_FILE = "meta.json"
FORMAT_VERSION = 2  # 2: energy-based out-of-scope threshold


def masked(text: str, entities: List[Dict[str, Any]], types: Sequence[str]) -> str:
    """``text`` with each span of an entity of ``types`` replaced by ``<type>``
    (spans without offsets, outside the text or overlapping an earlier one are left)."""
    start, end, kind = ENTITY_ATTRIBUTE_START, ENTITY_ATTRIBUTE_END, ENTITY_ATTRIBUTE_TYPE
    spans = sorted((e[start], e[end], e[kind]) for e in entities
                   if e.get(kind) in types and isinstance(e.get(start), int) and isinstance(e.get(end), int)
                   and 0 <= e[start] < e[end] <= len(text))
    out, position = [], 0
    for first, last, name in spans:
        if first >= position:
            out += [text[position:first], f"<{name}>"]
            position = last
    return "".join(out) + text[position:]


# parse data of a message whose intent one of its clauses gave (``priority_intents``), and
# its key for the message's own ranking (which NegatedRequests may give back)
CLAUSE_READING = "clause_reading"
MESSAGE_RANKING = "message_ranking"


def _first(ranking: List[Dict[str, Any]], name: str, confidence: float) -> Any:
    """(intent, ranking) with ``name`` first at ``confidence`` (or its own, when higher) and
    the other entries scaled to share the rest, their order kept; as long as ``ranking``."""
    own = next((entry["confidence"] for entry in ranking if entry["name"] == name), 0.0)
    confidence = max(float(confidence), float(own))
    others = [entry for entry in ranking if entry["name"] != name][: max(len(ranking) - 1, 0)]
    total = sum(entry["confidence"] for entry in others)
    scale = (1.0 - confidence) / total if total > 0.0 else 0.0
    first = {"name": name, "confidence": confidence}
    return first, [first] + [{"name": e["name"], "confidence": e["confidence"] * scale} for e in others]


class BaseModelChangedError(RasaException):
    """The base model's weights differ from the ones the classifier was trained on."""


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class GPTIntentClassifier(IntentClassifier, GraphComponent):
    """Intent classification with pooled hidden states of a local GPT model."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see docs/intent_classifier.md); the
        defaults are declared once, in ``nlu/settings.py``."""
        return default_config()

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the component needs."""
        return ["torch", "transformers", "sklearn", "peft"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        head: Optional[IntentHead] = None,
        fingerprint: Optional[str] = None,
        adapter: Optional[Dict[str, Any]] = None,
        spelling: Optional[SpellingCorrector] = None,
    ) -> None:
        self.settings = ClassifierSettings.from_config(config)
        self._model_storage = model_storage
        self._resource = resource
        self.head = head
        self.fingerprint = fingerprint
        # lora mode: {"arrays": adapter matrices, "targets": adapted layer names}
        self.adapter = adapter
        # correct_spelling: the training examples' words, for repairing typos of messages
        self.spelling = spelling
        self._features: Optional[Featurizer] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "GPTIntentClassifier":
        """A new, untrained component."""
        return cls(config, model_storage, resource)

    # -- the shared model and the encoder --------------------------------

    def _loaded(self) -> LoadedModel:
        s = self.settings
        return load_model(s.model, dtype=s.dtype, num_threads=s.num_threads)

    def _gpt_encoder(self) -> GPTEncoder:
        encoder = GPTEncoder(self._loaded(), self.settings.encoder)
        if self.adapter is not None:
            apply_adapter(encoder, self.adapter["arrays"], self.settings.lora, self.adapter["targets"])
        return encoder

    @property
    def features(self) -> Featurizer:
        """The feature extractor of the sources in ``features`` (loaded on first use;
        the GPT model only when ``gpt`` is one of them)."""
        if self._features is None:
            self._features = Featurizer(self.settings.features, self._gpt_encoder)
        return self._features

    # -- training ---------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        """Extract features of every intent example and fit the calibrated head."""
        # cleaned (and masked) here, once, for everything below
        examples = [(m.get(INTENT), text) for m in training_data.intent_examples
                    if m.get(INTENT) and (text := self._text(m))]
        if not examples:
            logger.debug("GPTIntentClassifier: no intent examples, nothing to train.")
            return self._resource
        labels = [label for label, _ in examples]
        texts = [text for _, text in examples]
        if len(set(labels)) < 2:
            logger.warning(
                "GPTIntentClassifier: only one intent in the training data; "
                "every message will get it."
            )
        unknown = sorted(set(self.settings.priority_intents) - set(labels))
        if unknown:
            logger.warning("GPTIntentClassifier: priority_intents %s are not intents of the training data; "
                           "no message will get them.", unknown)
        self.spelling = SpellingCorrector.fit(texts) if self.settings.correct_spelling else None
        split = None
        if self.settings.mode == "lora":
            split = self._train_adapter(texts, labels)
        features = self.features.encode(
            texts,
            progress=self.settings.show_progress,
            desc="GPTIntentClassifier features",
        )
        self.head = fit_head(features, labels, self.settings.head, texts=texts, calibration_split=split)
        self.fingerprint = self.features.fingerprint
        logger.info(
            "GPTIntentClassifier trained on %d examples of %d intents "
            "(temperature %.2f, out-of-fold accuracy %s).",
            len(examples),
            len(self.head.labels),
            self.head.temperature,
            f"{self.head.info['oof_accuracy']:.3f}" if "oof_accuracy" in self.head.info else "n/a",
        )
        self.persist()
        return self._resource

    def _train_adapter(self, texts: List[str], labels: List[str]) -> Optional[Any]:
        """Fine-tune LoRA adapters on all but a held-out slice of each intent;
        return (kept rows, held-out rows) for calibrating the head, or None."""
        names = sorted(set(labels))
        y = np.array([names.index(label) for label in labels])
        split = holdout_split(y, self.settings.calibration_holdout, self.settings.random_seed)
        kept = split[0] if split is not None else np.arange(len(y))
        arrays, targets = train_adapter(
            self.features.gpt,
            [texts[i] for i in kept],
            y[kept],
            len(names),
            self.settings.lora,
            progress=self.settings.show_progress,
        )
        self.adapter = {"arrays": arrays, "targets": targets}
        return split

    def _text(self, message: Message) -> str:
        """The text the features read: cleaned, with the ``mask_entities`` spans as placeholders."""
        return clean_text(masked(message.get(TEXT) or "", message.get(ENTITIES) or [], self.settings.mask_entities))

    # -- prediction -------------------------------------------------------

    def process(self, messages: List[Message]) -> List[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message (batched)."""
        if self.head is None:
            return messages
        texts = [self._text(m) for m in messages]  # cleaned here, once, for everything below
        if self.spelling is not None:
            texts = [self.spelling.correct(text) for text in texts]
        present = [i for i, text in enumerate(texts) if text]
        predictions: Dict[int, Any] = {}
        if present:
            features = self.features.encode([texts[i] for i in present])
            ranking_of = self.rank(features, [texts[i] for i in present])
            for index, ranking in zip(present, ranking_of):
                predictions[index] = ranking
        from_clauses = self._read_priority_clauses(texts, predictions) if self.settings.priority_intents else {}
        for index, message in enumerate(messages):
            intent, ranking = predictions.get(index, ({"name": None, "confidence": 0.0}, []))
            if index in from_clauses:
                message.set(CLAUSE_READING, from_clauses[index], add_to_output=True)
                intent, ranking = _first(ranking, from_clauses[index]["name"], from_clauses[index]["confidence"])
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def _read_priority_clauses(self, texts: List[str], predictions: Dict[int, Any]) -> Dict[int, Dict[str, Any]]:
        """The messages of several clauses of which one reads as a ``priority_intents``
        intent with at least ``priority_confidence``: message index -> that reading (name,
        confidence, the clause, and the message's own ranking, which NegatedRequests gives
        back when the clause turns out to decline what it names). All clauses of the batch
        are read in one pass."""
        names, threshold = self.settings.priority_intents, float(self.settings.priority_confidence)

        def asks(intent: Dict[str, Any]) -> bool:
            return intent["name"] in names and intent["confidence"] >= threshold

        pieces = []  # (message index, clause)
        for index, (intent, _) in predictions.items():
            if asks(intent):
                continue  # already read so
            parts = clauses(texts[index])
            if len(parts) > 1:
                pieces += [(index, part) for part in parts]
        if not pieces:
            return {}
        parts = [part for _, part in pieces]
        best: Dict[int, Dict[str, Any]] = {}
        for (index, part), (intent, _) in zip(pieces, self.rank(self.features.encode(parts), parts)):
            if asks(intent):
                if index not in best or intent["confidence"] > best[index]["confidence"]:
                    best[index] = {**intent, "clause": part, MESSAGE_RANKING: predictions[index][1]}
        return best

    def rank(self, features: np.ndarray, texts: List[str]) -> List[Any]:
        """(intent, ranking) for each feature row, ranking sorted by confidence.

        A row the head finds out of scope gets ``oos_intent`` first, with a
        confidence above 0.5 that grows with how far below the threshold its energy is;
        the in-scope confidences share the rest.
        """
        assert self.head is not None
        probabilities, p_oos = self.head.predict(features, texts)
        length = int(self.settings.ranking_length)
        results = []
        for row, oos in zip(probabilities, p_oos):
            names = list(self.head.labels)
            if oos > 0.0:
                row = np.append(row * (1.0 - oos), oos)
                names.append(self.settings.oos_intent)
            order = np.argsort(-row, kind="stable")
            if length > 0:
                order = order[:length]
            ranking = [{"name": names[k], "confidence": float(row[k])} for k in order]
            results.append((ranking[0], ranking))
        return results

    # -- persistence ------------------------------------------------------

    def persist(self) -> None:
        """Save the head and what it was trained on (never the base weights)."""
        if self.head is None:
            return
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / HEAD_FILE, **self.head.to_arrays())
            if self.adapter is not None:
                np.savez(directory / ADAPTER_FILE, **self.adapter["arrays"])
            if self.spelling is not None:
                (directory / SPELLING_FILE).write_text(json.dumps(self.spelling.to_json()), encoding="utf-8")
            s = self.settings
            meta = {
                "format_version": FORMAT_VERSION,
                "mode": s.mode,
                "features": list(s.features),
                "model": s.model,
                "base_fingerprint": self.fingerprint,
                "layer": s.encoder.layer,
                "pooling": s.encoder.pooling,
                "max_length": s.encoder.max_length,
                "dtype": s.dtype,
            }
            if self.adapter is not None:
                meta["lora"] = {"targets": self.adapter["targets"], "rank": s.lora.rank, "alpha": s.lora.alpha}
            (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "GPTIntentClassifier":
        """Load a trained component; check that the base weights did not change."""
        try:
            with model_storage.read_from(resource) as directory:
                meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
                with np.load(directory / HEAD_FILE, allow_pickle=False) as arrays:
                    head = IntentHead.from_arrays(dict(arrays))
                adapter = None
                if "lora" in meta:
                    with np.load(directory / ADAPTER_FILE, allow_pickle=False) as arrays:
                        adapter = {"arrays": dict(arrays), "targets": meta["lora"]["targets"]}
                spelling_file = directory / SPELLING_FILE
                # trained with correct_spelling (a model trained before the option has no file: no repair)
                spelling = (SpellingCorrector.from_json(json.loads(spelling_file.read_text(encoding="utf-8")))
                            if spelling_file.exists() else None)
        except (ValueError, FileNotFoundError):
            logger.debug("GPTIntentClassifier: no trained head in '%s'.", resource.name)
            return cls.create(config, model_storage, resource, execution_context)
        if meta.get("format_version") != FORMAT_VERSION:
            raise RasaException(
                f"GPTIntentClassifier: this model was trained by another version of "
                f"rasa_gpt_components (format {meta.get('format_version')}, this version reads "
                f"format {FORMAT_VERSION}). Retrain it with `rasa train`."
            )
        # the training-time choices win over a config edited after training
        merged = {**config, **{k: meta[k] for k in ("model", "layer", "pooling", "max_length", "dtype")}}
        merged["mode"] = meta.get("mode", "head")
        merged["features"] = meta.get("features", ["gpt"])  # trained before the option existed: GPT only
        if "lora" in meta:
            merged.update(lora_rank=meta["lora"]["rank"], lora_alpha=meta["lora"]["alpha"])
        component = cls(merged, model_storage, resource, head, meta.get("base_fingerprint"), adapter, spelling)
        found = component.features.fingerprint
        if meta.get("base_fingerprint") and found != meta["base_fingerprint"]:
            raise BaseModelChangedError(
                f"GPTIntentClassifier was trained on {', '.join(merged['features'])} "
                f"(model '{meta['model']}') with weights {meta['base_fingerprint'][:40]}, but the weights "
                f"found now are {found[:40]}. Retrain the model with `rasa train`."
            )
        component.features.warm_up()  # kernel set-up before the first user, not during
        return component
