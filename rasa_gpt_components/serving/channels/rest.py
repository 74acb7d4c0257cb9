"""Rasa's REST channel (``rasa.core.channels.rest``) with the request checked
before Rasa reads it: a body that is not a JSON object, a ``message`` that is
not a string, a ``sender`` that is not a short string and ``metadata`` that is
not an object get ``400``; bodies over ``max_body_bytes`` get ``413``. Rasa's own
channel answers such requests with a ``500`` and a traceback in the log, or
with ``200 []`` after logging the exception. Same URL
(``/webhooks/rest/webhook``), same replies; registered in credentials.yml as
``rasa_gpt_components.serving.RestInput``."""

import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


class RestInput(RasaRestInput):
    """``POST {"sender": "...", "message": "...", "metadata": {...}}``, checked."""

    def __init__(self, max_body_bytes: int = 100_000, max_sender_chars: int = 128) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_sender_chars = max_sender_chars

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        return cls(int(credentials.get("max_body_bytes", 100_000)),
                   int(credentials.get("max_sender_chars", 128)))

    def _problem(self, request: Request) -> Optional[str]:
        """Why the request cannot be a message (None when it can)."""
        try:
            body = request.json
        except InvalidUsage:
            return "the body is not JSON"
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
        if not isinstance(sender, str) or not sender or len(sender) > self.max_sender_chars:
            return f"'sender' must be a string of 1 to {self.max_sender_chars} characters"
        if not isinstance(message, str):
            return "'message' must be a string"
        if metadata is not None and not isinstance(metadata, dict):
            return "'metadata' must be a JSON object"
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        rasa_blueprint = super().blueprint(on_new_message)

        @rasa_blueprint.middleware("request")
        async def checked(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            if len(request.body or b"") > self.max_body_bytes:
                return response.json({"error": "request too large"}, status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            problem = self._problem(request)
            if problem:
                logger.warning("rest: request refused (400, %s)", problem)
                return response.json({"error": problem}, status=HTTPStatus.BAD_REQUEST)
            return None

        return rasa_blueprint
