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
from typing import Any, Dict, List, Optional, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_gpt_components.models import LoadedModel, load_model
from rasa_gpt_components.models.encoder import COMPUTES, POOLINGS, GPTEncoder
from rasa_gpt_components.nlu.head import IntentHead, fit_head, holdout_split
from rasa_gpt_components.nlu.lora import LoraSettings, apply_adapter, train_adapter

logger = logging.getLogger(__name__)

MODES = ("head", "lora")
HEAD_FILE = "head.npz"
ADAPTER_FILE = "adapter.npz"
META_FILE = "meta.json"
FORMAT_VERSION = 2  # 2: energy-based out-of-scope threshold


class BaseModelChangedError(RasaException):
    """The base model's weights differ from the ones the classifier was trained on."""


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class GPTIntentClassifier(IntentClassifier, GraphComponent):
    """Intent classification with pooled hidden states of a local GPT model."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see docs/intent_classifier.md)."""
        return {
            # which model (a name, .gguf file, model directory or hub id)
            "model": "smollm2-135m-instruct",
            "dtype": "float32",
            "num_threads": None,
            # head: frozen GPT + trained head; lora: LoRA-adapted blocks + the same head
            "mode": "head",
            # features: pooled hidden states of this layer (1-based)
            "layer": 6,
            "pooling": "mean",
            "max_length": 64,
            # auto: bfloat16 on CPUs with native BF16 (same accuracy, faster), else float32;
            # int8: dynamic quantisation (fastest, costs accuracy)
            "compute": "auto",
            "batch_size": 32,
            "cache_size": 2048,
            # head: character n-gram TF-IDF features beside the GPT features
            "lexical": True,
            # inverse L2 regularisation strength and L-BFGS iterations of the head
            "C": 10.0,
            "max_iter": 200,
            # calibration: temperature fitted on out-of-fold predictions
            "calibration_folds": 5,
            # out-of-scope detection without out-of-scope training examples
            "oos_detection": True,
            "oos_rate": 0.02,
            "oos_intent": "nlu_fallback",
            "ranking_length": LABEL_RANKING_LENGTH,
            # lora mode: adapter shape and training
            "lora_rank": 8,
            "lora_alpha": 16.0,
            "lora_dropout": 0.05,
            "lora_epochs": 3,
            "lora_min_steps": 200,
            "lora_learning_rate": 5e-4,
            "lora_batch_size": 16,
            # lora mode: share of each intent's examples kept out of adapter
            # training, for calibration and the out-of-scope threshold
            "calibration_holdout": 0.15,
            "random_seed": 0,
            "show_progress": True,
        }

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
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self.validate_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.head = head
        self.fingerprint = fingerprint
        # lora mode: {"arrays": adapter matrices, "targets": adapted layer names}
        self.adapter = adapter
        self._encoder: Optional[GPTEncoder] = None

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Refuse options that cannot work, with a message that says why."""
        if config["mode"] not in MODES:
            raise RasaException(
                f"GPTIntentClassifier: mode must be one of {', '.join(MODES)}, "
                f"got '{config['mode']}'."
            )
        if config["pooling"] not in POOLINGS:
            raise RasaException(
                f"GPTIntentClassifier: pooling must be one of {', '.join(POOLINGS)}, "
                f"got '{config['pooling']}'."
            )
        if config["compute"] not in COMPUTES:
            raise RasaException(
                f"GPTIntentClassifier: compute must be one of {', '.join(COMPUTES)}, "
                f"got '{config['compute']}'."
            )
        if not 0.0 < float(config["oos_rate"]) < 0.5:
            raise RasaException("GPTIntentClassifier: oos_rate must be between 0 and 0.5.")
        if not 0.0 <= float(config["calibration_holdout"]) < 0.5:
            raise RasaException("GPTIntentClassifier: calibration_holdout must be between 0 and 0.5.")
        for key in ("layer", "max_length", "batch_size", "lora_rank", "lora_batch_size"):
            if int(config[key]) < 1:
                raise RasaException(f"GPTIntentClassifier: {key} must be at least 1.")

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
        return load_model(
            self.config["model"],
            dtype=self.config["dtype"],
            num_threads=self.config["num_threads"],
        )

    @property
    def encoder(self) -> GPTEncoder:
        """The feature extractor (built on first use)."""
        if self._encoder is None:
            self._encoder = GPTEncoder(
                self._loaded(),
                layer=int(self.config["layer"]),
                pooling=self.config["pooling"],
                max_length=int(self.config["max_length"]),
                batch_size=int(self.config["batch_size"]),
                cache_size=int(self.config["cache_size"]),
                compute=self.config["compute"],
            )
            if self.adapter is not None:
                apply_adapter(self._encoder, self.adapter["arrays"], self.lora_settings, self.adapter["targets"])
        return self._encoder

    @property
    def lora_settings(self) -> LoraSettings:
        """The ``lora_*`` options."""
        c = self.config
        return LoraSettings(
            rank=int(c["lora_rank"]),
            alpha=float(c["lora_alpha"]),
            dropout=float(c["lora_dropout"]),
            epochs=int(c["lora_epochs"]),
            min_steps=int(c["lora_min_steps"]),
            learning_rate=float(c["lora_learning_rate"]),
            batch_size=int(c["lora_batch_size"]),
            random_seed=int(c["random_seed"]),
        )

    # -- training ---------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        """Extract features of every intent example and fit the calibrated head."""
        examples = [
            m for m in training_data.intent_examples if m.get(INTENT) and m.get(TEXT, "").strip()
        ]
        if not examples:
            logger.debug("GPTIntentClassifier: no intent examples, nothing to train.")
            return self._resource
        labels = [m.get(INTENT) for m in examples]
        if len(set(labels)) < 2:
            logger.warning(
                "GPTIntentClassifier: only one intent in the training data; "
                "every message will get it."
            )
        texts = [m.get(TEXT) for m in examples]
        split = None
        if self.config["mode"] == "lora":
            split = self._train_adapter(texts, labels)
        features = self.encoder.encode(
            texts,
            progress=bool(self.config["show_progress"]),
            desc="GPTIntentClassifier features",
        )
        self.head = fit_head(
            features,
            labels,
            texts=texts if self.config["lexical"] else None,
            c=float(self.config["C"]),
            max_iter=int(self.config["max_iter"]),
            calibration_folds=int(self.config["calibration_folds"]),
            oos_rate=float(self.config["oos_rate"]),
            oos_detection=bool(self.config["oos_detection"]),
            random_seed=int(self.config["random_seed"]),
            calibration_split=split,
        )
        self.fingerprint = self.encoder.loaded.fingerprint
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
        split = holdout_split(y, float(self.config["calibration_holdout"]), int(self.config["random_seed"]))
        kept = split[0] if split is not None else np.arange(len(y))
        arrays, targets = train_adapter(
            self.encoder,
            [texts[i] for i in kept],
            y[kept],
            len(names),
            self.lora_settings,
            progress=bool(self.config["show_progress"]),
        )
        self.adapter = {"arrays": arrays, "targets": targets}
        return split

    # -- prediction -------------------------------------------------------

    def process(self, messages: List[Message]) -> List[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message (batched)."""
        if self.head is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        present = [i for i, text in enumerate(texts) if text.strip()]
        predictions: Dict[int, Any] = {}
        if present:
            features = self.encoder.encode([texts[i] for i in present])
            ranking_of = self.rank(features, [texts[i] for i in present])
            for index, ranking in zip(present, ranking_of):
                predictions[index] = ranking
        for index, message in enumerate(messages):
            intent, ranking = predictions.get(index, ({"name": None, "confidence": 0.0}, []))
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def rank(self, features: np.ndarray, texts: List[str]) -> List[Any]:
        """(intent, ranking) for each feature row, ranking sorted by confidence.

        A row the head finds out of scope gets ``oos_intent`` first, with a
        confidence above 0.5 that grows with how far below the threshold its energy is;
        the in-scope confidences share the rest.
        """
        assert self.head is not None
        probabilities, p_oos = self.head.predict(features, texts)
        length = int(self.config["ranking_length"])
        results = []
        for row, oos in zip(probabilities, p_oos):
            names = list(self.head.labels)
            if oos > 0.0:
                row = np.append(row * (1.0 - oos), oos)
                names.append(self.config["oos_intent"])
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
            meta = {
                "format_version": FORMAT_VERSION,
                "mode": self.config["mode"],
                "model": self.config["model"],
                "base_fingerprint": self.fingerprint,
                "layer": self.config["layer"],
                "pooling": self.config["pooling"],
                "max_length": self.config["max_length"],
                "dtype": self.config["dtype"],
            }
            if self.adapter is not None:
                meta["lora"] = {
                    "targets": self.adapter["targets"],
                    "rank": self.config["lora_rank"],
                    "alpha": self.config["lora_alpha"],
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
        if "lora" in meta:
            merged.update(lora_rank=meta["lora"]["rank"], lora_alpha=meta["lora"]["alpha"])
        component = cls(merged, model_storage, resource, head, meta.get("base_fingerprint"), adapter)
        loaded = component._loaded()
        if meta.get("base_fingerprint") and loaded.fingerprint != meta["base_fingerprint"]:
            raise BaseModelChangedError(
                f"GPTIntentClassifier was trained on model '{meta['model']}' with weights "
                f"{meta['base_fingerprint'][:12]}, but the weights found now are "
                f"{loaded.fingerprint[:12]}. Retrain the model with `rasa train`."
            )
        component.encoder.warm_up()  # kernel set-up before the first user, not during
        return component
