"""The metrics endpoint, and the channels' request counting and turn timing.

``rasa run`` lets plugins add HTTP routes only through input channels, so the
endpoint is one: ``MetricsInput``, registered in credentials.yml by module path,
serves ``GET /metrics`` in Prometheus' text format (or OpenMetrics, when the
scraper asks for it). See docs/observability.md."""

import hmac
import os
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa_gpt_components.metrics import CHANNEL_REPLY_SECONDS, CHANNEL_REQUESTS

TOKEN_ENV = "RASA_GPT_METRICS_TOKEN"
_OUTCOME = "rasa_gpt_outcome"  # the attribute of request.ctx that says what became of a request


class MetricsInput(InputChannel):
    """``GET /metrics``: this process's metrics for Prometheus; not a chat channel.

    credentials.yml::

        rasa_gpt_components.serving.MetricsInput:
          # auth_token: here or in RASA_GPT_METRICS_TOKEN; when set, scrapers
          # must send "Authorization: Bearer <token>"
    """

    def __init__(self, auth_token: Optional[str] = None) -> None:
        self.auth_token = auth_token or None

    @classmethod
    def name(cls) -> Text:
        return "metrics"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """The endpoint from its credentials.yml entry; the token may come from the environment."""
        credentials = dict(credentials or {})
        token = credentials.pop("auth_token", None) or os.environ.get(TOKEN_ENV)
        if credentials:
            raise ValueError(f"metrics: unknown option(s) {sorted(credentials)}; known: ['auth_token']")
        return cls(str(token) if token else None)

    def url_prefix(self) -> Text:
        # Rasa mounts a channel at urljoin("/webhooks/", url_prefix()): an absolute
        # path replaces "/webhooks/", so this is served at /metrics
        return "/metrics"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        metrics = Blueprint("rasa_gpt_metrics", __name__)

        @metrics.route("/", methods=["GET"])
        async def scrape(request: Request) -> HTTPResponse:
            return self.respond(request)

        return metrics

    def respond(self, request: Request) -> HTTPResponse:
        """The metrics in the format the ``Accept`` header asks for (Prometheus'
        text format by default); 401 without the right bearer token, when one is set."""
        if self.auth_token and not hmac.compare_digest(
                request.headers.get("Authorization", "").encode("utf-8", "replace"),
                f"Bearer {self.auth_token}".encode("utf-8")):
            return response.text("unauthorized", status=401, headers={"WWW-Authenticate": "Bearer"})
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return response.raw(encode(REGISTRY), content_type=content_type)


def set_outcome(request: Request, outcome: str) -> None:
    """Say what became of a webhook request; ``count_requests`` counts it when the response is sent."""
    setattr(request.ctx, _OUTCOME, outcome)


def request_outcome(request: Request, status: int) -> Optional[str]:
    """The outcome a handler set, else one from the status (``refused_<4xx>``,
    ``not_configured`` for 503, ``error`` for other 5xx); None for a 2xx the
    handler said nothing about (health checks, Slack's URL challenge)."""
    outcome = getattr(request.ctx, _OUTCOME, None)
    if outcome or status < 400:
        return outcome
    if status == 503:
        return "not_configured"
    return f"refused_{status}" if status < 500 else "error"


def count_requests(blueprint: Blueprint, channel: str) -> None:
    """Count every request to ``blueprint`` in ``rasa_gpt_channel_requests_total`` by its outcome."""

    @blueprint.middleware("response")
    async def count(request: Request, reply: HTTPResponse) -> None:
        outcome = request_outcome(request, reply.status)
        if outcome:
            CHANNEL_REQUESTS.labels(channel, outcome).inc()


def timed(channel: str, on_new_message: Callable[[UserMessage], Awaitable[Any]]
          ) -> Callable[[UserMessage], Awaitable[Any]]:
    """``on_new_message`` (the bot's turn) observed in ``rasa_gpt_channel_reply_seconds``."""

    async def handle(message: UserMessage) -> Any:
        started = time.monotonic()
        try:
            return await on_new_message(message)
        finally:
            CHANNEL_REPLY_SECONDS.labels(channel).observe(time.monotonic() - started)

    return handle
