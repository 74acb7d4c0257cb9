"""The ``handoff:`` options of GenerativeNLG (``endpoints.yml``), one frozen
object: which responses are a hand-off, what the summary holds, where it goes."""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

from rasa_gpt_components.handoff.summary import SummarySettings
from rasa_gpt_components.handoff.webhook import WebhookSettings

_TUPLES = ("responses", "small_talk_intents", "handoff_intents", "ignore_entities", "report_slots", "offer_actions")


@dataclass(frozen=True)
class HandoffSettings:
    responses: Tuple[str, ...] = ("utter_handoff",)  # rendering one of these is a hand-off
    summary: SummarySettings = field(default_factory=SummarySettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)

    @classmethod
    def from_config(cls, given: Optional[Dict[str, Any]], fallback_response: str) -> "HandoffSettings":
        """The settings of a ``handoff:`` mapping: the summary's options flat, the
        webhook's under ``webhook:``; ValueError naming an unknown option."""
        given = dict(given or {})
        webhook = dict(given.pop("webhook", None) or {})
        known = {"responses"} | {f.name for f in fields(SummarySettings)} - {"fallback_response"}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown handoff options {unknown}.")
        unknown = sorted(set(webhook) - {f.name for f in fields(WebhookSettings)})
        if unknown:
            raise ValueError(f"unknown handoff webhook options {unknown}.")
        for key in _TUPLES:
            if key in given:
                given[key] = tuple(given[key] or ())
        responses = given.pop("responses", cls.responses)
        summary = SummarySettings(**given, fallback_response=fallback_response)
        return cls(responses=responses, summary=summary, webhook=WebhookSettings(**webhook))


def default_config() -> Dict[str, Any]:
    """Every ``handoff:`` option with its default."""
    summary = SummarySettings()
    config: Dict[str, Any] = {"responses": list(HandoffSettings.responses)}
    config.update({f.name: getattr(summary, f.name) for f in fields(SummarySettings) if f.name != "fallback_response"})
    config["webhook"] = {f.name: getattr(WebhookSettings(), f.name) for f in fields(WebhookSettings)}
    return config
