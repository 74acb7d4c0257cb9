"""The bot's answers on their way to a WeChat or WeCom user: collected for the
passive reply (``WeChatOutput``), or sent through the message API when they
come too late for it or in several parts (``MessageSender``)."""

import asyncio
import logging
from typing import Any, Awaitable, Dict, List, Optional, Sequence, Set, Text

from rasa.core.channels.channel import OutputChannel

from rasa_gpt_components.metrics import MESSAGE_API_FAILURES
from rasa_gpt_components.serving.channels.formatting import buttons_as_text, split_message
from rasa_gpt_components.serving.channels.wechat_api import MessageClient, WeChatAPIError

logger = logging.getLogger(__name__)


def mask(user: str) -> str:
    """A user id for logs: enough to correlate, not the whole OpenID."""
    return (user[:4] + "…") if user else "?"


class WeChatOutput(OutputChannel):
    """The bot's replies to one WeChat message as text (buttons as numbered lines).

    Collected while the request waits for them; with ``api`` set (messages Rasa
    sends outside a request, e.g. through its HTTP API) each is sent right away."""

    def __init__(self, api: Optional[MessageClient] = None, max_message_bytes: int = 2048) -> None:
        self.texts: List[str] = []
        self.buttons: Optional[List[Dict[str, Any]]] = None
        self.api = api
        self.max_message_bytes = max_message_bytes

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    async def _add(self, recipient_id: Text, text: Text) -> None:
        if self.api is None:
            self.texts.append(text)
            return
        for part in split_message(text, self.max_message_bytes):
            await self.api.send(recipient_id, part)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, text)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        self.buttons = list(buttons)
        await self._add(recipient_id, buttons_as_text(text, buttons))

    async def send_quick_replies(self, recipient_id: Text, text: Text,
                                 quick_replies: List[Dict[Text, Any]], **kwargs: Any) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, image)

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self._add(recipient_id, attachment)

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str) and text:
            await self._add(recipient_id, text)
        else:
            logger.debug("wechat: custom message without text not sent")


class MessageSender:
    """Sends a channel's answers through the message API (``api``; None without a
    secret), in the background when the request must not wait for them. A
    failure is counted and logged, without the message text."""

    def __init__(self, channel: str, api: Optional[MessageClient]) -> None:
        self.channel = channel
        self.api = api
        self._tasks: Set[asyncio.Future] = set()

    async def send(self, user: str, parts: Sequence[str]) -> None:
        """``parts`` to ``user`` in order, stopping at the first that fails."""
        if self.api is None:
            logger.error("%s: an answer for %s was not delivered: no secret for the message API",
                         self.channel, mask(user))
            return
        for number, part in enumerate(parts, 1):
            try:
                await self.api.send(user, part)
            except WeChatAPIError as error:
                MESSAGE_API_FAILURES.labels(self.channel).inc()
                logger.error("%s: part %d/%d for %s not delivered: %s", self.channel, number, len(parts),
                             mask(user), error)
                return

    def in_background(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
