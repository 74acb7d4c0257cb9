"""GenerativeNLG's options: one frozen settings object, built once from the
``nlg:`` section of ``endpoints.yml`` and passed down.

The answer pipeline's options are ``AnswerSettings`` (flat keys: ``bot_name``,
``max_chars``, ...), retrieval's are ``RetrievalSettings`` (the ``retrieval:``
mapping); each declares its defaults once and checks its own values. Two keys
mean more than their field: ``generation_languages: auto`` is what the local
model is good at (its registry entry; every language for a server), and
``blocklist`` adds words to the built-in list. An unknown key is an error.
"""

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, Optional, Tuple

from rasa.shared.exceptions import RasaException

from rasa_gpt_components.generation import guardrails
from rasa_gpt_components.generation.answer import AnswerSettings
from rasa_gpt_components.handoff import settings as handoff_settings
from rasa_gpt_components.handoff.settings import HandoffSettings
from rasa_gpt_components.knowledge.retrieval import RetrievalSettings
from rasa_gpt_components.models.registry import DEFAULT_MODEL, get_spec

BACKENDS = ("local", "openai")
# endpoints.yml keys whose value is not the AnswerSettings field as it is
_ANSWER_KEY_DEFAULTS: Dict[str, Any] = {"generation_languages": "auto", "blocklist": []}
_PARTS = ("answer", "retrieval", "handoff")  # fields made of their own settings objects


@dataclass(frozen=True)
class NLGSettings:
    """Everything GenerativeNLG was configured with."""

    knowledge: str = "knowledge"  # folder (or file) of the knowledge base
    backend: str = "local"  # or "openai"
    model: Optional[str] = None  # local: a model reference (the default model when None)
    base_url: Optional[str] = None  # openai: e.g. http://127.0.0.1:8080/v1
    server_model: str = "default"
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never from the file
    time_budget: float = 4.5  # seconds per generated turn; WeChat waits 5 s for a passive reply
    max_concurrency: int = 1
    fallback_response: str = "utter_generative_fallback"
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'.")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8080/v1).")
        if float(self.time_budget) <= 0:
            raise ValueError("time_budget must be positive.")
        if int(self.max_concurrency) < 1:
            raise ValueError("max_concurrency must be at least 1.")

    @property
    def api_key(self) -> str:
        """The OpenAI-compatible server's key, from the environment."""
        return os.environ.get(self.api_key_env or "", "")

    @classmethod
    def from_endpoint(cls, given: Dict[str, Any]) -> "NLGSettings":
        """The settings of an ``nlg:`` section (defaults for what it leaves out);
        a RasaException that names the option when one is unknown or wrong."""
        unknown = sorted(set(given) - set(default_config()))
        if unknown:
            raise RasaException(f"GenerativeNLG: unknown options {unknown} in endpoints.yml.")
        retrieval_given = given.get("retrieval") or {}
        unknown = sorted(set(retrieval_given) - set(_names(RetrievalSettings)))
        if unknown:
            raise RasaException(f"GenerativeNLG: unknown retrieval options {unknown} in endpoints.yml.")
        own = {key: given[key] for key in _names(cls) if key in given and key not in _PARTS}
        answer = {key: given[key] for key in _names(AnswerSettings) if key in given}
        try:
            handoff = HandoffSettings.from_config(given.get("handoff"), own.get("fallback_response", cls.fallback_response))
            settings = cls(**own, retrieval=RetrievalSettings(**retrieval_given), handoff=handoff)
            languages = _generation_languages(answer.pop("generation_languages", "auto"), settings)
            blocklist = tuple(guardrails.DEFAULT_BLOCKLIST) + tuple(answer.pop("blocklist", None) or ())
            return replace(settings, answer=AnswerSettings(
                **answer, generation_languages=languages, blocklist=blocklist))
        except (TypeError, ValueError) as error:
            raise RasaException(f"GenerativeNLG: {error}") from None


def _names(kind: type) -> Tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def _generation_languages(chosen: Any, settings: NLGSettings) -> Tuple[str, ...]:
    """``auto``: what the local model is good at (its registry entry); every
    language for a model server or a model the registry does not know."""
    if chosen != "auto":
        if isinstance(chosen, str):
            raise ValueError(f"generation_languages must be 'auto' or a list of zh/en, got {chosen!r}.")
        return tuple(chosen or ())
    spec = get_spec(settings.model or DEFAULT_MODEL) if settings.backend == "local" else None
    return tuple(spec.generation_languages) if spec else ("zh", "en")


def default_config() -> Dict[str, Any]:
    """Every ``endpoints.yml`` option with its default."""
    defaults = NLGSettings()
    config = {f.name: getattr(defaults, f.name) for f in fields(NLGSettings) if f.name not in _PARTS}
    config.update({f.name: getattr(defaults.answer, f.name) for f in fields(AnswerSettings)})
    config.update(_ANSWER_KEY_DEFAULTS)
    config["retrieval"] = {f.name: getattr(defaults.retrieval, f.name) for f in fields(RetrievalSettings)}
    config["handoff"] = handoff_settings.default_config()
    return config
