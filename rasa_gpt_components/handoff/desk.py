"""The hand-off itself: when GenerativeNLG renders a hand-off response, the
summary is built (right away, from the tracker), stored with the message in the
tracker (the response's ``metadata.handoff``) and sent to the desk in the
background: the customer gets the hand-off message whether or not the desk
answers."""

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any, Dict, Sequence, Set

from rasa_gpt_components.handoff.conversation import read_conversation
from rasa_gpt_components.handoff.settings import HandoffSettings
from rasa_gpt_components.handoff.summary import build_summary
from rasa_gpt_components.handoff.webhook import deliver, payload
from rasa_gpt_components.metrics import HANDOFFS, log_fields

logger = logging.getLogger(__name__)


class HandoffDesk:
    """Summaries and their delivery, for GenerativeNLG."""

    def __init__(self, settings: HandoffSettings) -> None:
        self.settings = settings
        self._deliveries: Set[asyncio.Task] = set()
        if settings.webhook.url and settings.webhook.format == "json" and not settings.webhook.secret:
            logger.warning("Hand-off webhook: the environment variable %s is empty, so requests to the "
                           "desk are not signed; see docs/handoff.md.", settings.webhook.secret_env)

    def handles(self, utter_action: str) -> bool:
        return utter_action in self.settings.responses

    def hand_off(self, events: Sequence[Dict[str, Any]], conversation_id: str,
                 offer_actions: Sequence[str] = ()) -> Dict[str, Any]:
        """The hand-off record for the tracker (``{"id", "summary"}``); its delivery
        starts in the background when a webhook is configured. ``offer_actions``: the
        domain's responses that offer a person, beside the configured ones."""
        conversation = read_conversation(events)
        settings = self.settings.summary
        if offer_actions:
            settings = replace(settings, offer_actions=(*settings.offer_actions, *offer_actions))
        score = conversation.slots.get(settings.frustration_slot)
        summary = build_summary(conversation, settings, conversation_id,
                                float(score) if isinstance(score, (int, float)) else None)
        handoff_id = uuid.uuid4().hex
        HANDOFFS.labels(summary["reason"]).inc()
        webhook = self.settings.webhook
        logger.info("handoff %s", log_fields(id=handoff_id, reason=summary["reason"], language=summary["language"] or "-",
                                              turns=len(conversation.turns), webhook=bool(webhook.url)))
        if webhook.url:
            body = payload(summary, handoff_id, self.settings.summary.agent_language, webhook.format)
            task = asyncio.get_running_loop().create_task(deliver(webhook, body, handoff_id))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return {"id": handoff_id, "summary": summary}

    async def drain(self) -> None:
        """Wait for the deliveries under way (tests, shutdown)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)
