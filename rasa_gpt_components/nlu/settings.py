"""GPTIntentClassifier's options: one frozen settings object, built once from
``config.yml`` and passed down to the encoder, the head and the LoRA trainer.

Each part declares its own defaults once (``EncoderSettings``,
``HeadSettings``, ``LoraSettings``) and checks its own values;
``default_config()`` is their flat view, the keys a user writes in
``config.yml``. An unknown key is an error, not a silent no-op.
"""

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Text, Tuple

from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.shared.exceptions import RasaException

from rasa_gpt_components.models.encoder import EncoderSettings
from rasa_gpt_components.models.registry import DEFAULT_MODEL
from rasa_gpt_components.nlu.features import GPT, check_features
from rasa_gpt_components.nlu.head import HeadSettings
from rasa_gpt_components.nlu.lora import LoraSettings

MODES = ("head", "lora")
DEFAULT_FEATURES = ("multilingual-e5-small-int8", "use-multilingual")
LORA_PREFIX = "lora_"
_SHARED = ("random_seed",)  # one key, passed to the head and the LoRA trainer


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything the classifier was configured with."""

    encoder: EncoderSettings
    head: HeadSettings
    lora: LoraSettings
    # what the head reads besides the character n-grams: "gpt" (the model's pooled states)
    # and/or packaged sentence encoders (nlu/features.py; the choice: docs/intent_classifier.md)
    features: Tuple[str, ...] = DEFAULT_FEATURES
    model: str = DEFAULT_MODEL  # a name, .gguf file, model directory or hub id
    dtype: str = "float32"
    num_threads: Optional[int] = None
    mode: str = "head"  # head: frozen GPT + trained head; lora: LoRA-adapted blocks + the same head
    oos_intent: str = "nlu_fallback"
    # entities (found by an extractor before the classifier, annotated in the training data)
    # whose text the features read as a placeholder: an order number says that the message
    # names an order, not what the customer wants done with it
    mask_entities: Tuple[str, ...] = ()
    # typos repaired in what the features read ("refnd please" -> "refund please"): an English
    # word that is neither the training examples' nor an English one becomes the examples' word
    # one edit away (nlu/spelling.py); the message's own text stays as typed
    correct_spelling: bool = True
    ranking_length: int = LABEL_RANKING_LENGTH
    # intents a customer may ask for in one clause of a longer message ("real person please, the
    # phone was a gift and ..."): each clause of a message of several is read too, and a clause
    # read as one of these with at least ``priority_confidence`` gives the message that intent
    priority_intents: Tuple[str, ...] = ()
    priority_confidence: float = 0.95
    # lora mode: share of each intent's examples kept out of adapter training,
    # for calibration and the out-of-scope threshold
    calibration_holdout: float = 0.15
    random_seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", check_features(self.features))
        object.__setattr__(self, "mask_entities", tuple(self.mask_entities or ()))
        object.__setattr__(self, "priority_intents", tuple(self.priority_intents or ()))
        if not all(isinstance(name, str) and name for name in self.priority_intents):
            raise ValueError("priority_intents must be a list of intent names.")
        if not 0.0 < float(self.priority_confidence) <= 1.0:
            raise ValueError(f"priority_confidence must be above 0 and at most 1, got {self.priority_confidence}.")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{self.mode}'.")
        if not 0.0 <= float(self.calibration_holdout) < 0.5:
            raise ValueError("calibration_holdout must be between 0 and 0.5.")
        if self.mode == "lora" and GPT not in self.features:
            raise ValueError("mode lora adapts the GPT model: features must include 'gpt'.")

    @classmethod
    def from_config(cls, config: Dict[Text, Any]) -> "ClassifierSettings":
        """The settings of a ``config.yml`` entry (defaults for what it leaves out);
        a RasaException that names the option when one is unknown or wrong."""
        given = {key: value for key, value in config.items() if key not in _RASA_KEYS}
        unknown = sorted(set(given) - set(default_config()))
        if unknown:
            raise RasaException(f"GPTIntentClassifier: unknown options {unknown} in config.yml.")
        merged = {**default_config(), **given}
        seed = {key: merged[key] for key in _SHARED}

        def part(kind: type, prefix: str = "") -> Any:
            return kind(**seed, **{name: merged[key] for key, name in _keys(kind, prefix).items()})

        try:
            return cls(
                encoder=EncoderSettings(**{n: merged[k] for k, n in _keys(EncoderSettings).items()}),
                head=part(HeadSettings),
                lora=part(LoraSettings, LORA_PREFIX),
                **{name: merged[key] for key, name in _keys(cls).items()},
            )
        except (TypeError, ValueError) as error:
            raise RasaException(f"GPTIntentClassifier: {error}") from None

    def to_config(self) -> Dict[Text, Any]:
        """The flat ``config.yml`` view of these settings."""
        flat = {key: getattr(self, name) for key, name in _keys(ClassifierSettings).items()}
        for part, (prefix, kind) in _PARTS.items():
            flat.update({key: getattr(getattr(self, part), name) for key, name in _keys(kind, prefix).items()})
        return _plain(flat)


_PARTS = {"encoder": ("", EncoderSettings), "head": ("", HeadSettings), "lora": (LORA_PREFIX, LoraSettings)}
# keys Rasa itself may leave in a component's config
_RASA_KEYS = ("name",)


def _keys(kind: type, prefix: str = "") -> Dict[str, str]:
    """``config.yml`` key -> field name, for the fields of ``kind`` a user sets
    directly (the parts and the shared seed are set through their own keys)."""
    skip = tuple(_PARTS) if kind is ClassifierSettings else _SHARED
    return {prefix + f.name: f.name for f in fields(kind) if f.name not in skip}


def default_config() -> Dict[Text, Any]:
    """Every option with its default: what ``get_default_config()`` returns."""
    defaults: Dict[Text, Any] = {}
    for prefix, kind in [("", ClassifierSettings), *_PARTS.values()]:
        defaults.update({key: kind.__dataclass_fields__[name].default for key, name in _keys(kind, prefix).items()})
    return _plain(defaults)


def _plain(config: Dict[Text, Any]) -> Dict[Text, Any]:
    """Lists where the settings hold tuples: what a ``config.yml`` holds."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}
