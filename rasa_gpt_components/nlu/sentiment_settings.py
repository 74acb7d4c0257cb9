"""SentimentAnalyzer's options: one frozen settings object, built once from
``config.yml`` and passed down to the encoder and the head.

The encoder and head options keep the names GPTIntentClassifier uses; the
defaults that differ for sentiment (longer messages, no out-of-scope
detection) are declared once, here. An unknown key is an error.
"""

from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Optional, Text

from rasa.shared.exceptions import RasaException

from rasa_gpt_components.models.encoder import EncoderSettings
from rasa_gpt_components.nlu.head import HeadSettings

# reviews are longer than intents: a longer window (docs/benchmarks.md, "Sentiment")
ENCODER_DEFAULTS = EncoderSettings(layer=6, pooling="mean", max_length=96)
# a plain calibrated classifier: every message gets one of the trained labels
# C chosen on development splits (docs/benchmarks.md, "Sentiment"): 1.0 beat 10 on English, tied on Chinese
HEAD_DEFAULTS = HeadSettings(random_seed=0, lexical=True, C=1.0, oos_detection=False, class_weight=None)
HEAD_KEYS = ("lexical", "C", "max_iter", "calibration_folds")
_RASA_KEYS = ("name",)


@dataclass(frozen=True)
class SentimentSettings:
    """Everything the analyzer was configured with."""

    encoder: EncoderSettings = ENCODER_DEFAULTS
    head: HeadSettings = HEAD_DEFAULTS
    # CSV the user provides (read at `rasa train`; relative to the working
    # directory): one message per row, in ``text_column`` and ``label_column``
    training_data: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    # a sentence encoder (models/sentence.py), or a GPT model reference (name, .gguf file,
    # directory, hub id) whose pooled states are the features; e5 measured best (docs/handoff.md)
    model: str = "multilingual-e5-small-int8"
    # which vector of a sentence encoder (models/sentence.py, "views"): None picks ``last4``
    # (the mean of e5's last four layers; chosen by cross-validation, docs/handoff.md) where
    # the encoder gives it, else ``last``; not read for a GPT model
    sentence_view: Optional[str] = None
    # a second head on the character n-grams alone (inverse regularisation ``lexical_head_C``),
    # its calibrated probabilities averaged with the head's, its share chosen on the head's
    # held-out rows at training (0 when it adds nothing there); chosen by cross-validation
    # on the training parts of both public sets (docs/benchmarks.md, "Sentiment")
    lexical_head: bool = True
    lexical_head_C: float = 10.0
    dtype: str = "float32"
    num_threads: Optional[int] = None
    random_seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        if float(self.lexical_head_C) <= 0:
            raise ValueError(f"lexical_head_C must be positive, got {self.lexical_head_C}.")

    @classmethod
    def from_config(cls, config: Dict[Text, Any]) -> "SentimentSettings":
        """The settings of a ``config.yml`` entry; a RasaException that names
        the option when one is unknown or wrong."""
        given = {key: value for key, value in config.items() if key not in _RASA_KEYS}
        unknown = sorted(set(given) - set(default_config()))
        if unknown:
            raise RasaException(f"SentimentAnalyzer: unknown options {unknown} in config.yml.")
        merged = {**default_config(), **given}
        try:
            encoder = EncoderSettings(**{name: merged[name] for name in _encoder_keys()})
            head = replace(HEAD_DEFAULTS, random_seed=merged["random_seed"], **{k: merged[k] for k in HEAD_KEYS})
            return cls(encoder=encoder, head=head, **{name: merged[name] for name in _own_keys()})
        except (TypeError, ValueError) as error:
            raise RasaException(f"SentimentAnalyzer: {error}") from None


def _encoder_keys() -> list:
    return [f.name for f in fields(EncoderSettings)]


def _own_keys() -> list:
    return [f.name for f in fields(SentimentSettings) if f.name not in ("encoder", "head")]


def default_config() -> Dict[Text, Any]:
    """Every option with its default: what ``get_default_config()`` returns."""
    defaults: Dict[Text, Any] = {name: getattr(ENCODER_DEFAULTS, name) for name in _encoder_keys()}
    defaults.update({key: getattr(HEAD_DEFAULTS, key) for key in HEAD_KEYS})
    defaults.update({name: SentimentSettings.__dataclass_fields__[name].default for name in _own_keys()})
    return defaults
