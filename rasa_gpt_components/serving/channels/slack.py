"""Rasa's built-in Slack connector with three additions a production bot needs:

- each Slack event is answered once: retries (whatever their reason) and replays
  of a signed request within Slack's 5-minute window are recognised by their
  ``event_id`` (or, for interactive payloads, the body) and ignored; with
  ``shared_memory_url`` (Redis) by every instance of the bot, not only the one
  that answered;
- requests larger than ``max_body_bytes`` are refused (413) before any work;
- the Web API base URL is configurable (``slack_api_url``) for proxies and tests;
- secrets may come from SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET, and without them the
  channel answers 503 instead of stopping the whole server.

Everything else, including the signing-secret check, is Rasa's own code
(``rasa.core.channels.slack``). Registered in credentials.yml as
``rasa_gpt_components.serving.SlackInput``; see docs/channels.md."""

import hashlib
import logging
import os
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot
from rasa.core.channels.slack import SlackInput as RasaSlackInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

from rasa_gpt_components.serving.channels.metrics import count_requests, set_outcome, timed
from rasa_gpt_components.serving.channels.seen import seen_keys
from rasa_gpt_components.metrics import MESSAGE_API_FAILURES

logger = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
# every reason Slack gives for a retry: the first delivery was already accepted
ALL_RETRY_REASONS = ["http_timeout", "too_many_redirects", "connection_failed", "ssl_error",
                     "http_error", "unknown_error"]


class SlackOutput(SlackBot):
    """Rasa's Slack output channel, talking to ``api_url``."""

    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_url: Text = SLACK_API) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = AsyncWebClient(token, base_url=api_url, proxy=proxy)

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        """Rasa's, with failures counted in ``rasa_gpt_message_api_failures_total``."""
        try:
            await super()._post_message(channel, **kwargs)
        except Exception:
            MESSAGE_API_FAILURES.labels("slack").inc()
            raise


class SlackInput(RasaSlackInput):
    """Rasa's Slack input channel, answering each event once (see the module docstring)."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        token = credentials.get("slack_token") or os.environ.get("SLACK_BOT_TOKEN", "")
        secret = credentials.get("slack_signing_secret") or os.environ.get("SLACK_SIGNING_SECRET", "")
        return cls(
            token,
            credentials.get("slack_channel"),
            credentials.get("proxy"),
            credentials.get("slack_retry_reason_header", "x-slack-retry-reason"),
            credentials.get("slack_retry_number_header", "x-slack-retry-num"),
            credentials.get("errors_ignore_retry") or ALL_RETRY_REASONS,
            credentials.get("use_threads", False),
            secret,
            credentials.get("conversation_granularity", "sender"),
            slack_api_url=credentials.get("slack_api_url") or os.environ.get("SLACK_API_URL") or SLACK_API,
            max_body_bytes=int(credentials.get("max_body_bytes", 100_000)),
            shared_memory_url=credentials.get("shared_memory_url") or os.environ.get("SLACK_SHARED_MEMORY_URL"),
        )

    def __init__(self, *args: Any, slack_api_url: Text = SLACK_API, max_body_bytes: int = 100_000,
                 shared_memory_url: Optional[Text] = None, **kwargs: Any) -> None:
        self.problem: Optional[str] = None
        super().__init__(*args, **kwargs)
        self.slack_api_url = slack_api_url
        self.max_body_bytes = max_body_bytes
        # the events answered: in this process, or in Redis for every instance
        self._events = seen_keys(shared_memory_url, "rasa_gpt_components:slack:event:", ttl=3_600)

    def _validate_credentials(self) -> None:
        """Without a signing secret or token the channel starts closed (503 to every
        request) instead of stopping `rasa run` for the other channels."""
        missing = [name for name, value in (("SLACK_SIGNING_SECRET", self.slack_signing_secret),
                                            ("SLACK_BOT_TOKEN", self.slack_token)) if not value]
        self.problem = f"no {' or '.join(missing)}" if missing else None
        if self.problem:
            logger.warning("slack channel is not configured (%s): its webhook answers 503 to every request",
                           self.problem)

    @staticmethod
    def _event_key(request: Request) -> str:
        # Rasa's webhook has parsed a JSON body already (Sanic keeps it)
        body = request.json if request.headers.get("content-type") == "application/json" else None
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if isinstance(event_id, str) and event_id:
            return "event:" + event_id
        return "body:" + hashlib.sha256(request.body or b"").hexdigest()

    async def process_message(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text], metadata: Optional[Dict]) -> Any:
        """Called by Rasa's webhook once the signature is verified: drop what was answered."""
        if not self._events.add(self._event_key(request)):
            logger.info("slack: event seen before (a retry or a replay), not answered again")
            set_outcome(request, "duplicate")
            return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
        reply = await super().process_message(request, on_new_message, text, sender_id, metadata)
        # Rasa answers 200 when the turn started (its replies go through the Web API), 201 to a retry it ignores
        set_outcome(request, "answered_async" if reply.status == HTTPStatus.OK else "ignored")
        return reply

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        rasa_blueprint = super().blueprint(timed(self.name(), on_new_message))
        count_requests(rasa_blueprint, self.name())

        @rasa_blueprint.middleware("request")
        async def bounded(request: Request) -> Optional[HTTPResponse]:
            if self.problem:
                return response.text("channel not configured", status=HTTPStatus.SERVICE_UNAVAILABLE)
            if len(request.body or b"") > self.max_body_bytes:
                return response.text("request too large", status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None

        return rasa_blueprint

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return SlackOutput(self.slack_token, channel or self.slack_channel, thread_id, self.proxy,
                           self.slack_api_url)
